package dev.guard.storage.jdbc;

import dev.guard.Ticker;
import dev.guard.internal.Saturated;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.sql.Types;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link Storage} in a SQL database: PostgreSQL, MariaDB, MySQL or H2, through a {@link DataSource} (a connection
 * pool) or a {@link Jdbi}. Several bot processes that share the database share one set of limits.
 *
 * <pre>{@code
 * JdbcStorage storage = JdbcStorage.builder(dataSource).build();
 * storage.createSchema(); // or run the DDL from the README with your migration tool
 * }</pre>
 *
 * <p><b>One transaction per decision</b> (or per shared call, below). Every step of a batch is evaluated in one
 * transaction that locks the batch's rows in one fixed order (their key hashes), so concurrent decisions do not
 * deadlock, and a key's first touch inserts its row inside that same transaction. On PostgreSQL a decision is one
 * statement, one round trip whatever the chain's length, in auto-commit: one call of the PL/pgSQL function that {@link
 * #createSchema()} installs, or for token buckets alone a plain {@code UPDATE} of their rows that writes only if every
 * bucket admits. When that writes nothing (a first touch, a rejection), a single bucket's upsert, or else the
 * function, decides in a second round trip. The {@code UPDATE} of several buckets' rows joins them to a list of their
 * keys: on a table that PostgreSQL's statistics show small (a new table before autovacuum has analyzed it, within
 * about a minute) the planner may scan the whole table instead and take the rows in the table's order; a decision
 * whose statement that makes a deadlock's victim goes again (to the function), up to three attempts in all, and so does
 * any statement that PostgreSQL aborted while it waited for a row in the queue between two such transactions (a
 * one-bucket decision, {@link #raiseGate}, {@link #addMember}, {@link #removeMember}, {@link #putRecord}). A chain of
 * buckets goes this way only alone (not in a shared call, below, and while no other call of this storage is in flight:
 * under contention PostgreSQL re-checks such an {@code UPDATE}'s rows by running its plan again), with at most 16 steps
 * on distinct keys, and not while one of its keys has rejected a chain lately (until that rejection's retry-after, as
 * this instance saw it): an {@code UPDATE} that some buckets reject writes the others' rows and rolls them back before
 * the function decides. On
 * MariaDB it is three (lock and read, write, commit; a rejected decision that finds nothing expired skips the write),
 * on MySQL four. Configure the pool with {@code autoCommit=false} on MariaDB and MySQL, whose drivers spend a round
 * trip on each auto-commit switch.
 *
 * <p><b>Shared calls (PostgreSQL).</b> At most {@link Builder#concurrentCalls(int)} decision calls are in flight at
 * once. A decision that arrives while that many are running waits for the next free call, and every decision waiting
 * then travels in it (up to 64 decisions and 256 steps): one round trip, one statement and one transaction for all of
 * them. Each stays atomic on its own and is decided as if the call's decisions had been sent one after the other. A
 * decision that arrives while a call is free goes at once, with whatever waits then, so a lone thread never waits; busy
 * threads share the server's per-call costs (the transaction, the statement, the round trip), which is most of what a
 * decision costs PostgreSQL. Each decision keeps the {@link Builder#timeout(Duration) timeout} from its arrival: it
 * waits for a call half of it at most and then goes alone beyond the limit, and a call ends by the earliest deadline of
 * its decisions. A shared call waits for a row locked elsewhere a quarter of its time at most; when its statement is
 * stopped so (or cancelled, or chosen as a deadlock's victim), or never went out (the pool gave the thread that ran it
 * no connection), it has committed nothing, and its decisions go again, each alone. Any other failure of a shared call
 * (a connection lost, which may have come after the commit) fails all of them. A thread that is interrupted runs no
 * call: its decision, unless a call already carries it, fails unsent, and the thread keeps its interrupt status.
 *
 * <p><b>Durability.</b> On PostgreSQL decisions commit with {@code synchronous_commit = off} unless {@link
 * Builder#synchronousCommit(boolean)} says otherwise: rate state is cheap to lose, and waiting for the WAL flush
 * costs more than the rest of a decision. A crash may then forget the last fraction of a second of decisions; it never
 * corrupts anything. The setting is made inside each decision's own statement ({@code set_config(..., true)}, local
 * to its transaction), never on the session, so a pooled connection goes back to the pool as it came. Gates, set
 * members and records always commit with the server's setting.
 *
 * <p><b>Expiry.</b> Every row carries {@code expires_at} (microseconds since the epoch, from the callers' clock); a
 * row that has expired reads as absent at once. A sweeper deletes expired rows in small batches, skipping rows that a
 * decision holds, so it never blocks one; it runs every {@link Builder#sweepInterval(Duration)}, again at once after a
 * run that stopped at its cap of batches with expired rows left, or when {@link #sweep()} is called.
 *
 * <p><b>Schema version.</b> The DDL records the version of the schema that it installs in the table's comment, and a
 * storage needs its own version exactly: a schema of another version (the jar upgraded, {@link #createSchema()} or the
 * DDL not run again) decides with that version's semantics. {@link #health()} is then down, naming both versions and
 * the fix, and a storage that {@link Builder#build()} finds over such a schema logs the same at WARN, once, at its
 * first decision. Decisions still run: a schema of another version is no reason to stop a bot's traffic. {@link
 * #createSchema()} upgrades the schema in place.
 *
 * <p><b>Failures and timeouts.</b> Every statement carries the {@link Builder#timeout(Duration) timeout}: on PostgreSQL
 * a decision's statement is cancelled by the storage's watchdog thread once it runs past it, every other statement by
 * the driver's query timeout. A call's connection may also stay silent for twice the timeout at most ({@link
 * Connection#setNetworkTimeout}, set back afterwards), so that a server that stops answering altogether fails the call
 * rather than holding it; on PostgreSQL a statement also waits for its cancel, bounded by pgjdbc's {@code
 * cancelSignalTimeout} (10 s by default). Acquiring a connection is bounded by the pool's own timeout (HikariCP's
 * {@code connectionTimeout}). Every failure surfaces as a {@link GuardStorageException} whose message names the
 * dialect and the SQL state and never holds a password. The storage keeps no connection of its own between calls, so
 * it works again as soon as the pool reconnects.
 *
 * <p>Thread-safe. {@link #close()} stops the sweeper and the watchdog (which first sees the statements it watches to
 * their timeout; PostgreSQL decisions made after it fail, unless {@link Builder#storedFunction(boolean)} is off); it
 * does not close the data source or the Jdbi.
 */
public final class JdbcStorage implements Storage {
    private static final Logger LOG = LoggerFactory.getLogger(JdbcStorage.class);
    /**
     * The version of the schema that this Guard installs and needs, which the DDL records in the table's comment.
     * Bumped whenever a DDL file changes what it installs; SchemaVersionTest pins the DDL's hash to it, and fails
     * when the DDL changes without it.
     */
    static final int SCHEMA_VERSION = 1;

    private static final int H2_DUPLICATE_RETRIES = 10;
    private static final int SWEEP_BATCHES_PER_CALL = 100;
    /** The least statement timeout of {@link #createSchema()}, in seconds. */
    private static final int SCHEMA_TIMEOUT_SECONDS = 30;
    /** Runs what a driver hands to {@link Connection#setNetworkTimeout} in the calling thread, as HikariCP does. */
    private static final Executor DIRECT = Runnable::run;

    /** A sweep batch looks at this many batch sizes of keys at most (its window of the key order). */
    private static final int SWEEP_WINDOW_BATCHES = 8;

    /** The largest key hash: the upper bound of a sweep window that reaches the end of the table. */
    private static final byte[] LAST_HASH = lastHash();

    private static final TableSql.BucketParam[] BUCKET_PARAMS = TableSql.BucketParam.values();
    /**
     * How many times a lone decision's statement, {@link #forget} or an operation on one row (a gate, a member, a
     * record) is sent when deadlocks break it.
     */
    private static final int DEADLOCK_ATTEMPTS = 3;

    /** The most steps that {@link #inBucketsUpdate} takes in one statement; a longer chain goes to the function. */
    private static final int MAX_BUCKETS_PER_UPDATE = 16;

    /**
     * The most token bucket steps of the decisions that share a call which go in one {@code UPDATE} of their rows
     * ({@link #inBucketsUpdate}); a call with more goes to the evaluate function.
     */
    private static final int MAX_BUCKETS_PER_SHARED_UPDATE = 64;

    /** Places of {@link #rejectionKeys}; a power of two. */
    private static final int REJECTION_SLOTS = 1024;

    /**
     * The evaluate function and the bucket statements take times of magnitude below this, 2^62 microseconds (about
     * 146,000 years): their bigint arithmetic adds to now at most a day, a window or a period (each below 2^53), and
     * a bigint that overflows fails the statement where the reference saturates. A clock past it (a broken or
     * hand-made one) is decided by the Java path, as on the other databases.
     */
    private static final long FUNCTION_TIME_LIMIT = 1L << 62;

    /**
     * PostgreSQL's SQLSTATEs of a {@link TableSql#bucketsUpdate} that rolled back for the evaluate function to
     * decide: division by zero (some rows admitted, others not) and deadlock detected.
     */
    private static final Set<String> UNDECIDED_STATES = Set.of("22012", "40P01");
    /** The most decisions that share one call of the evaluate function. */
    static final int MAX_DECISIONS_PER_CALL = 64;

    private final ConnectionSource connections;
    private final JdbcDialect dialect;
    private final String table;
    /**
     * The table's statements. Null on H2 until the first connection tells how the database stores unquoted names,
     * which its settings choose ({@link #connected}); threads that race there build equal ones.
     */
    private volatile TableSql sql;

    private final int timeoutSeconds;
    /**
     * How long a connection's socket may stay silent in a call, in milliseconds: the statement timeout in whole seconds
     * twice over (once for the statement, once for its cancel to come back), so that a server that still answers always
     * answers first, and a server that fell silent (its host gone, its packets dropped) fails the call instead of
     * holding it until the operating system gives up on the connection.
     */
    private final int networkTimeoutMillis;
    /** {@link #networkTimeoutMillis} for {@link #createSchema()}, whose statements may take 30 seconds. */
    private final int schemaNetworkTimeoutMillis;
    /** Cleared when the driver says that it has no network timeout (it then has no socket to bound: H2 in memory). */
    private volatile boolean networkTimeouts = true;

    private final long timeoutNanos;
    private final boolean storedFunction;
    private final TableSql.NamedSql bucketUpdate;
    private final TableSql.NamedSql bucketDecision;
    /**
     * Keys that rejected a chain of buckets lately (the first eight bytes of their hashes) and until when,
     * in places picked by the hash. Read and written without synchronisation: a torn or lost entry only sends a chain
     * down the other path, which decides the same.
     */
    private final long[] rejectionKeys = new long[REJECTION_SLOTS];

    private final long[] rejectionUntil = new long[REJECTION_SLOTS];
    /**
     * Calls of {@link #call} running now. A chain of buckets takes {@link #inBucketsUpdate} only while its call is
     * the only one: an {@code UPDATE} that finds a row updated since its snapshot re-checks it by running its whole
     * plan again (EvalPlanQual), and concurrent chains share their chat's and tenant's rows, so with several calls in
     * flight the evaluate function, whose statements each lock one row and then read it, costs the server less. A
     * shared call takes it whatever else is in flight: one statement for several decisions saves more than the re-checks
     * cost (eight threads, chains of three: 1.36x the throughput of the function's shared calls, three rounds).
     */
    private final AtomicInteger callsInFlight = new AtomicInteger();

    private final boolean synchronousCommit;
    private final boolean unloggedTable;
    private final Executor executor;
    /** Runs a task after so many nanoseconds: the JDK's delay scheduler, a hand-driven one in tests. */
    private final LongFunction<Executor> delay;
    /**
     * Where a decision's deadline is counted from: {@link System#nanoTime()}, a clock moved by hand in tests. The
     * watchdog and the retries read {@link System#nanoTime()} itself.
     */
    private final LongSupplier nanoClock;

    private final Ticker ticker;
    private final long sweepGraceMicros;
    private final int sweepBatchSize;
    private final ScheduledExecutorService sweeper;
    private final StatementWatchdog watchdog;
    private final CallCombiner calls;
    private byte[] sweepCursor = new byte[KeyCodec.HASH_BYTES];
    /** Set by {@link #close()}: a background sweep stops before its next batch. */
    private volatile boolean closed;
    /**
     * What the first decision logs at WARN, once: why the schema that {@link Builder#build()} found is not this
     * version's. Null when there is nothing (left) to log; {@link #createSchema()} clears it.
     */
    private final AtomicReference<String> schemaWarning = new AtomicReference<>();

    private JdbcStorage(Builder b, JdbcDialect dialect) {
        this.connections = b.connections;
        this.dialect = dialect;
        this.table = b.table;
        this.sql = switch (dialect) {
            case POSTGRESQL -> new TableSql(dialect, table, TableSql.NameCase.LOWER, !b.synchronousCommit);
            case MARIADB, MYSQL -> new TableSql(dialect, table, TableSql.NameCase.AS_WRITTEN, !b.synchronousCommit);
            case H2 -> null;
        };
        this.timeoutSeconds = (int) Math.min(Integer.MAX_VALUE, Math.max(1, ceilSeconds(b.timeout)));
        this.networkTimeoutMillis = networkTimeoutMillis(timeoutSeconds);
        this.schemaNetworkTimeoutMillis = networkTimeoutMillis(Math.max(timeoutSeconds, SCHEMA_TIMEOUT_SECONDS));
        this.timeoutNanos = b.timeout.toNanos();
        this.storedFunction = dialect == JdbcDialect.POSTGRESQL && b.storedFunction;
        this.synchronousCommit = b.synchronousCommit;
        this.bucketUpdate = storedFunction ? sql.bucketUpdate() : null;
        this.bucketDecision = storedFunction ? sql.bucketDecision() : null;
        this.unloggedTable = b.unloggedTable;
        this.executor = b.executor;
        this.delay = b.delay;
        this.nanoClock = b.nanoClock;
        this.ticker = b.ticker;
        this.sweepGraceMicros = micros(b.sweepGrace);
        this.sweepBatchSize = b.sweepBatchSize;
        long sweepEveryMicros = micros(b.sweepInterval);
        // Threads start last, once everything that can fail has been computed, so that a failed build leaves none.
        this.calls = storedFunction
                ? new CallCombiner(
                        b.concurrentCalls,
                        MAX_DECISIONS_PER_CALL,
                        timeoutNanos,
                        this::call,
                        StorageFailures::committedNothing,
                        nanoClock)
                : null;
        this.watchdog = storedFunction ? new StatementWatchdog(b.timeout, "guard-jdbc-watchdog") : null;
        try {
            this.sweeper = sweepEveryMicros == 0 ? null : startSweeper(sweepEveryMicros);
        } catch (RuntimeException | Error e) {
            if (watchdog != null) {
                watchdog.close();
            }
            throw e;
        }
    }

    /**
     * Starts the sweeper's daemon thread, whose first run comes after {@code everyMicros} and each run after the
     * delay that {@link #nextSweepDelayMicros} gives it; shuts it down again if that fails.
     */
    private ScheduledExecutorService startSweeper(long everyMicros) {
        ScheduledExecutorService started = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "guard-jdbc-sweeper");
            t.setDaemon(true);
            return t;
        });
        try {
            started.schedule(() -> sweepInBackground(started, everyMicros), everyMicros, TimeUnit.MICROSECONDS);
        } catch (RuntimeException | Error e) {
            started.shutdownNow();
            throw e;
        }
        return started;
    }

    /** A builder over a data source, normally a connection pool such as HikariCP. */
    public static Builder builder(DataSource dataSource) {
        if (dataSource == null) {
            throw new IllegalArgumentException("dataSource must not be null");
        }
        return new Builder(() -> {
            Connection c = dataSource.getConnection();
            return new Lease(c, c::close);
        });
    }

    /** A builder over a Jdbi: each call opens a handle and closes it when done. */
    public static Builder builder(Jdbi jdbi) {
        if (jdbi == null) {
            throw new IllegalArgumentException("jdbi must not be null");
        }
        return new Builder(() -> {
            Handle handle = jdbi.open();
            return new Lease(handle.getConnection(), handle::close);
        });
    }

    /** The dialect in use, detected or configured. */
    public JdbcDialect dialect() {
        return dialect;
    }

    /** The name of the state table. */
    public String table() {
        return table;
    }

    /**
     * The DDL of the dialect's schema for the default table {@code guard_state}, as shipped in this jar: for people who
     * manage migrations themselves, who run it again whenever an upgrade of Guard changes the schema's version (its
     * last statement records it; see {@link #createSchema()}). Statements are separated by {@code -- statement} lines.
     */
    public static String schemaDdl(JdbcDialect dialect) {
        return TableSql.resource(
                Objects.requireNonNull(dialect, "dialect must not be null").schemaResource());
    }

    /**
     * Creates the table, its index and (on PostgreSQL) the evaluate function if they do not exist yet, replacing the
     * function if it does, and records this version of the schema in the table's comment: an upgrade in place of a
     * schema that an earlier Guard installed (a later one's too: it installs this version). Idempotent: over a schema
     * of this version it changes nothing, and it leaves the comment alone (on MariaDB and MySQL the {@code ALTER
     * TABLE} that writes it would wait for every open transaction on the table). Nor does it run PostgreSQL's {@code
     * CREATE INDEX IF NOT EXISTS} when the index exists: that statement takes a SHARE lock on the table before it
     * looks, so it would wait for every transaction that writes to the table, and the decisions after it would queue
     * behind it. A process that starts while others serve traffic thus waits for no lock on the table (on H2 neither:
     * H2 looks for the index first). On PostgreSQL concurrent calls serialise on an advisory lock, and on H2 a call
     * that lost a race to create the index runs once more. The storage then no longer warns of its schema at its
     * first decision.
     *
     * @throws GuardStorageException if the database refuses (for example for lack of privileges)
     */
    public void createSchema() {
        for (int attempt = 0; ; attempt++) {
            try {
                OptionalInt before = inTransaction("createSchema", schemaNetworkTimeoutMillis, c -> {
                    List<String> statements = sql.schema(unloggedTable);
                    try (Statement s = c.createStatement()) {
                        s.setQueryTimeout(Math.max(timeoutSeconds, SCHEMA_TIMEOUT_SECONDS));
                        if (dialect == JdbcDialect.POSTGRESQL) {
                            // The name as PostgreSQL folds it: Guard_State and guard_state are one table, one lock.
                            s.execute("SELECT pg_advisory_xact_lock(hashtext('dev.guard.storage.jdbc."
                                    + table.toLowerCase(Locale.ROOT) + "'))");
                        }
                        OptionalInt installed = installedVersion(c);
                        boolean current = installed.isPresent() && installed.getAsInt() == SCHEMA_VERSION;
                        for (String statement : statements) {
                            if ((!current || !TableSql.recordsVersion(statement)) && !indexExists(c, statement)) {
                                s.execute(statement);
                            }
                        }
                        return installed;
                    }
                });
                schemaWarning.set(null);
                if (before.isPresent() && before.getAsInt() != SCHEMA_VERSION) {
                    LOG.info(
                            "guard jdbc installed schema version {} of {} table {} over {}",
                            SCHEMA_VERSION,
                            dialect.label(),
                            table,
                            before.getAsInt() == 0 ? "a schema from before versions" : "version " + before.getAsInt());
                }
                return;
            } catch (GuardStorageException e) {
                // H2 looks for an index before it waits for the table's lock: of two sessions that create it at once,
                // the second fails with a general error ("object already exists") although the index is there now.
                // Once more then finds everything in place.
                if (dialect != JdbcDialect.H2
                        || attempt > 0
                        || !(e.getCause() instanceof SQLException cause)
                        || !"HY000".equals(cause.getSQLState())) {
                    throw e;
                }
            }
        }
    }

    /**
     * {@inheritDoc}
     *
     * @throws NullPointerException if {@code batch} is null
     */
    @Override
    public BatchResult evaluate(Batch batch, long nowMicros) {
        return evaluate(batch, nowMicros, nanoClock.getAsLong());
    }

    /** {@link #evaluate(Batch, long)} of a decision asked for at {@code arrivalNanos}: its timeout counts from then. */
    private BatchResult evaluate(Batch batch, long nowMicros, long arrivalNanos) {
        Objects.requireNonNull(batch, "batch must not be null");
        Steps steps = Steps.of(batch);
        return BatchResult.of(
                decide("evaluate", steps.keys(), steps.specs(), steps.permits(), nowMicros, arrivalNanos));
    }

    /** A batch's steps as parallel arrays. */
    private record Steps(StateKey[] keys, LimitSpec[] specs, long[] permits) {
        static Steps of(Batch batch) {
            int n = batch.size();
            StateKey[] keys = new StateKey[n];
            LimitSpec[] specs = new LimitSpec[n];
            long[] permits = new long[n];
            for (int i = 0; i < n; i++) {
                Step step = batch.step(i);
                keys[i] = step.key();
                specs[i] = step.spec();
                permits[i] = step.permits();
            }
            return new Steps(keys, specs, permits);
        }
    }

    /**
     * Runs {@link #evaluate} on the {@link Builder#executor(Executor) executor} when one was given (JDBC blocks), and
     * in the calling thread otherwise. Never throws: when the executor rejects the task (it was shut down, or its
     * queue is full) the stage fails with a {@link GuardStorageException} whose cause is the executor's exception. A
     * stage that the caller cancels or completes itself (its own timeout, say) before the executor runs the task
     * leaves the task nothing to do: the decision is not sent and consumes nothing. Once sent, it runs to its end.
     *
     * <p>A task that the executor has not started within the {@link Builder#timeout(Duration) timeout} (its threads
     * all busy, its queue long) is given up: the stage fails with a {@link GuardStorageException}, and the task, when
     * it runs, sends nothing. On PostgreSQL with the evaluate function, a task that starts within it has what is left
     * of it (the decision's deadline counts from this call, not from the task's start), so the stage ends within the
     * timeout, as the SPI asks, however busy the executor is. Elsewhere (H2, MariaDB, MySQL, {@link
     * Builder#storedFunction storedFunction(false)}) the timeouts count from the task's start (each statement's from
     * its own), so a task that starts late can end after the timeout.
     */
    @Override
    public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
        if (executor == null) {
            return Storage.super.evaluateAsync(batch, nowMicros);
        }
        // The decision arrives now: the time that its task waits for the executor counts against its timeout.
        long arrivalNanos = nanoClock.getAsLong();
        // Completed by hand rather than through supplyAsync, which would fail the stage with a CompletionException
        // around the storage's exception: the stage fails with the GuardStorageException itself, as the SPI says.
        CompletableFuture<BatchResult> stage = new CompletableFuture<>();
        // Whoever comes first, the task starting or the timeout giving it up, owns the stage's outcome.
        AtomicBoolean claimed = new AtomicBoolean();
        try {
            executor.execute(() -> {
                if (!claimed.compareAndSet(false, true) || stage.isDone()) {
                    // Given up on while it waited for the executor: by the caller (as supplyAsync's task would see)
                    // or by the timeout.
                    return;
                }
                try {
                    stage.complete(evaluate(batch, nowMicros, arrivalNanos));
                } catch (RuntimeException | Error e) {
                    stage.completeExceptionally(e);
                }
            });
            delay.apply(timeoutNanos).execute(() -> {
                if (claimed.compareAndSet(false, true)) {
                    stage.completeExceptionally(new GuardStorageException(
                            StorageFailures.BACKEND,
                            "evaluate",
                            "the executor did not start the call within " + Duration.ofNanos(timeoutNanos),
                            null));
                }
            });
            return stage;
        } catch (RuntimeException e) {
            // The executor refuses the task here, not in the stage.
            return CompletableFuture.failedFuture(new GuardStorageException(
                    StorageFailures.BACKEND, "evaluate", "the executor rejected the task", e));
        }
    }

    @Override
    public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(spec, "spec must not be null");
        if (permits < 0) {
            throw new IllegalArgumentException("permits must not be negative but was " + permits);
        }
        return decide(
                "acquire",
                new StateKey[] {key},
                new LimitSpec[] {spec},
                new long[] {permits},
                nowMicros,
                nanoClock.getAsLong())[0];
    }

    /**
     * Evaluates steps given as parallel arrays, a decision asked for at {@code arrivalNanos} ({@link #nanoClock}):
     * on PostgreSQL with the evaluate function its timeout counts from then. Answers outcomes in the same order.
     */
    private long[] decide(
            String operation, StateKey[] keys, LimitSpec[] specs, long[] permits, long nowMicros, long arrivalNanos) {
        if (schemaWarning.get() != null) {
            warnOfSchema();
        }
        int n = keys.length;
        byte[][] hashes = hashes(keys, specs, permits);
        if (storedFunction && nowMicros > -FUNCTION_TIME_LIMIT && nowMicros < FUNCTION_TIME_LIMIT) {
            return calls.decide(
                    new CallCombiner.Request(operation, keys, specs, permits, hashes, nowMicros), arrivalNanos);
        }
        int[] order = sortedOrder(hashes);
        // Rows are locked in key order, yet InnoDB can still choose a victim: a transaction that inserted a key's row
        // and rolls back (a failure, a record's compare-and-set that did not match) turns the locks of those queued
        // for that row into gap locks, which two of them then both need. The victim committed nothing: it goes again.
        long[] sorted = inTransactionAgainAfterDeadlocks(
                operation, c -> inJava(c, keys, specs, permits, hashes, order, nowMicros));
        long[] outcomes = new long[n];
        for (int i = 0; i < n; i++) {
            outcomes[order[i]] = sorted[i];
        }
        return outcomes;
    }

    /**
     * Logs, once, that the storage was built over a schema of another version. The decision goes on regardless: a
     * schema of another version decides with that version's semantics, which is no reason to stop a bot's traffic;
     * health() reports it for as long as it lasts.
     */
    private void warnOfSchema() {
        String warning = schemaWarning.getAndSet(null);
        if (warning != null) {
            LOG.warn("guard jdbc: {}; until then decisions follow the schema as it is", warning);
        }
    }

    /** The keys' hashes, in step order; a step the database could not take is refused first. */
    private static byte[][] hashes(StateKey[] keys, LimitSpec[] specs, long[] permits) {
        byte[][] hashes = new byte[keys.length][];
        for (int i = 0; i < keys.length; i++) {
            if (specs[i] instanceof DuplicateWindow) {
                // Refused before anything is sent: the evaluate function would take any number as the item, and the
                // Java path would fail inside its transaction, as a storage failure.
                DuplicateWindow.item(permits[i]);
            }
            hashes[i] = KeyCodec.keyHash(keys[i]);
        }
        return hashes;
    }

    /**
     * PostgreSQL with the evaluate function: decides {@code batches} (at the times in {@code nowMicros}) as the
     * combiner's call for the decisions that waited together does; answers each batch's outcomes. For tests, which
     * cannot make threads wait in a given order.
     */
    List<long[]> evaluateTogether(List<Batch> batches, long[] nowMicros) {
        if (!storedFunction) {
            throw new IllegalStateException("evaluateTogether needs the evaluate function");
        }
        List<CallCombiner.Request> group = new ArrayList<>();
        for (int d = 0; d < batches.size(); d++) {
            Steps steps = Steps.of(batches.get(d));
            byte[][] hashes = hashes(steps.keys(), steps.specs(), steps.permits());
            group.add(new CallCombiner.Request(
                    "evaluate", steps.keys(), steps.specs(), steps.permits(), hashes, nowMicros[d]));
        }
        try {
            runCall(group, System.nanoTime() + timeoutNanos);
        } catch (CallCombiner.NotSent e) {
            throw e.failure();
        }
        List<long[]> outcomes = new ArrayList<>();
        for (CallCombiner.Request r : group) {
            outcomes.add(r.outcomes());
        }
        return outcomes;
    }

    /** How many decisions wait for a shared call now (PostgreSQL with the evaluate function); for tests. */
    int waitingDecisions() {
        return calls == null ? 0 : calls.waitingCount();
    }

    /**
     * PostgreSQL: decides {@code group}, the decisions that share this call: a lone one-bucket decision by the bucket
     * statements, a lone decision of buckets alone on distinct keys by {@link #inBucketsUpdate} unless one of its keys
     * rejected lately, decisions sharing a call that are buckets alone on keys no two steps share by {@link
     * #inBucketsUpdate} too (chains unless one of their keys rejected lately), and anything else, or what those
     * statements left undecided, in one call of the evaluate function.
     */
    private void call(List<CallCombiner.Request> group, long deadlineNanos) {
        callsInFlight.incrementAndGet();
        try {
            runCall(group, deadlineNanos);
        } finally {
            callsInFlight.decrementAndGet();
        }
    }

    private void runCall(List<CallCombiner.Request> group, long deadlineNanos) {
        if (group.size() == 1) {
            CallCombiner.Request r = group.get(0);
            boolean bucketChain = r.keys.length >= 2 && distinctBuckets(group, MAX_BUCKETS_PER_UPDATE);
            if (r.keys.length == 1
                    && r.specs[0] instanceof TokenBucket bucket
                    && r.permits[0] >= 1
                    && r.permits[0] <= bucket.capacity()) {
                // One row, yet a deadlock's victim all the same when it waits for its row between two transactions
                // that take rows in opposite orders (see below): it committed nothing, and goes again.
                OptionalLong outcome = againAfterDeadlocks(deadlineNanos, () -> {
                    OptionalLong updated =
                            inBucketUpdate(r.operation, bucket, r.permits[0], r.hashes[0], r.nowMicros, deadlineNanos);
                    return updated.isPresent()
                            ? updated
                            : inBucketStatement(
                                    r.operation,
                                    r.keys[0],
                                    bucket,
                                    r.permits[0],
                                    r.hashes[0],
                                    r.nowMicros,
                                    deadlineNanos);
                });
                if (outcome.isPresent()) {
                    r.complete(new long[] {outcome.getAsLong()});
                    return;
                }
            } else if (bucketChain
                    && callsInFlight.get() == 1
                    && !recentlyRejected(group)
                    && inBucketsUpdate(group, true, deadlineNanos).isEmpty()) {
                return;
            }
            // Alone: a call that PostgreSQL chose to break a deadlock committed nothing and goes again (a shared call's
            // decisions go again alone, which the combiner sees to). Such a cycle needs a chain statement that took its
            // rows in another order than key_hash order (see inBucketsUpdate); a statement that waits in the queue for
            // a row between two such transactions may be the victim, whatever it holds.
            againAfterDeadlocks(deadlineNanos, () -> {
                inFunction(group, false, deadlineNanos);
                return null;
            });
            if (bucketChain) {
                noteRejections(group);
            }
            return;
        }
        // Shared. Token buckets alone, on keys no two steps share: one plain UPDATE of their rows first. Decisions of
        // one bucket each are independent rows, and what the UPDATE leaves (a rejection, a first touch, anything
        // unusual) goes to the function after it. Chains are all or nothing: the UPDATE writes every row or none, and
        // skips to the function while a key of the call rejected lately.
        if (!distinctBuckets(group, MAX_BUCKETS_PER_SHARED_UPDATE)) {
            inFunction(group, true, deadlineNanos);
            return;
        }
        boolean chains = false;
        for (CallCombiner.Request r : group) {
            chains |= r.keys.length > 1;
        }
        List<CallCombiner.Request> left =
                chains && recentlyRejected(group) ? group : inBucketsUpdate(group, chains, deadlineNanos);
        if (!left.isEmpty()) {
            // Still a shared call, even when one decision is left: the decisions that the UPDATE admitted wait for it.
            inFunction(left, true, deadlineNanos);
            if (chains) {
                noteRejections(left);
            }
        }
    }

    /** The number of steps of the decisions of {@code group}. */
    private static int steps(List<CallCombiner.Request> group) {
        int n = 0;
        for (CallCombiner.Request r : group) {
            n += r.keys.length;
        }
        return n;
    }

    /**
     * Whether the steps of {@code group} are at most {@code maxSteps} token bucket steps, each with {@code 1 <= permits
     * <= capacity}, no two on the same key: what {@link #inBucketsUpdate} decides.
     */
    private static boolean distinctBuckets(List<CallCombiner.Request> group, int maxSteps) {
        int n = steps(group);
        if (n > maxSteps) {
            return false;
        }
        byte[][] hashes = new byte[n][];
        int s = 0;
        for (CallCombiner.Request r : group) {
            for (int i = 0; i < r.keys.length; i++, s++) {
                if (!(r.specs[i] instanceof TokenBucket bucket)
                        || r.permits[i] < 1
                        || r.permits[i] > bucket.capacity()) {
                    return false;
                }
                hashes[s] = r.hashes[i];
            }
        }
        int[] order = sortedOrder(hashes);
        for (int o = 1; o < n; o++) {
            if (Arrays.equals(hashes[order[o - 1]], hashes[order[o]])) {
                return false;
            }
        }
        return true;
    }

    /**
     * Runs {@code work}, and again while the database aborts it to break a deadlock (it then committed nothing), up to
     * {@link #DEADLOCK_ATTEMPTS} times in all and while {@code deadlineNanos} is ahead; the last failure carries the
     * earlier ones as suppressed exceptions.
     */
    private static <T> T againAfterDeadlocks(long deadlineNanos, Supplier<T> work) {
        List<GuardStorageException> earlier = new ArrayList<>();
        while (true) {
            try {
                return work.get();
            } catch (GuardStorageException e) {
                if (earlier.size() + 1 >= DEADLOCK_ATTEMPTS
                        || !StorageFailures.deadlocked(e)
                        || deadlineNanos - System.nanoTime() <= 0) {
                    earlier.forEach(e::addSuppressed);
                    throw e;
                }
                earlier.add(e);
                LOG.debug("jdbc storage: the database aborted a transaction to break a deadlock; it goes again", e);
            }
        }
    }

    /**
     * Whether a key of {@code r} rejected a decision lately, until a time after {@code r}'s: its chain then goes to the
     * evaluate function at once rather than through {@link #inBucketsUpdate}, which would write the other rows and roll
     * them back first. A hint only ({@link #rejectionKeys}).
     */
    private boolean recentlyRejected(List<CallCombiner.Request> group) {
        for (CallCombiner.Request r : group) {
            for (byte[] hash : r.hashes) {
                int slot = rejectionSlot(hash);
                if (rejectionKeys[slot] == KeyCodec.prefix(hash) && rejectionUntil[slot] > r.nowMicros) {
                    return true;
                }
            }
        }
        return false;
    }

    /** Notes, for each decision of {@code group}, the key that rejected it, if one did, until its retry-after. */
    private void noteRejections(List<CallCombiner.Request> group) {
        for (CallCombiner.Request r : group) {
            long[] outcomes = r.outcomes();
            for (int i = 0; outcomes != null && i < outcomes.length; i++) {
                if (!Outcome.isAdmitted(outcomes[i])) {
                    int slot = rejectionSlot(r.hashes[i]);
                    rejectionKeys[slot] = KeyCodec.prefix(r.hashes[i]);
                    rejectionUntil[slot] = Saturated.plus(r.nowMicros, Outcome.retryAfterMicros(outcomes[i]));
                    break;
                }
            }
        }
    }

    private static int rejectionSlot(byte[] hash) {
        return (int) KeyCodec.prefix(hash) & (REJECTION_SLOTS - 1);
    }

    /**
     * PostgreSQL, the decisions of {@code group}, token bucket steps on distinct keys ({@link #distinctBuckets}), in one
     * plain {@code UPDATE} of their rows ({@link TableSql#bucketsUpdate}) in lock order, one round trip under
     * auto-commit; completes the decisions it admitted and answers the others, whose rows it left as they were, for the
     * evaluate function to decide: a first touch, a rejection or anything unusual. With {@code allOrNothing} it writes
     * every row or none, so it answers none or all of the group (when some rows admit and others do not it fails with a
     * division by zero and rolls back, which is caught here); without, each decision (of one step) on its own. A
     * deadlock is caught too, and answers the whole group: the statement locks its rows in the order of its list of
     * keys, the evaluate function's order, as long as the planner joins the list to the table through the primary key;
     * on a table whose statistics show it small for the list's length (a few hundred rows for three keys) it may scan
     * the table and take the rows in the table's order. PostgreSQL then breaks any cycle, this statement rolls back and
     * the function decides. A shared call waits for a row locked elsewhere a quarter of its time at most ({@link
     * #sharedLockTimeoutMillis}), then fails having committed nothing.
     *
     * @throws CallCombiner.NotSent around the failure when it failed before the statement went out (no connection)
     */
    private List<CallCombiner.Request> inBucketsUpdate(
            List<CallCombiner.Request> group, boolean allOrNothing, long deadlineNanos) {
        int n = steps(group);
        // Row s is step stepOf[s] of decision decisionOf[s].
        byte[][] hashes = new byte[n][];
        int[] decisionOf = new int[n];
        int[] stepOf = new int[n];
        int s = 0;
        for (int d = 0; d < group.size(); d++) {
            CallCombiner.Request r = group.get(d);
            for (int i = 0; i < r.keys.length; i++, s++) {
                hashes[s] = r.hashes[i];
                decisionOf[s] = d;
                stepOf[s] = i;
            }
        }
        int[] order = sortedOrder(hashes);
        boolean shared = group.size() > 1;
        String statement = sql.bucketsUpdate(n, allOrNothing, shared);
        int rows = n;
        boolean[] sent = new boolean[1];
        long[] levels;
        try {
            levels = inStatement(group.get(0).operation, c -> {
                try (PreparedStatement ps = c.prepareStatement(statement)) {
                    int p = 1;
                    for (int o = 0; o < rows; o++) {
                        int row = order[o];
                        CallCombiner.Request r = group.get(decisionOf[row]);
                        TokenBucket bucket = (TokenBucket) r.specs[stepOf[row]];
                        ps.setBytes(p++, hashes[row]);
                        ps.setLong(p++, r.nowMicros);
                        ps.setLong(p++, bucket.capacityTicks());
                        ps.setLong(p++, bucket.ticksPerMicro());
                        ps.setLong(p++, r.permits[stepOf[row]] * bucket.ticksPerToken());
                    }
                    if (shared) {
                        ps.setString(p++, Integer.toString(sharedLockTimeoutMillis(deadlineNanos)));
                    }
                    if (allOrNothing) {
                        ps.setInt(p, rows);
                    }
                    // The level after each row's step; -1: not updated.
                    long[] updated = new long[rows];
                    Arrays.fill(updated, -1);
                    int found = 0;
                    sent[0] = true;
                    try (ResultSet rs = watchdog.executeQuery(ps, deadlineNanos)) {
                        while (rs.next()) {
                            byte[] hash = rs.getBytes(1);
                            long level = rs.getLong(2);
                            for (int row = 0; row < rows; row++) {
                                if (Arrays.equals(hash, hashes[row])) {
                                    updated[row] = level;
                                    found++;
                                    break; // the keys are distinct
                                }
                            }
                        }
                    }
                    if (allOrNothing && found != 0 && found != rows) {
                        throw new IllegalStateException(
                                "the buckets update answered " + found + " of " + rows + " rows");
                    }
                    return updated;
                } catch (SQLException e) {
                    return undecided(c, e);
                }
            });
        } catch (GuardStorageException e) {
            throw sent[0] ? e : new CallCombiner.NotSent(e);
        }
        if (levels == null) {
            return group;
        }
        List<CallCombiner.Request> left = new ArrayList<>();
        s = 0;
        for (CallCombiner.Request r : group) {
            long[] outcomes = new long[r.keys.length];
            boolean admitted = true;
            for (int i = 0; i < r.keys.length; i++, s++) {
                TokenBucket bucket = (TokenBucket) r.specs[i];
                admitted &= levels[s] >= 0;
                outcomes[i] = Outcome.admitted(levels[s] / bucket.ticksPerToken());
            }
            if (admitted) {
                r.complete(outcomes);
            } else {
                left.add(r);
            }
        }
        return left;
    }

    /**
     * After a bucket {@code UPDATE} failed with {@code e} on {@code c}: null, for the evaluate function to decide, when
     * it rolled back for one of {@link #UNDECIDED_STATES} (having committed nothing); otherwise {@code e}, thrown.
     */
    private static <T> T undecided(Connection c, SQLException e) throws SQLException {
        if (!StorageFailures.hasState(e, UNDECIDED_STATES)) {
            throw e;
        }
        if (!c.getAutoCommit()) {
            c.rollback();
        }
        return null;
    }

    /** The indexes of {@code hashes} in lock order. Insertion sort: batches are a handful of steps. */
    private static int[] sortedOrder(byte[][] hashes) {
        int n = hashes.length;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            int j = i;
            while (j > 0 && KeyCodec.compare(hashes[order[j - 1]], hashes[i]) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
        return order;
    }

    /**
     * PostgreSQL, one token bucket step that the bucket admits, on a key that has a row: one plain {@code UPDATE}
     * ({@link TableSql#bucketUpdate}), one round trip under auto-commit. Empty when it updated nothing, having written
     * nothing: a first touch, a rejection or anything unusual, which {@link #inBucketStatement} then decides.
     */
    private OptionalLong inBucketUpdate(
            String operation, TokenBucket bucket, long permits, byte[] hash, long nowMicros, long deadlineNanos) {
        long cost = permits * bucket.ticksPerToken();
        return inStatement(operation, c -> {
            try (PreparedStatement ps = c.prepareStatement(bucketUpdate.sql())) {
                int[] slots = bucketUpdate.slots();
                for (int i = 0; i < slots.length; i++) {
                    TableSql.BucketParam param = BUCKET_PARAMS[slots[i]];
                    switch (param) {
                        case HASH -> ps.setBytes(i + 1, hash);
                        case NOW -> ps.setLong(i + 1, nowMicros);
                        case CAP -> ps.setLong(i + 1, bucket.capacityTicks());
                        case RATE -> ps.setLong(i + 1, bucket.ticksPerMicro());
                        case COST -> ps.setLong(i + 1, cost);
                        default -> throw new IllegalStateException("the bucket update does not take " + param);
                    }
                }
                try (ResultSet rs = watchdog.executeQuery(ps, deadlineNanos)) {
                    return rs.next()
                            ? OptionalLong.of(Outcome.admitted(rs.getLong(1) / bucket.ticksPerToken()))
                            : OptionalLong.empty();
                }
            }
        });
    }

    /**
     * PostgreSQL, one token bucket step that {@link #inBucketUpdate} left undecided: the decision in one plain
     * statement ({@link TableSql#bucketDecision}), one round trip under auto-commit. Empty when the statement could not
     * decide exactly (a concurrent first touch, a gate or membership under the key, a full bucket whose last update is
     * not before now): nothing was written then, and the evaluate function decides.
     */
    private OptionalLong inBucketStatement(
            String operation,
            StateKey key,
            TokenBucket bucket,
            long permits,
            byte[] hash,
            long nowMicros,
            long deadlineNanos) {
        long[] first = bucket.commit(null, nowMicros, permits);
        long firstTtl = bucket.ttlMicros(first, nowMicros);
        Object[] values = new Object[BUCKET_PARAMS.length];
        values[TableSql.BucketParam.HASH.ordinal()] = hash;
        values[TableSql.BucketParam.SUBJECT_HASH.ordinal()] = KeyCodec.subjectHash(key.subject());
        values[TableSql.BucketParam.SCOPE.ordinal()] = KeyCodec.displayText(key.scope());
        values[TableSql.BucketParam.SUBJECT.ordinal()] = KeyCodec.displayText(key.subject());
        values[TableSql.BucketParam.FIRST_LEVEL.ordinal()] = first[0];
        values[TableSql.BucketParam.FIRST_EXPIRY.ordinal()] = expiry(nowMicros, firstTtl);
        values[TableSql.BucketParam.NOW.ordinal()] = nowMicros;
        values[TableSql.BucketParam.CAP.ordinal()] = bucket.capacityTicks();
        values[TableSql.BucketParam.RATE.ordinal()] = bucket.ticksPerMicro();
        values[TableSql.BucketParam.COST.ordinal()] = permits * bucket.ticksPerToken();
        return inStatement(operation, c -> {
            try (PreparedStatement ps = c.prepareStatement(bucketDecision.sql())) {
                int[] slots = bucketDecision.slots();
                for (int i = 0; i < slots.length; i++) {
                    Object v = values[slots[i]];
                    if (v instanceof byte[] bytes) {
                        ps.setBytes(i + 1, bytes);
                    } else if (v instanceof String text) {
                        ps.setString(i + 1, text);
                    } else {
                        ps.setLong(i + 1, (Long) v);
                    }
                }
                try (ResultSet rs = watchdog.executeQuery(ps, deadlineNanos)) {
                    if (!rs.next()) {
                        return OptionalLong.empty();
                    }
                    long[] state = readState(rs, 3);
                    if (rs.getBoolean(1)) {
                        return OptionalLong.of(Outcome.admitted(state[0] / bucket.ticksPerToken()));
                    }
                    StoredRow row = new StoredRow(rs.getInt(2), state, 0, rs.getLong(4));
                    long outcome = row.kind() == StoredRow.LIMIT
                            ? bucket.evaluate(row.liveState(nowMicros), nowMicros, permits)
                            : 0;
                    // The statement refused exactly what the reference rejects; anything else goes the general way.
                    return Outcome.isAdmitted(outcome) ? OptionalLong.empty() : OptionalLong.of(outcome);
                }
            }
        });
    }

    /**
     * PostgreSQL: the decisions of {@code group} in one call of the evaluate function, one round trip under
     * auto-commit: their distinct keys in lock order, each decision's steps pointing at them; completes each request.
     * With {@code shared} (a shared call, or what its UPDATE left of it, even one decision) it waits for a row locked
     * elsewhere a quarter of its time at most ({@link #sharedLockTimeoutMillis}).
     *
     * @throws CallCombiner.NotSent around the failure when it failed before the statement went out (no connection)
     */
    private void inFunction(List<CallCombiner.Request> group, boolean shared, long deadlineNanos) {
        int steps = steps(group);
        // Every step of the group, ordered by key hash, so that equal keys (of different decisions) are neighbours.
        StateKey[] stepKeys = new StateKey[steps];
        byte[][] stepHashes = new byte[steps][];
        int s = 0;
        for (CallCombiner.Request r : group) {
            for (int i = 0; i < r.keys.length; i++, s++) {
                stepKeys[s] = r.keys[i];
                stepHashes[s] = r.hashes[i];
            }
        }
        int[] order = sortedOrder(stepHashes);
        int[] keyOf = new int[steps];
        List<byte[]> hashes = new ArrayList<>(steps);
        List<byte[]> subjectHashes = new ArrayList<>(steps);
        List<String> scopes = new ArrayList<>(steps);
        List<String> subjects = new ArrayList<>(steps);
        for (int o = 0; o < steps; o++) {
            int step = order[o];
            if (hashes.isEmpty() || !Arrays.equals(hashes.get(hashes.size() - 1), stepHashes[step])) {
                StateKey key = stepKeys[step];
                hashes.add(stepHashes[step]);
                subjectHashes.add(KeyCodec.subjectHash(key.subject()));
                scopes.add(KeyCodec.displayText(key.scope()));
                subjects.add(KeyCodec.displayText(key.subject()));
            }
            // One-based, as PostgreSQL's arrays are.
            keyOf[step] = hashes.size();
        }
        long[] codes = new long[steps * SpecCodes.STRIDE];
        int[] ends = new int[group.size()];
        long[] nows = new long[group.size()];
        s = 0;
        for (int d = 0; d < group.size(); d++) {
            CallCombiner.Request r = group.get(d);
            for (int i = 0; i < r.keys.length; i++, s++) {
                SpecCodes.encode(r.specs[i], r.permits[i], codes, s * SpecCodes.STRIDE);
            }
            ends[d] = s;
            nows[d] = r.nowMicros;
        }
        int total = steps;
        // A shared call waits for a row locked elsewhere a quarter of its time at most, then fails whole, having
        // committed nothing: its decisions go again alone, and only the one that needs the row waits for it.
        int lockTimeoutMillis = shared ? sharedLockTimeoutMillis(deadlineNanos) : 0;
        // Whether the statement went out: a failure before (the pool gave no connection) committed nothing.
        boolean[] sent = new boolean[1];
        long[] outcomes;
        try {
            outcomes = inStatement(group.get(0).operation, c -> {
                try (PreparedStatement ps = c.prepareStatement(sql.evaluateFunction())) {
                    // Java arrays, which pgjdbc sends as binary arrays: no array text to build and escape.
                    ps.setObject(1, hashes.toArray(new byte[0][]));
                    ps.setObject(2, subjectHashes.toArray(new byte[0][]));
                    ps.setObject(3, scopes.toArray(new String[0]));
                    ps.setObject(4, subjects.toArray(new String[0]));
                    ps.setObject(5, keyOf);
                    ps.setObject(6, codes);
                    ps.setObject(7, ends);
                    ps.setObject(8, nows);
                    ps.setBoolean(9, synchronousCommit);
                    ps.setInt(10, lockTimeoutMillis);
                    sent[0] = true;
                    try (ResultSet rs = watchdog.executeQuery(ps, deadlineNanos)) {
                        if (!rs.next()) {
                            throw new SQLException("the evaluate function answered no row");
                        }
                        return longs(rs.getArray(1), total);
                    }
                }
            });
        } catch (GuardStorageException e) {
            throw sent[0] ? e : new CallCombiner.NotSent(e);
        }
        s = 0;
        for (CallCombiner.Request r : group) {
            r.complete(Arrays.copyOfRange(outcomes, s, s + r.keys.length));
            s += r.keys.length;
        }
    }

    /**
     * How long a shared call waits for a row locked elsewhere: a quarter of its time left, at least 1 ms. It then fails
     * whole, having committed nothing, and its decisions go again alone, so that only the one that needs the row waits
     * for it.
     */
    private static int sharedLockTimeoutMillis(long deadlineNanos) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (deadlineNanos - System.nanoTime()) / 4_000_000));
    }

    /** The generic decision: lock and read the rows, run the reference semantics here, write back. */
    private long[] inJava(
            Connection c,
            StateKey[] keys,
            LimitSpec[] specs,
            long[] permits,
            byte[][] hashes,
            int[] order,
            long nowMicros)
            throws SQLException {
        int n = keys.length;
        StateKey[] sortedKeys = new StateKey[n];
        byte[][] sortedHashes = new byte[n][];
        for (int i = 0; i < n; i++) {
            sortedKeys[i] = keys[order[i]];
            sortedHashes[i] = hashes[order[i]];
        }
        StoredRow[] rows = lock(c, sql.lock(n), sortedKeys, sortedHashes);
        long[] outcomes = new long[n];
        long[][] states = new long[n][];
        boolean admitted = true;
        for (int i = 0; i < n; i++) {
            int s = order[i];
            states[i] = rows[i].liveState(nowMicros);
            outcomes[i] = specs[s].evaluate(states[i], nowMicros, permits[s]);
            admitted &= outcomes[i] >= 0;
        }
        List<RowWrite> writes = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int s = order[i];
            if (admitted && SpecCodes.commits(specs[s])) {
                long[] next = specs[s].commit(states[i], nowMicros, permits[s]);
                long ttl = next == null ? 0 : specs[s].ttlMicros(next, nowMicros);
                writes.add(
                        ttl <= 0
                                ? RowWrite.absent(sortedHashes[i])
                                : RowWrite.limit(sortedHashes[i], next, expiry(nowMicros, ttl)));
            } else if (rows[i].expired(nowMicros)) {
                // The reference drops expired state when it reads it: absent from now on, even if the clock goes back.
                writes.add(RowWrite.absent(sortedHashes[i]));
            }
        }
        write(c, writes);
        return outcomes;
    }

    /** When a state of {@code ttlMicros} expires: never for an endless ttl; saturated near the end of time. */
    private static long expiry(long nowMicros, long ttlMicros) {
        return ttlMicros == Long.MAX_VALUE ? Long.MAX_VALUE : Saturated.plus(nowMicros, ttlMicros);
    }

    /**
     * Inserts a placeholder for every key without a row, locks all of them in the given (sorted) order and reads them
     * with {@code lockSql} ({@link TableSql#lock} or {@link TableSql#lockOne}): one statement, two on MySQL. H2
     * reports a key inserted concurrently by another transaction as a duplicate once that one commits; the row exists
     * then, so the statement is simply run again.
     */
    private StoredRow[] lock(Connection c, String lockSql, StateKey[] keys, byte[][] hashes) throws SQLException {
        int n = keys.length;
        for (int attempt = 0; ; attempt++) {
            try (PreparedStatement ps = c.prepareStatement(lockSql)) {
                ps.setQueryTimeout(timeoutSeconds);
                int p = 1;
                for (int i = 0; i < n; i++) {
                    ps.setBytes(p++, hashes[i]);
                    ps.setBytes(p++, KeyCodec.subjectHash(keys[i].subject()));
                    ps.setString(p++, KeyCodec.displayText(keys[i].scope()));
                    ps.setString(p++, KeyCodec.displayText(keys[i].subject()));
                }
                if (dialect == JdbcDialect.MYSQL) {
                    ps.executeUpdate();
                    return selectLocked(c, hashes);
                }
                try (ResultSet rs = ps.executeQuery()) {
                    return readRows(rs, hashes);
                }
            } catch (SQLException e) {
                if (dialect != JdbcDialect.H2 || !"23505".equals(e.getSQLState()) || attempt >= H2_DUPLICATE_RETRIES) {
                    throw e;
                }
            }
        }
    }

    private StoredRow[] selectLocked(Connection c, byte[][] hashes) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql.selectLocked(hashes.length))) {
            ps.setQueryTimeout(timeoutSeconds);
            for (int i = 0; i < hashes.length; i++) {
                ps.setBytes(i + 1, hashes[i]);
            }
            try (ResultSet rs = ps.executeQuery()) {
                return readRows(rs, hashes);
            }
        }
    }

    /** Reads key_hash, kind, state, version, expires_at rows into the order of {@code hashes}. */
    private StoredRow[] readRows(ResultSet rs, byte[][] hashes) throws SQLException {
        StoredRow[] rows = new StoredRow[hashes.length];
        while (rs.next()) {
            byte[] hash = rs.getBytes(1);
            int at = indexOf(hashes, hash);
            if (at < 0) {
                throw new SQLException("the database answered a row that was not asked for");
            }
            rows[at] = new StoredRow(rs.getInt(2), readState(rs, 3), rs.getLong(4), rs.getLong(5));
        }
        for (StoredRow row : rows) {
            if (row == null) {
                throw new SQLException("a locked row is missing from the database's answer");
            }
        }
        return rows;
    }

    private static int indexOf(byte[][] hashes, byte[] hash) {
        for (int i = 0; i < hashes.length; i++) {
            if (Arrays.equals(hashes[i], hash)) {
                return i;
            }
        }
        return -1;
    }

    private long[] readState(ResultSet rs, int column) throws SQLException {
        if (dialect == JdbcDialect.POSTGRESQL) {
            Array array = rs.getArray(column);
            return array == null ? null : longs(array, -1);
        }
        return KeyCodec.decodeState(rs.getBytes(column));
    }

    private static long[] longs(Array array, int expected) throws SQLException {
        Object[] values = (Object[]) array.getArray();
        if (expected >= 0 && values.length != expected) {
            throw new SQLException("expected " + expected + " outcomes but the database answered " + values.length);
        }
        long[] out = new long[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = ((Number) values[i]).longValue();
        }
        array.free();
        return out;
    }

    /** A row's new content, written over a row that this transaction has locked. */
    private record RowWrite(byte[] hash, int kind, long[] state, byte[] record, long version, long expiresAtMicros) {
        static RowWrite absent(byte[] hash) {
            return new RowWrite(hash, StoredRow.ABSENT, null, null, 0, 0);
        }

        static RowWrite limit(byte[] hash, long[] state, long expiresAtMicros) {
            return new RowWrite(hash, StoredRow.LIMIT, state, null, 0, expiresAtMicros);
        }
    }

    /** Writes rows in one statement execution: a JDBC batch, which the drivers send in one round trip. */
    private void write(Connection c, List<RowWrite> writes) throws SQLException {
        if (writes.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = c.prepareStatement(sql.write())) {
            ps.setQueryTimeout(timeoutSeconds);
            for (RowWrite w : writes) {
                ps.setInt(1, w.kind());
                bindState(c, ps, 2, w.state());
                if (w.record() == null) {
                    ps.setNull(3, Types.VARBINARY);
                } else {
                    ps.setBytes(3, w.record());
                }
                ps.setLong(4, w.version());
                ps.setLong(5, w.expiresAtMicros());
                ps.setBytes(6, w.hash());
                if (writes.size() > 1) {
                    ps.addBatch();
                }
            }
            if (writes.size() > 1) {
                ps.executeBatch();
            } else {
                ps.executeUpdate();
            }
        }
    }

    private void bindState(Connection c, PreparedStatement ps, int index, long[] state) throws SQLException {
        if (dialect == JdbcDialect.POSTGRESQL) {
            if (state == null) {
                ps.setNull(index, Types.ARRAY);
            } else {
                Long[] boxed = new Long[state.length];
                for (int i = 0; i < state.length; i++) {
                    boxed[i] = state[i];
                }
                ps.setArray(index, c.createArrayOf("int8", boxed));
            }
        } else if (state == null) {
            ps.setNull(index, Types.VARBINARY);
        } else {
            ps.setBytes(index, KeyCodec.encodeState(state));
        }
    }

    /**
     * Locks (creating if need be) the one row of {@code key} and answers it with its hash: for a gate, a set member or
     * a record, whose transaction commits with the server's setting.
     */
    private StoredRow lockOne(Connection c, StateKey key, byte[] hash) throws SQLException {
        return lock(c, sql.lockOne(), new StateKey[] {key}, new byte[][] {hash})[0];
    }

    @Override
    public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        byte[] hash = KeyCodec.keyHash(key);
        return inTransactionAgainAfterDeadlocks("raiseGate", c -> {
            StoredRow row = lockOne(c, key, hash);
            // A deadline that has passed is in force no more: it merges with nothing.
            long current = row.kind() == StoredRow.GATE && row.expiresAtMicros() > nowMicros
                    ? row.expiresAtMicros()
                    : Long.MIN_VALUE;
            long until = Math.max(current, untilMicros);
            write(c, List.of(new RowWrite(hash, StoredRow.GATE, null, null, 0, until)));
            return until;
        });
    }

    @Override
    public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        byte[] hash = KeyCodec.keyHash(key);
        inTransactionAgainAfterDeadlocks("addMember", c -> {
            lockOne(c, key, hash);
            write(c, List.of(new RowWrite(hash, StoredRow.MEMBER, null, null, 0, expiresAtMicros)));
            return null;
        });
    }

    @Override
    public boolean removeMember(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        byte[] hash = KeyCodec.keyHash(key);
        return inTransactionAgainAfterDeadlocks("removeMember", c -> {
            StoredRow row = lockOne(c, key, hash);
            delete(c, List.of(hash));
            return row.hasState();
        });
    }

    @Override
    public boolean isMember(StateKey key, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        byte[] hash = KeyCodec.keyHash(key);
        return inStatement("isMember", c -> {
            StoredRow row;
            try (PreparedStatement ps = c.prepareStatement(sql.read())) {
                ps.setQueryTimeout(timeoutSeconds);
                ps.setBytes(1, hash);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return false;
                    }
                    row = new StoredRow(rs.getInt(1), readState(rs, 2), rs.getLong(3), rs.getLong(4));
                }
            }
            if (row.expired(nowMicros)) {
                // As in a decision: expired state reads as absent from now on, even if the clock goes back later.
                try (PreparedStatement ps = c.prepareStatement(sql.resetExpired())) {
                    ps.setQueryTimeout(timeoutSeconds);
                    ps.setBytes(1, hash);
                    ps.setLong(2, nowMicros);
                    ps.executeUpdate();
                }
                return false;
            }
            return Membership.isMember(row.liveState(nowMicros), nowMicros);
        });
    }

    @Override
    public Optional<VersionedRecord> getRecord(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        byte[] hash = KeyCodec.keyHash(key);
        return inStatement("getRecord", c -> {
            try (PreparedStatement ps = c.prepareStatement(sql.read())) {
                ps.setQueryTimeout(timeoutSeconds);
                ps.setBytes(1, hash);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next() || rs.getInt(1) != StoredRow.RECORD) {
                        return Optional.empty();
                    }
                    return Optional.of(new VersionedRecord(rs.getBytes(5), rs.getLong(3)));
                }
            }
        });
    }

    @Override
    public long putRecord(StateKey key, byte[] value, long expectedVersion) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(value, "value must not be null");
        if (expectedVersion < 0) {
            throw new IllegalArgumentException("expectedVersion must not be negative but was " + expectedVersion);
        }
        byte[] copy = value.clone();
        byte[] hash = KeyCodec.keyHash(key);
        return inTransactionAgainAfterDeadlocks("putRecord", c -> {
            StoredRow row = lockOne(c, key, hash);
            long version = row.kind() == StoredRow.RECORD ? row.version() : 0;
            if (version != expectedVersion) {
                c.rollback(); // also drops the placeholder a first touch inserted
                return -1L;
            }
            write(c, List.of(new RowWrite(hash, StoredRow.RECORD, null, copy, version + 1, Long.MAX_VALUE)));
            return version + 1;
        });
    }

    /**
     * {@link #inTransaction(String, Work)}, sent again while the database aborts it to break a deadlock (it then
     * committed nothing), as {@link #againAfterDeadlocks}: even an operation on one row, which holds no other, can be a
     * deadlock's victim while it waits for its row in the queue between two transactions that take rows in opposite
     * orders (or, on MariaDB and MySQL, behind a first touch that rolls back).
     */
    private <T> T inTransactionAgainAfterDeadlocks(String operation, Work<T> work) {
        return againAfterDeadlocks(System.nanoTime() + timeoutNanos, () -> inTransaction(operation, work));
    }

    /**
     * Deletes every row of {@code subject}, one by one in key order (the lock order of decisions, so a concurrent
     * decision waits rather than deadlocks; on PostgreSQL a chain of buckets planned as a scan of the table may take
     * its rows in another order, and a deletion that PostgreSQL aborts to break such a deadlock goes again, as a
     * decision does). Not a hot-path operation: it reads the subject's index first.
     */
    @Override
    public long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        byte[] subjectHash = KeyCodec.subjectHash(subject);
        return inTransactionAgainAfterDeadlocks("forget", c -> {
            List<byte[]> hashes = new ArrayList<>();
            List<Integer> kinds = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(sql.subjectKeys())) {
                ps.setQueryTimeout(timeoutSeconds);
                ps.setBytes(1, subjectHash);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        hashes.add(rs.getBytes(1));
                        kinds.add(rs.getInt(2));
                    }
                }
            }
            Integer[] order = new Integer[hashes.size()];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (a, b) -> KeyCodec.compare(hashes.get(a), hashes.get(b)));
            List<byte[]> sorted = new ArrayList<>(order.length);
            for (Integer i : order) {
                sorted.add(hashes.get(i));
            }
            int[] deleted = delete(c, sorted);
            long removed = 0;
            for (int i = 0; i < order.length; i++) {
                // A placeholder is absent state: deleting it removes no key. SUCCESS_NO_INFO (-2) counts as deleted.
                if (deleted[i] != 0 && kinds.get(order[i]) != StoredRow.ABSENT) {
                    removed++;
                }
            }
            return removed;
        });
    }

    private int[] delete(Connection c, List<byte[]> hashes) throws SQLException {
        if (hashes.isEmpty()) {
            return new int[0];
        }
        try (PreparedStatement ps = c.prepareStatement(sql.delete())) {
            ps.setQueryTimeout(timeoutSeconds);
            for (byte[] hash : hashes) {
                ps.setBytes(1, hash);
                ps.addBatch();
            }
            return ps.executeBatch();
        }
    }

    /**
     * Deletes rows that expired at or before the {@link Builder#ticker(Ticker) ticker}'s now minus the {@link
     * Builder#sweepGrace(Duration) grace} (expired for the grace at least), in batches of {@link
     * Builder#sweepBatchSize(int)}, each its own short transaction that skips rows a decision holds. Each batch looks
     * at the next 8 batch sizes of keys at most (a window of the primary key's order), however few of them have
     * expired, so that no statement reads a large table of live rows to its end. One call walks at most 100 batches and
     * continues where the last call stopped. The background sweeper calls this; call it yourself when {@link
     * Builder#sweepInterval} is zero (again at once while a call stops at its 100 batches having deleted half as many
     * rows as it may, to keep up).
     *
     * @return how many rows were deleted
     * @throws GuardStorageException if the database fails
     */
    public long sweep() {
        return sweepRun().deleted();
    }

    /**
     * What one run of the sweeper did: how many rows it deleted, and whether it stopped at its cap of {@value
     * #SWEEP_BATCHES_PER_CALL} batches before the end of the table (rather than reaching that end).
     */
    record SweepRun(long deleted, boolean stoppedAtCap) {}

    /** {@link #sweep()}, telling also whether the run stopped at its cap of batches. */
    SweepRun sweepRun() {
        return sweepRun(false);
    }

    /** {@link #sweepRun()}; a background run ({@code background}) stops before its next batch once closed. */
    private synchronized SweepRun sweepRun(boolean background) {
        long before = ticker.epochMicros() - sweepGraceMicros;
        int window = sweepBatchSize * SWEEP_WINDOW_BATCHES;
        long total = 0;
        for (int batch = 0; batch < SWEEP_BATCHES_PER_CALL; batch++) {
            if (background && closed) {
                // close() stops a background run between its batches rather than after all of them.
                return new SweepRun(total, false);
            }
            byte[] from = sweepCursor;
            // The batch's expired rows in key order, which the cursor passes; the sweep deletes those it locked.
            List<byte[]> found = new ArrayList<>();
            // The last key of the batch's window, or null when the window reaches the end of the table.
            byte[][] windowEnd = new byte[1][];
            total += inTransaction("sweep", c -> {
                if (dialect != JdbcDialect.H2) {
                    // The first statement, so that it sets this transaction's isolation whatever the pool's default.
                    // On MariaDB and MySQL, REPEATABLE READ would lock the scanned gaps and hold up first touches. On
                    // PostgreSQL, REPEATABLE READ or SERIALIZABLE would fail the locking read (40001) on any expired
                    // row that a decision updated after the batch's first statement took its snapshot.
                    try (Statement s = c.createStatement()) {
                        s.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
                    }
                }
                // A batch looks at the next `window` keys at most, however few of them have expired: without an index
                // on expires_at, a search for expired rows alone would read the rest of a table of live rows in one
                // statement, past any statement timeout, and the cursor would never move.
                List<byte[]> ends = keyHashes(c, sql.sweepWindowEnd(), ps -> {
                    ps.setBytes(1, from);
                    ps.setInt(2, window - 1);
                });
                windowEnd[0] = ends.isEmpty() ? null : ends.get(0);
                byte[] to = ends.isEmpty() ? LAST_HASH : ends.get(0);
                // The batch's expired rows, locked by the same read except on H2, which locks them in a second one.
                boolean lockSeparately = sql.sweepLocksSeparately();
                found.addAll(keyHashes(c, lockSeparately ? sql.sweepFind() : sql.sweepSelect(), ps -> {
                    ps.setBytes(1, from);
                    ps.setBytes(2, to);
                    ps.setLong(3, before);
                    ps.setInt(4, sweepBatchSize);
                }));
                List<byte[]> locked = found;
                if (lockSeparately && !found.isEmpty()) {
                    // Rows that a decision revived since are no longer expired, and are neither locked nor deleted.
                    locked = keyHashes(c, sql.sweepLockRange(), ps -> {
                        ps.setBytes(1, found.get(0));
                        ps.setBytes(2, found.get(found.size() - 1));
                        ps.setLong(3, before);
                    });
                }
                if (locked.isEmpty()) {
                    return 0L;
                }
                try (PreparedStatement ps = c.prepareStatement(sql.sweepDelete())) {
                    ps.setQueryTimeout(timeoutSeconds);
                    for (byte[] hash : locked) {
                        ps.setBytes(1, hash);
                        ps.setLong(2, before);
                        ps.addBatch();
                    }
                    long deleted = 0;
                    for (int count : ps.executeBatch()) {
                        deleted += count == Statement.SUCCESS_NO_INFO ? 1 : count;
                    }
                    return deleted;
                }
            });
            if (found.size() == sweepBatchSize) {
                // The batch filled up inside its window: the next one goes on after its last row.
                sweepCursor = found.get(found.size() - 1);
            } else if (windowEnd[0] != null) {
                // The whole window was looked at.
                sweepCursor = windowEnd[0];
            } else {
                // The end of the table: the next call starts over.
                sweepCursor = new byte[KeyCodec.HASH_BYTES];
                return new SweepRun(total, false);
            }
        }
        return new SweepRun(total, true);
    }

    @FunctionalInterface
    private interface Parameters {
        void bind(PreparedStatement ps) throws SQLException;
    }

    /** The key hashes that {@code query} answers in its first column, under the statement timeout. */
    private List<byte[]> keyHashes(Connection c, String query, Parameters parameters) throws SQLException {
        List<byte[]> hashes = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(query)) {
            ps.setQueryTimeout(timeoutSeconds);
            parameters.bind(ps);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    hashes.add(rs.getBytes(1));
                }
            }
        }
        return hashes;
    }

    /**
     * One run of the background sweeper, which then schedules the next on {@code sweeper} (unless it was shut down).
     * A failed run (an {@link Error} too) is logged and retried after the interval; decisions never depend on the
     * sweeper.
     */
    private void sweepInBackground(ScheduledExecutorService sweeper, long intervalMicros) {
        long delayMicros = intervalMicros;
        try {
            SweepRun run = sweepRun(true);
            LOG.debug("guard jdbc sweeper deleted {} expired rows from {}", run.deleted(), table);
            delayMicros = nextSweepDelayMicros(run, sweepBatchSize, intervalMicros);
        } catch (RuntimeException e) {
            LOG.warn("guard jdbc sweeper failed: {}", e.getMessage());
        } catch (Error e) {
            // From the driver, the pool or the ticker: without the next run scheduled, the sweeper would stop for good
            // and without a word (the executor keeps what a task throws), and expired rows would pile up.
            LOG.error("guard jdbc sweeper failed; it runs again after the interval", e);
        }
        try {
            sweeper.schedule(() -> sweepInBackground(sweeper, intervalMicros), delayMicros, TimeUnit.MICROSECONDS);
        } catch (RejectedExecutionException closed) {
            // close() shut the sweeper down during the run: nothing more to schedule.
        }
    }

    /**
     * How long the background sweeper waits after {@code run} before its next run, in microseconds: none when the run
     * stopped at its cap of batches having deleted at least half of the most it may ({@value #SWEEP_BATCHES_PER_CALL}
     * times {@code batchSize} rows), since expired rows are then left and a whole interval would let a table that
     * gains them faster grow without bound; the interval otherwise. A run that stops at its cap having deleted fewer
     * ran out of windows of live rows rather than of rows to delete, and waits the interval like a run that reached
     * the end of the table.
     */
    static long nextSweepDelayMicros(SweepRun run, int batchSize, long intervalMicros) {
        boolean behind = run.stoppedAtCap() && run.deleted() * 2 >= (long) SWEEP_BATCHES_PER_CALL * batchSize;
        return behind ? 0 : intervalMicros;
    }

    /**
     * PostgreSQL: whether {@code statement}, one of the schema's, creates an index that already exists, looked up in
     * the catalog. The statement itself ({@code CREATE INDEX IF NOT EXISTS}) would first wait for a SHARE lock on the
     * table, that is for every transaction that writes to it, and the decisions after it would queue behind it.
     */
    private boolean indexExists(Connection c, String statement) throws SQLException {
        String index = dialect == JdbcDialect.POSTGRESQL ? sql.createdIndex(statement) : null;
        if (index == null) {
            return false;
        }
        try (PreparedStatement ps = c.prepareStatement(sql.relationBesideTable())) {
            ps.setQueryTimeout(Math.max(timeoutSeconds, SCHEMA_TIMEOUT_SECONDS));
            ps.setString(1, sql.tableCommentKey());
            ps.setString(2, index);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
    }

    /**
     * The schema version that the table records ({@link TableSql#tableComment()}, one query): 0 when it records none,
     * empty when there is no table.
     */
    private OptionalInt installedVersion(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql.tableComment())) {
            ps.setQueryTimeout(timeoutSeconds);
            ps.setString(1, sql.tableCommentKey());
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? OptionalInt.of(TableSql.schemaVersion(rs.getString(1))) : OptionalInt.empty();
            }
        }
    }

    /**
     * Why a table of schema version {@code installed} (0: none recorded) does not do for a Guard that needs {@code
     * needed}, with the fix; null when it does.
     */
    static String schemaMismatch(JdbcDialect dialect, String table, int installed, int needed) {
        if (installed == needed) {
            return null;
        }
        String file = dialect.schemaResource();
        String has = dialect.label() + " table " + table + " has ";
        if (installed > needed) {
            return has + "schema version " + installed + ", newer than the version " + needed + " this Guard needs:"
                    + " upgrade Guard here too (this Guard's createSchema() or " + file + " would take the table back"
                    + " to version " + needed + ")";
        }
        return has
                + (installed == 0 ? "no schema version (a schema from before versions)" : "schema version " + installed)
                + ", this Guard needs version " + needed + ": run createSchema() or " + file + " again";
    }

    /**
     * Reads the schema's version for {@link Builder#build()}: over another version's schema, the first decision will
     * log so ({@link #schemaWarning}). A table that does not exist yet (createSchema() will create it) or a database
     * that cannot be read now is no warning; health() tells, whenever asked.
     */
    private void checkSchemaAtBuild() {
        try {
            OptionalInt installed = inStatement("read the schema version", this::installedVersion);
            if (installed.isPresent()) {
                schemaWarning.set(schemaMismatch(dialect, table, installed.getAsInt(), SCHEMA_VERSION));
            }
        } catch (GuardStorageException e) {
            LOG.debug("guard jdbc could not read the schema version of {}: {}", table, e.getMessage());
        }
    }

    /**
     * Probes the table with one indexed read, checks that it records this version of the schema (one read of its
     * comment: a schema of another version decides with that version's semantics) and, on PostgreSQL with the stored
     * function, that the evaluate function of this version is installed (chains fail without it); never throws. Down
     * over another version's schema, with both versions and the fix in the detail.
     */
    @Override
    public StorageHealth health() {
        if (closed && watchdog != null) {
            // Every decision fails from now on (see close()): the database may be fine, the storage is not.
            return StorageHealth.down(Duration.ZERO, "closed: " + this + " decides no more");
        }
        long start = System.nanoTime();
        try {
            String mismatch = inStatement("health", c -> {
                try (PreparedStatement ps = c.prepareStatement(sql.probe())) {
                    ps.setQueryTimeout(timeoutSeconds);
                    ps.setBytes(1, new byte[KeyCodec.HASH_BYTES]);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                    }
                }
                if (storedFunction) {
                    try (PreparedStatement ps = c.prepareStatement(TableSql.FUNCTION_PROBE)) {
                        ps.setQueryTimeout(timeoutSeconds);
                        ps.setString(1, sql.evaluateSignature());
                        try (ResultSet rs = ps.executeQuery()) {
                            if (!rs.next() || !rs.getBoolean(1)) {
                                // PostgreSQL's own state for a missing function (undefined_function).
                                throw new SQLException(
                                        "the function " + sql.evaluateSignature()
                                                + " is missing; run createSchema() or postgresql.sql again",
                                        "42883");
                            }
                        }
                    }
                }
                // The table exists: its probe read it.
                return schemaMismatch(dialect, table, installedVersion(c).orElse(0), SCHEMA_VERSION);
            });
            Duration latency = Duration.ofNanos(System.nanoTime() - start);
            return mismatch == null
                    ? StorageHealth.up(latency, dialect.label() + " " + table)
                    : StorageHealth.down(latency, mismatch);
        } catch (RuntimeException e) {
            return StorageHealth.down(Duration.ofNanos(System.nanoTime() - start), e.getMessage());
        }
    }

    /**
     * The dialect, the table and, on PostgreSQL, how decisions commit: for logs. Never a URL, user or password (the
     * storage does not know them; its data source does).
     */
    @Override
    public String toString() {
        return "JdbcStorage[" + dialect.label() + ", table " + table
                + (dialect == JdbcDialect.POSTGRESQL
                        ? (unloggedTable ? ", unlogged" : "")
                                + (synchronousCommit ? ", synchronous commit" : ", asynchronous commit")
                                + (storedFunction ? "" : ", without the stored function")
                        : "")
                + "]";
    }

    /**
     * Stops the sweeper and the watchdog; calling it again does nothing. Decisions in flight keep their timeout. On
     * PostgreSQL with the stored function (the default), decisions sent from now on fail with a {@link
     * GuardStorageException}, since nothing would bound them, and {@link #health()} is down. Where no watchdog runs
     * (H2, MariaDB, MySQL, or {@link Builder#storedFunction(boolean) storedFunction(false)}), each statement keeps
     * the driver's query timeout, and the storage goes on deciding, and answering {@link #health()}, without its
     * sweeper. The data source or Jdbi stays open: it belongs to the caller.
     */
    @Override
    public void close() {
        closed = true;
        if (sweeper != null) {
            sweeper.shutdownNow();
        }
        if (watchdog != null) {
            watchdog.close();
        }
    }

    @FunctionalInterface
    private interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    /** Runs {@code work} in a transaction of its own, committed when it returns and rolled back when it throws. */
    private <T> T inTransaction(String operation, Work<T> work) {
        return inTransaction(operation, networkTimeoutMillis, work);
    }

    /** {@link #inTransaction(String, Work)} with the connection's socket silent for {@code networkMillis} at most. */
    private <T> T inTransaction(String operation, int networkMillis, Work<T> work) {
        try (Lease lease = lease(networkMillis)) {
            Connection c = connected(lease.connection());
            boolean autoCommit = c.getAutoCommit();
            if (autoCommit) {
                c.setAutoCommit(false);
            }
            T result;
            try {
                result = work.run(c);
                c.commit();
            } catch (Throwable e) {
                // An Error too (the driver out of memory reading an answer): auto-commit switched back on with the
                // transaction still open would commit it. Switched back only after a rollback (a connection whose
                // rollback failed goes back to the pool as it is, which resets it), and never hiding the failure.
                if (rollbackQuietly(c, e) && autoCommit) {
                    try {
                        c.setAutoCommit(true);
                    } catch (SQLException | RuntimeException restoring) {
                        e.addSuppressed(restoring);
                    }
                }
                throw e;
            }
            if (autoCommit) {
                c.setAutoCommit(true);
            }
            return result;
        } catch (SQLException | RuntimeException e) {
            throw failure(operation, e);
        }
    }

    /**
     * Runs one statement's {@code work}: in auto-commit when the connection is in it (no round trip spent on
     * transaction control), otherwise followed by a commit.
     */
    private <T> T inStatement(String operation, Work<T> work) {
        try (Lease lease = lease(networkTimeoutMillis)) {
            Connection c = connected(lease.connection());
            if (c.getAutoCommit()) {
                return work.run(c);
            }
            try {
                T result = work.run(c);
                c.commit();
                return result;
            } catch (Throwable e) {
                rollbackQuietly(c, e);
                throw e;
            }
        } catch (SQLException | RuntimeException e) {
            throw failure(operation, e);
        }
    }

    /**
     * A connection from the source whose socket may stay silent for {@code networkMillis} at most while it is leased,
     * unless its own network timeout is shorter: the statement timeouts bound a call only while the server answers
     * (MariaDB and MySQL time statements out on the server, and PostgreSQL's cancel is a message to it). The network
     * timeout it had is set again when the lease ends, so a pooled connection goes back as it came. A driver older
     * than JDBC 4.1 (an {@link AbstractMethodError}, as HikariCP also takes it) has no network timeout; any other
     * failure, an {@link Error} too, gives the connection back before it is thrown.
     */
    private Lease lease(int networkMillis) throws SQLException {
        Lease lease = connections.open();
        if (networkTimeouts) {
            try {
                lease.boundNetwork(networkMillis);
            } catch (SQLFeatureNotSupportedException | UnsupportedOperationException | AbstractMethodError e) {
                networkTimeouts = false;
            } catch (Throwable e) {
                try {
                    lease.close();
                } catch (Throwable closing) {
                    e.addSuppressed(closing);
                }
                throw e;
            }
        }
        return lease;
    }

    /** {@code c}, after building {@link #sql} from its metadata if this is the storage's first connection (H2). */
    private Connection connected(Connection c) throws SQLException {
        if (sql == null) {
            sql = new TableSql(dialect, table, TableSql.NameCase.of(c.getMetaData()), !synchronousCommit);
        }
        return c;
    }

    private RuntimeException failure(String operation, Exception e) {
        if (e instanceof GuardStorageException g) {
            return g;
        }
        return StorageFailures.of(dialect, operation, e);
    }

    /** Rolls back, adding a failure to do so to {@code failure}; answers whether the rollback went through. */
    private static boolean rollbackQuietly(Connection c, Throwable failure) {
        try {
            c.rollback();
            return true;
        } catch (SQLException | RuntimeException e) {
            failure.addSuppressed(e);
            return false;
        }
    }

    private static byte[] lastHash() {
        byte[] hash = new byte[KeyCodec.HASH_BYTES];
        Arrays.fill(hash, (byte) 0xFF);
        return hash;
    }

    private static long micros(Duration d) {
        return Math.addExact(Math.multiplyExact(d.getSeconds(), 1_000_000L), d.getNano() / 1_000);
    }

    /** Twice a statement timeout of {@code seconds} in milliseconds, at most {@link Integer#MAX_VALUE}. */
    private static int networkTimeoutMillis(int seconds) {
        return (int) Math.min(Integer.MAX_VALUE, seconds * 2_000L);
    }

    private static long ceilSeconds(Duration d) {
        return d.getSeconds() + (d.getNano() > 0 ? 1 : 0);
    }

    /** Where connections come from: a data source, or Jdbi handles. */
    @FunctionalInterface
    private interface ConnectionSource {
        Lease open() throws SQLException;
    }

    /** A borrowed connection and how to give it back. */
    private static final class Lease implements AutoCloseable {
        private final Connection connection;
        private final Closer closer;
        /** The network timeout to set again when the lease ends, or -1 when it was left as it was. */
        private int restoreNetworkMillis = -1;

        Lease(Connection connection, Closer closer) {
            this.connection = connection;
            this.closer = closer;
        }

        Connection connection() {
            return connection;
        }

        /** Bounds the connection's socket reads to {@code millis} unless they are bounded more tightly already. */
        void boundNetwork(int millis) throws SQLException {
            int current = connection.getNetworkTimeout();
            if (current == 0 || current > millis) {
                connection.setNetworkTimeout(DIRECT, millis);
                restoreNetworkMillis = current;
            }
        }

        @Override
        public void close() throws SQLException {
            try {
                if (restoreNetworkMillis >= 0 && !connection.isClosed()) {
                    connection.setNetworkTimeout(DIRECT, restoreNetworkMillis);
                }
            } catch (SQLException | RuntimeException e) {
                // The connection broke as the call ended: the call's own outcome stands, and the pool drops the
                // connection at its next check.
                LOG.debug(
                        "guard jdbc could not restore a connection's network timeout: {}",
                        StorageFailures.redact(String.valueOf(e.getMessage())));
            } finally {
                closer.close();
            }
        }
    }

    @FunctionalInterface
    private interface Closer {
        void close() throws SQLException;
    }

    /**
     * Configures a {@link JdbcStorage}. Setters fail at once on a bad value with a message naming the setting and the
     * value. Not thread-safe; build once.
     */
    public static final class Builder {
        /** The longest timeout that the watchdog can count in nanoseconds (a long holds about 106751.99 days). */
        private static final Duration MAX_TIMEOUT = Duration.ofDays(106_751);
        /** The default of {@link #concurrentCalls}. */
        public static final int DEFAULT_CONCURRENT_CALLS = 2;
        /** The longest sweep interval or grace in microseconds of a long (about 106751991.17 days). */
        private static final Duration MAX_SWEEP_DURATION = Duration.ofDays(106_751_991);
        /** The shortest sweep interval but zero: the sweeper counts in microseconds. */
        private static final Duration MIN_SWEEP_INTERVAL = Duration.ofNanos(1_000);

        private final ConnectionSource connections;
        private JdbcDialect dialect;
        private String table = TableSql.DEFAULT_TABLE;
        private Duration timeout = Duration.ofSeconds(2);
        private boolean unloggedTable;
        private boolean synchronousCommit;
        private boolean storedFunction = true;
        private int concurrentCalls = DEFAULT_CONCURRENT_CALLS;
        private Executor executor;
        private LongFunction<Executor> delay = nanos -> CompletableFuture.delayedExecutor(nanos, TimeUnit.NANOSECONDS);
        private LongSupplier nanoClock = System::nanoTime;
        private Ticker ticker = Ticker.system();
        private Duration sweepInterval = Duration.ofMinutes(1);
        private Duration sweepGrace = Duration.ofMinutes(1);
        private int sweepBatchSize = 500;

        private Builder(ConnectionSource connections) {
            this.connections = connections;
        }

        /** The database's dialect; detected from the connection's metadata when not set. */
        public Builder dialect(JdbcDialect dialect) {
            this.dialect = Objects.requireNonNull(dialect, "dialect must not be null");
            return this;
        }

        /**
         * The state table's name (default {@code guard_state}); also the prefix of its index and functions. ASCII
         * letters, digits and underscores, not starting with a digit, at most 40 characters; resolved through the
         * connection's schema search path. A reserved word such as {@code order} works too: statements quote the name,
         * in the case that the database gives it unquoted (lower case on PostgreSQL, upper case on H2 unless its
         * settings say otherwise, as written on MariaDB and MySQL), so that it names the same table as DDL that does
         * not quote it.
         */
        public Builder table(String table) {
            this.table = TableSql.checkTable(table);
            return this;
        }

        /**
         * The timeout of every statement (default 2 s), which also bounds lock waits on a hot key. PostgreSQL decisions
         * are cancelled by the storage's watchdog thread (one per storage) once they run past it; every other statement
         * by the driver's query timeout, in whole seconds (rounded up); a call's connection may stay silent for twice
         * that at most. Acquiring a connection is bounded by the pool. At most 106751 days.
         */
        public Builder timeout(Duration timeout) {
            this.timeout = atMost("timeout", positive("timeout", timeout), MAX_TIMEOUT);
            return this;
        }

        /**
         * PostgreSQL only: {@link JdbcStorage#createSchema()} creates an UNLOGGED table (default false). Writes skip
         * the WAL entirely; a crash or an unclean shutdown empties the table, which resets every limit. It applies when
         * the table is created: an existing table keeps its kind ({@code ALTER TABLE ... SET UNLOGGED} changes it),
         * and {@link JdbcStorage#toString()} says what was asked for. True fails {@link #build()} on another database.
         */
        public Builder unloggedTable(boolean unlogged) {
            this.unloggedTable = unlogged;
            return this;
        }

        /**
         * PostgreSQL only: whether a decision waits for its WAL flush (default false: {@code synchronous_commit = off}
         * for decisions). True gives decisions the durability of the server's setting at the cost of a disk flush
         * each. Ignored on the other databases, which follow the server's setting, so that one configuration serves
         * PostgreSQL in production and H2 in tests.
         */
        public Builder synchronousCommit(boolean synchronous) {
            this.synchronousCommit = synchronous;
            return this;
        }

        /**
         * PostgreSQL only: whether decisions use the statements and the evaluate function that {@link
         * JdbcStorage#createSchema()} installs (default true, one round trip). False evaluates in Java inside a
         * transaction as on the other databases (three round trips), for databases where functions may not be
         * created. Ignored on the other databases.
         */
        public Builder storedFunction(boolean use) {
            this.storedFunction = use;
            return this;
        }

        /**
         * PostgreSQL with the evaluate function only: how many decision calls run at once at most (default {@value
         * #DEFAULT_CONCURRENT_CALLS}, from 1 to 1024). A decision that arrives while that many are in flight waits, and
         * the decisions waiting then go together, up to 64 (and 256 steps), in the next call: one round trip, one
         * statement and one transaction for all of them, each decision still atomic. A decision that arrives while a
         * call is free goes at once, with whatever waits then. More calls at once suit a server with many cores and
         * slow round trips; fewer make busy threads share more. Ignored elsewhere (other databases, or {@code
         * storedFunction(false)}).
         */
        public Builder concurrentCalls(int calls) {
            if (calls < 1 || calls > 1024) {
                throw new IllegalArgumentException("concurrentCalls must be between 1 and 1024 but was " + calls);
            }
            this.concurrentCalls = calls;
            return this;
        }

        /** For tests: what runs {@link JdbcStorage#evaluateAsync}'s timeout after so many nanoseconds. */
        Builder delay(LongFunction<Executor> delay) {
            this.delay = Objects.requireNonNull(delay, "delay must not be null");
            return this;
        }

        /**
         * For tests: the clock that decisions' deadlines are counted on ({@link System#nanoTime()} by default). The
         * watchdog still reads {@link System#nanoTime()}, so a clock that runs apart from it moves only the combiner's
         * view of the deadlines.
         */
        Builder nanoClock(LongSupplier nanoClock) {
            this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock must not be null");
            return this;
        }

        /**
         * Where {@link JdbcStorage#evaluateAsync} runs the blocking JDBC call; without one it runs in the caller. A
         * call the executor has not started within the {@link #timeout(Duration) timeout} fails its stage and is
         * never sent.
         */
        public Builder executor(Executor executor) {
            this.executor = Objects.requireNonNull(executor, "executor must not be null");
            return this;
        }

        /** The clock the sweeper reads to decide what has expired (default the system clock). */
        public Builder ticker(Ticker ticker) {
            this.ticker = Objects.requireNonNull(ticker, "ticker must not be null");
            return this;
        }

        /**
         * How often the background sweeper runs (default 1 minute); {@link Duration#ZERO} turns it off. A run walks 100
         * batches at most ({@link JdbcStorage#sweep()}); one that stops there having deleted at least half as many
         * rows as it may (50 full batches) is followed by the next at once rather than after the interval, so that a
         * table gaining expired rows faster than one run per interval deletes them does not grow without bound. At
         * least 1 microsecond unless zero, at most 106751991 days.
         */
        public Builder sweepInterval(Duration interval) {
            if (interval == null) {
                throw new IllegalArgumentException("sweepInterval must not be null (Duration.ZERO: no sweeper)");
            }
            if (interval.isNegative()) {
                throw new IllegalArgumentException("sweepInterval must not be negative but was " + interval);
            }
            if (!interval.isZero() && interval.compareTo(MIN_SWEEP_INTERVAL) < 0) {
                // The sweeper counts in microseconds: less would read as zero, no sweeper at all.
                throw new IllegalArgumentException(
                        "sweepInterval must be zero (no sweeper) or at least 1 microsecond but was " + interval);
            }
            this.sweepInterval = atMost("sweepInterval", interval, MAX_SWEEP_DURATION);
            return this;
        }

        /**
         * How long after its expiry a row may still be swept (default 1 minute): processes whose clocks run behind
         * the sweeper's still read such a row as live, and deleting it early would grant them extra permits. At most
         * 106751991 days.
         */
        public Builder sweepGrace(Duration grace) {
            if (grace == null) {
                throw new IllegalArgumentException("sweepGrace must not be null");
            }
            if (grace.isNegative()) {
                throw new IllegalArgumentException("sweepGrace must not be negative but was " + grace);
            }
            this.sweepGrace = atMost("sweepGrace", grace, MAX_SWEEP_DURATION);
            return this;
        }

        /**
         * How many rows one sweeper transaction deletes at most (default 500, from 1 to 10000); it looks at 8 times as
         * many keys at most, and a run of the sweeper walks 100 such transactions at most.
         */
        public Builder sweepBatchSize(int size) {
            if (size < 1 || size > 10_000) {
                throw new IllegalArgumentException("sweepBatchSize must be between 1 and 10000 but was " + size);
            }
            this.sweepBatchSize = size;
            return this;
        }

        /**
         * Builds the storage; detects the dialect first when none was set, which opens one connection. Then reads the
         * schema's version in one query: over a schema of another version, the storage's first decision logs a
         * warning, once, unless {@link JdbcStorage#createSchema()} runs before it. A table that does not exist yet, or
         * a database that cannot be read then (after the pool's own connection timeout), fails nothing here.
         *
         * @throws IllegalArgumentException if the database is not one Guard knows, or {@link #unloggedTable(boolean)
         *     unloggedTable(true)} is set for another database than PostgreSQL (the other PostgreSQL settings are
         *     ignored elsewhere)
         * @throws GuardStorageException if the dialect must be detected and the database cannot be reached
         */
        public JdbcStorage build() {
            JdbcDialect resolved = dialect != null ? dialect : detect();
            if (unloggedTable && resolved != JdbcDialect.POSTGRESQL) {
                throw new IllegalArgumentException(
                        "unloggedTable is only available on postgresql but the dialect is " + resolved.label());
            }
            JdbcStorage storage = new JdbcStorage(this, resolved);
            try {
                storage.checkSchemaAtBuild();
            } catch (RuntimeException | Error e) {
                storage.close();
                throw e;
            }
            return storage;
        }

        private JdbcDialect detect() {
            String product;
            String version;
            try (Lease lease = connections.open()) {
                DatabaseMetaData meta = lease.connection().getMetaData();
                product = meta.getDatabaseProductName();
                version = meta.getDatabaseProductVersion();
            } catch (SQLException | RuntimeException e) {
                throw StorageFailures.of(null, "detect dialect", e);
            }
            JdbcDialect detected = JdbcDialect.detect(product, version);
            if (detected == null) {
                throw new IllegalArgumentException("database '" + product + "' is not supported; supported are"
                        + " postgresql, mariadb, mysql and h2 (set dialect to use one of them anyway)");
            }
            return detected;
        }

        private static Duration atMost(String field, Duration value, Duration max) {
            if (value.compareTo(max) > 0) {
                throw new IllegalArgumentException(
                        field + " must be at most " + max.toDays() + " days but was " + value);
            }
            return value;
        }

        private static Duration positive(String field, Duration value) {
            if (value == null || value.isNegative() || value.isZero()) {
                throw new IllegalArgumentException(field + " must be positive but was " + value);
            }
            return value;
        }
    }
}
