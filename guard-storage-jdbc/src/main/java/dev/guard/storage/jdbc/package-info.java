/**
 * Guard's storage in a SQL database: {@link dev.guard.storage.jdbc.JdbcStorage} on PostgreSQL, MariaDB, MySQL and H2.
 *
 * <p>Design, and why:
 *
 * <ul>
 *   <li>One table, one row per state key. The primary key is a SHA-256 of the key (length-prefixed UTF-16), because
 *       keys may hold 10 KB of any text and InnoDB cannot put that in a unique index; the full key is kept beside it
 *       for people, and a hash of the subject is indexed for {@code forget}.
 *   <li>A decision is one transaction that inserts missing rows and locks all of the batch's rows in key-hash order
 *       in one statement ({@code INSERT ... ON CONFLICT}, {@code ON DUPLICATE KEY UPDATE ... RETURNING}, {@code
 *       MERGE}), so first touches cost no extra transaction, distinct keys never deadlock (no locking read ever touches
 *       a missing key's gap, and duplicates take exclusive locks at once rather than shared locks that two transactions
 *       would upgrade) and overlapping batches wait for each other in one global order.
 *   <li>On PostgreSQL the decision runs inside a PL/pgSQL function (postgresql.sql), one round trip, with the same
 *       semantics as the reference functions in {@code dev.guard.limit}. A single token bucket step, the common case,
 *       goes first through one plain {@code UPDATE} of its row that writes only if the bucket admits: the upsert's
 *       {@code DO UPDATE} branch without the insert, because a PL/pgSQL function prepares its expressions again in
 *       every transaction and costs the server several times more, and the upsert costs more than the update
 *       (measured with pgbench, one client, prepared statements: about 72 us of server CPU per call against 81 us).
 *       When the update writes nothing (a first touch, a rejection, a gate under the key) the upsert decides in a
 *       second round trip, so the update only ever decides the admitting case. A chain of token buckets alone on
 *       rows that exist is one plain {@code UPDATE} of all its rows as well, joined to a list of its keys, when its
 *       call is the only one in flight (0.13 to 0.15 ms a call against 0.20 to 0.29 for the function under pgbench,
 *       one client). With several calls in flight chains stay with the function: such a statement was tried for every
 *       chain in an earlier version and cost the server twice as much with eight clients, because PostgreSQL re-checks
 *       each row that another transaction updated since the statement's snapshot by starting the whole plan again
 *       (EvalPlanQual), and a chain's shared keys (chat, tenant, global) are exactly the contended ones; the
 *       function's statements each take a fresh snapshot after locking. The function knows every limit kind,
 *       {@link dev.guard.limit.DuplicateWindow} included (its item travels as the step's permits and is checked in
 *       Java before anything is sent). Elsewhere Java runs the reference functions between the locking read and the
 *       write, for every kind alike. The differential tests hold all of them to {@link
 *       dev.guard.spi.ReferenceStorage}.
 *   <li>Asynchronous commit is set per decision, inside the deciding statement ({@code set_config('synchronous_commit',
 *       'off', true)}, transaction-local), not once per session: a session setting would outlive the decision on a
 *       pooled connection that the application shares, and silently make its own transactions asynchronous;
 *       resetting it would cost a round trip. Inside the statement it costs nothing measurable.
 *   <li>Decisions use JDBC directly, not Jdbi's statement API: the hot path then allocates no mapping machinery.
 *       A {@link org.jdbi.v3.core.Jdbi} is accepted as a source of connections.
 * </ul>
 */
package dev.guard.storage.jdbc;
