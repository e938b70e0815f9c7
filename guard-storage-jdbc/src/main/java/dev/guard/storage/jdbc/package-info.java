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
 *       in one statement ({@code INSERT ... ON CONFLICT}, {@code ON DUPLICATE KEY UPDATE ... RETURNING}, {@code MERGE}),
 *       so first touches cost no extra transaction, distinct keys never deadlock (no locking read ever touches a
 *       missing key's gap, and duplicates take exclusive locks at once rather than shared locks that two transactions
 *       would upgrade) and overlapping batches wait for each other in one global order.
 *   <li>On PostgreSQL the decision runs inside a PL/pgSQL function (postgresql.sql), one round trip, with the same
 *       semantics as the reference functions in {@code dev.guard.limit}; a single token bucket step runs as one plain
 *       upsert instead, because a PL/pgSQL function prepares its expressions again in every transaction and costs the
 *       server several times more. Elsewhere Java runs the reference functions between the locking read and the
 *       write. The differential tests hold both to {@link dev.guard.spi.ReferenceStorage}.
 *   <li>Decisions use JDBC directly, not Jdbi's statement API: the hot path then allocates no mapping machinery.
 *       A {@link org.jdbi.v3.core.Jdbi} is accepted as a source of connections.
 * </ul>
 */
package dev.guard.storage.jdbc;
