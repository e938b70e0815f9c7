package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Cooldown;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.StorageHealth;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Function;
import javax.sql.DataSource;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.Test;

/**
 * The JDBC suite on a real PostgreSQL ({@code GUARD_POSTGRES_URL}): one statement per decision, two for a single
 * bucket's first touch or rejection.
 */
class PostgresJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    int roundTripsPerDecision() {
        return 1;
    }

    /** The plain UPDATE that found nothing to admit, then the upsert that decides. */
    @Override
    int roundTripsPerBucketMiss() {
        return 2;
    }

    /**
     * createSchema() creates the subject index where it is missing, in the table's schema, as CREATE INDEX IF NOT
     * EXISTS does: a relation of the index's name in another schema is not the index.
     */
    @Test
    void createSchema_indexMissing_createsItInTheTablesSchema() throws SQLException {
        String table = "guard_index_test";
        try (JdbcStorage storage = database().builder(table).build();
                Connection c = database().dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute("CREATE SCHEMA IF NOT EXISTS guard_elsewhere");
            s.execute("CREATE TABLE IF NOT EXISTS guard_elsewhere." + table + "_subject (id int)");
            s.execute("DROP INDEX " + table + "_subject");
            assertThat(subjectIndexes(s, table)).isZero();

            try {
                storage.createSchema();
                assertThat(subjectIndexes(s, table)).isOne();
                storage.createSchema();
                assertThat(subjectIndexes(s, table)).isOne();
            } finally {
                s.execute("DROP SCHEMA guard_elsewhere CASCADE");
            }
        }
    }

    /** The indexes named {@code <table>_subject} on {@code table} in the current schema: 0 or 1. */
    private static int subjectIndexes(Statement s, String table) throws SQLException {
        try (ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()"
                + " AND tablename = '" + table + "' AND indexname = '" + table + "_subject'")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * A table whose evaluate function is missing (an upgrade that did not run the schema again, or a migration that
     * copied the table alone) fails every chain: health says so, until createSchema() installs the function. Without
     * the stored function the same table is healthy.
     */
    @Test
    void health_evaluateFunctionMissing_isDownUntilCreateSchema() throws SQLException {
        String table = "guard_health_function_test";
        try (JdbcStorage storage = database().builder(table).build();
                JdbcStorage javaPath =
                        database().builder(table).storedFunction(false).build()) {
            storage.createSchema();
            try (Connection c = database().dataSource().getConnection();
                    Statement s = c.createStatement()) {
                s.execute("DROP FUNCTION " + table + "_evaluate(bytea[], bytea[], text[], text[], int[], bigint[],"
                        + " int[], bigint[], boolean, int)");
                if (!c.getAutoCommit()) {
                    c.commit();
                }
            }
            Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
            String scope = "health-chain-" + UUID.randomUUID();
            Batch chain = Batch.of(
                    new Step(new StateKey(scope, "a"), cooldown, 1), new Step(new StateKey(scope, "b"), cooldown, 1));
            assertThatThrownBy(() -> storage.evaluate(chain, 1_000_000)).isInstanceOf(GuardStorageException.class);

            StorageHealth health = storage.health();
            assertThat(health.up()).as("health without the evaluate function").isFalse();
            assertThat(health.detail())
                    .startsWith("jdbc health failed: postgresql sqlstate 42883: ")
                    .contains(table + "_evaluate");
            assertThat(javaPath.health().up())
                    .as("the Java path needs no function")
                    .isTrue();

            storage.createSchema();
            assertThat(storage.health().up()).isTrue();
            assertThat(storage.evaluate(chain, 1_000_000).admitted()).isTrue();
        }
    }

    /**
     * A chain of token buckets whose rows all exist and all admit is one plain UPDATE of the rows, not a call of the
     * evaluate function; when one bucket rejects, that UPDATE rolls back whole and the function decides, and the same
     * chain goes to the function at once until the rejection's retry-after has passed.
     */
    @Test
    void bucketChain_everyRowAdmits_oneUpdateWithoutTheFunction_elseRolledBackForIt() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        try (JdbcStorage storage = onTestTable(counting)) {
            String scope = "bucket-chain-" + UUID.randomUUID();
            TokenBucket ample = new TokenBucket(100, 1, Duration.ofHours(1));
            TokenBucket scarce = new TokenBucket(2, 1, Duration.ofHours(1));
            Batch chain = Batch.of(
                    new Step(new StateKey(scope, "user"), ample, 1),
                    new Step(new StateKey(scope, "chat"), scarce, 1),
                    new Step(new StateKey(scope, "tenant"), ample, 1));
            long now = 1_000_000_000L;
            assertThat(storage.evaluate(chain, now).admitted())
                    .as("first touch")
                    .isTrue();

            counting.reset();
            assertThat(storage.evaluate(chain, now))
                    .isEqualTo(BatchResult.of(Outcome.admitted(98), Outcome.admitted(0), Outcome.admitted(98)));
            assertThat(counting.total()).isEqualTo(1);
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .startsWith("WITH u AS (UPDATE")
                    .doesNotContain("_evaluate");

            counting.reset();
            BatchResult rejected = storage.evaluate(chain, now);
            assertThat(rejected.admitted()).isFalse();
            assertThat(rejected.firstRejected()).isEqualTo(1);
            assertThat(counting.preparedStatements).hasSize(2);
            assertThat(counting.preparedStatements.get(1)).contains("_evaluate(");
            assertThat(storage.acquire(new StateKey(scope, "user"), ample, 0, now))
                    .as("the user's bucket after the rejected chain")
                    .isEqualTo(Outcome.admitted(98));

            // Until the rejection's retry-after has passed, the chain goes to the function at once.
            long retryAfter = rejected.retryAfterMicros();
            counting.reset();
            assertThat(storage.evaluate(chain, now + retryAfter - 1).admitted()).isFalse();
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .contains("_evaluate(");
            counting.reset();
            // The hour since refilled the scarce bucket by one token, and the ample ones by one each.
            assertThat(storage.evaluate(chain, now + retryAfter))
                    .isEqualTo(BatchResult.of(Outcome.admitted(98), Outcome.admitted(0), Outcome.admitted(98)));
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .startsWith("WITH u AS (UPDATE");
        }
    }

    /**
     * A driver exception without an SQLSTATE from the chain UPDATE is the decision's failure, with that exception as
     * its cause (it was a NullPointerException from looking the missing state up).
     */
    @Test
    void bucketChain_updateFailsWithoutAnSqlState_failsWithThatCause() {
        DataSource failing = new WrappingDataSource(database().dataSource()) {
            @Override
            Connection wrap(Connection connection) {
                InvocationHandler handler = (proxy, method, args) -> {
                    Object result = invoke(method, connection, args);
                    if (method.getName().equals("prepareStatement") && ((String) args[0]).startsWith("WITH u AS")) {
                        PreparedStatement statement = (PreparedStatement) result;
                        InvocationHandler failingQuery = (p, m, a) -> {
                            if (m.getName().equals("executeQuery")) {
                                throw new SQLException("simulated failure without a state");
                            }
                            return invoke(m, statement, a);
                        };
                        return Proxy.newProxyInstance(
                                PreparedStatement.class.getClassLoader(),
                                new Class<?>[] {PreparedStatement.class},
                                failingQuery);
                    }
                    return result;
                };
                return (Connection) Proxy.newProxyInstance(
                        Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
            }
        };
        try (JdbcStorage storage = onTestTable(failing)) {
            String scope = "no-state-" + UUID.randomUUID();
            TokenBucket bucket = new TokenBucket(10, 1, Duration.ofHours(1));
            Batch chain = Batch.of(
                    new Step(new StateKey(scope, "a"), bucket, 1), new Step(new StateKey(scope, "b"), bucket, 1));
            assertThatThrownBy(() -> storage.evaluate(chain, 1_000_000_000L))
                    .isInstanceOf(GuardStorageException.class)
                    .rootCause()
                    .isInstanceOf(SQLException.class)
                    .hasMessageContaining("simulated failure without a state");
        }
    }

    /** Sixteen buckets on rows that exist are one UPDATE; seventeen go to the evaluate function. */
    @Test
    void bucketChain_longerThanSixteenSteps_goesToTheFunction() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        try (JdbcStorage storage = onTestTable(counting)) {
            String scope = "long-chain-" + UUID.randomUUID();
            TokenBucket bucket = new TokenBucket(10, 1, Duration.ofHours(1));
            for (int length : new int[] {16, 17}) {
                Step[] steps = new Step[length];
                for (int i = 0; i < length; i++) {
                    steps[i] = new Step(new StateKey(scope, length + "-" + i), bucket, 1);
                }
                Batch chain = Batch.of(steps);
                long now = 1_000_000_000L;
                assertThat(storage.evaluate(chain, now).admitted())
                        .as("first touch")
                        .isTrue();
                counting.reset();
                BatchResult result = storage.evaluate(chain, now);
                assertThat(result.admitted()).isTrue();
                assertThat(result.remaining()).isEqualTo(8);
                assertThat(counting.preparedStatements)
                        .as("%d steps", length)
                        .singleElement(InstanceOfAssertFactories.STRING)
                        .satisfies(sql ->
                                assertThat(sql.startsWith("WITH u AS (UPDATE")).isEqualTo(length <= 16));
            }
        }
    }

    /**
     * A lone chain of buckets takes the single UPDATE only while no other call of the storage is in flight: here the
     * first chain's UPDATE waits for a row that another transaction holds, and a second chain, on other keys, goes
     * to the evaluate function meanwhile.
     */
    @Test
    void bucketChain_whileAnotherCallIsInFlight_goesToTheFunction() throws Exception {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (JdbcStorage storage = JdbcStorage.builder(counting)
                        .table(TestDatabase.TABLE)
                        .sweepInterval(Duration.ZERO)
                        .timeout(Duration.ofSeconds(30))
                        .build();
                Connection other = database().dataSource().getConnection();
                Connection watcher = database().dataSource().getConnection()) {
            String scope = "in-flight-" + UUID.randomUUID();
            TokenBucket bucket = new TokenBucket(10, 1, Duration.ofHours(1));
            StateKey held = new StateKey(scope, "held");
            Batch first = Batch.of(new Step(new StateKey(scope, "a"), bucket, 1), new Step(held, bucket, 1));
            Batch second = Batch.of(
                    new Step(new StateKey(scope, "b"), bucket, 1), new Step(new StateKey(scope, "c"), bucket, 1));
            long now = 1_000_000_000L;
            assertThat(storage.evaluate(first, now).admitted()).isTrue();
            assertThat(storage.evaluate(second, now).admitted()).isTrue();

            other.setAutoCommit(false);
            lockRow(other, TestDatabase.TABLE, held);
            counting.reset();
            Future<BatchResult> waiting = executor.submit(() -> storage.evaluate(first, now));
            awaitBlockedBy(watcher, other, waiting);
            assertThat(storage.evaluate(second, now))
                    .isEqualTo(BatchResult.of(Outcome.admitted(8), Outcome.admitted(8)));
            assertThat(counting.preparedStatements)
                    .as("the first chain's UPDATE, then the second chain's call")
                    .hasSize(2)
                    .satisfiesExactly(sql -> assertThat(sql).startsWith("WITH u AS (UPDATE"), sql -> assertThat(sql)
                            .contains("_evaluate("));
            other.rollback();
            assertThat(waiting.get(30, TimeUnit.SECONDS))
                    .isEqualTo(BatchResult.of(Outcome.admitted(8), Outcome.admitted(8)));
        } finally {
            executor.shutdownNow();
        }
    }

    /**
     * A lone decision whose call of the evaluate function PostgreSQL aborts to break a deadlock goes again, and is
     * decided: here another transaction holds the chain's second key and then asks for its first, which the call
     * holds. The call waited first, so it looks for a deadlock first (each backend looks once, deadlock_timeout after
     * it began to wait) and is the one that PostgreSQL aborts.
     */
    @Test
    void evaluateFunction_chosenToBreakADeadlock_goesAgainAndDecides() throws Exception {
        assertDecisionGoesAgain(new Cooldown(Duration.ofSeconds(1)));
    }

    /**
     * A chain of buckets whose single UPDATE PostgreSQL aborts to break a deadlock (as above) is decided by the
     * evaluate function: two statements.
     */
    @Test
    void bucketChain_updateChosenToBreakADeadlock_theFunctionDecides() throws Exception {
        assertDecisionGoesAgain(new TokenBucket(5, 1, Duration.ofHours(1)));
    }

    /** forget() deletes a subject's rows in key order; when PostgreSQL aborts it to break a deadlock, it goes again. */
    @Test
    void forget_chosenToBreakADeadlock_goesAgainAndDeletesEveryRow() throws Exception {
        String subject = "deadlock-subject-" + UUID.randomUUID();
        List<StateKey> keys = keysInHashOrder(new StateKey("forget-a", subject), new StateKey("forget-b", subject));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        long removed = inDeadlock(
                keys,
                storage -> assertThat(storage.evaluate(
                                        Batch.of(
                                                new Step(keys.get(0), cooldown, 1), new Step(keys.get(1), cooldown, 1)),
                                        1_000_000_000L)
                                .admitted())
                        .isTrue(),
                storage -> storage.forget(subject),
                counting -> {});
        assertThat(removed).isEqualTo(2);
    }

    /**
     * A one-row operation holds no other row, but is a deadlock's victim all the same when it waits for its row in the
     * queue between two transactions that take rows in opposite orders (a chain UPDATE planned as a scan of the
     * table, against the function): one holds a and asks for b, the other holds b and asks for a, which the queued
     * operation holds the place in line for. It waited first, so PostgreSQL aborts it first; it goes again.
     */
    @Test
    void oneBucketDecision_chosenToBreakADeadlock_goesAgainAndDecides() throws Exception {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofHours(1));
        long decided = inDeadlockQueue(
                (storage, key) -> assertThat(storage.acquire(key, bucket, 1, 1_000_000_000L))
                        .isEqualTo(Outcome.admitted(4)),
                (storage, key) -> storage.acquire(key, bucket, 1, 1_000_000_000L));
        assertThat(decided).isEqualTo(Outcome.admitted(3));
    }

    /** As above, for a gate raised on a row that a deadlock's two transactions take in opposite orders. */
    @Test
    void raiseGate_chosenToBreakADeadlock_goesAgain() throws Exception {
        long now = 1_000_000_000L;
        long until = inDeadlockQueue(
                (storage, key) -> storage.raiseGate(key, now + 1_000_000, now),
                (storage, key) -> storage.raiseGate(key, now + 5_000_000, now));
        assertThat(until).isEqualTo(now + 5_000_000);
    }

    /**
     * Runs {@code action} on key a of a fresh pair a, b (rows created by {@code setUp}) while it waits for a in the
     * queue between two transactions that then deadlock over a and b, and answers what it answered.
     */
    private <T> T inDeadlockQueue(BiConsumer<JdbcStorage, StateKey> setUp, BiFunction<JdbcStorage, StateKey, T> action)
            throws Exception {
        String table = "guard_deadlock_test";
        String scope = "deadlock-queue-" + UUID.randomUUID();
        StateKey a = new StateKey(scope, "a");
        StateKey b = new StateKey(scope, "b");
        Cooldown cooldown = new Cooldown(Duration.ofHours(1));
        ExecutorService executor = Executors.newFixedThreadPool(3);
        try (JdbcStorage storage = JdbcStorage.builder(database().dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .timeout(Duration.ofSeconds(30))
                        .build();
                Connection one = database().dataSource().getConnection();
                Connection two = database().dataSource().getConnection();
                Connection watcher = database().dataSource().getConnection()) {
            storage.createSchema();
            setUp.accept(storage, a);
            storage.acquire(b, cooldown, 1, 1_000_000_000L);
            one.setAutoCommit(false);
            two.setAutoCommit(false);
            // Not two: once the action goes again, two must find what is left of the deadlock (with one) and end it.
            neverTheFirstToLookForADeadlock(one);
            lockRow(one, table, a);
            lockRow(two, table, b);
            int twoId = backendId(two);
            Future<T> acting = executor.submit(() -> action.apply(storage, a));
            awaitBlockedBy(watcher, one, acting);
            Future<?> twoAsksForA = executor.submit(() -> {
                lockRow(two, table, a);
                return null;
            });
            awaitWaiting(watcher, twoId, acting);
            Future<?> oneAsksForB = executor.submit(() -> {
                lockRow(one, table, b);
                return null;
            });
            // PostgreSQL aborts the action first, which goes again and waits; then one of the two transactions.
            // Whichever survives is rolled back here: the action then has its row.
            awaitEither(oneAsksForB, twoAsksForA);
            one.rollback();
            two.rollback();
            return acting.get(30, TimeUnit.SECONDS);
        } finally {
            executor.shutdownNow();
        }
    }

    /** Until one of {@code a} and {@code b} has ended, either way (at most 30 seconds). */
    private static void awaitEither(Future<?> a, Future<?> b) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!a.isDone() && !b.isDone()) {
            assertThat(System.nanoTime() - deadline).as("a deadlock broken").isNegative();
            Thread.onSpinWait();
        }
    }

    private void assertDecisionGoesAgain(LimitSpec spec) throws Exception {
        String scope = "deadlock-" + UUID.randomUUID();
        List<StateKey> keys = keysInHashOrder(new StateKey(scope, "a"), new StateKey(scope, "b"));
        Batch chain = Batch.of(new Step(keys.get(1), spec, 1), new Step(keys.get(0), spec, 1));
        ReferenceStorage reference = ReferenceStorage.create();
        long now = 1_000_000_000L;
        long later = now + 2_000_000;
        BatchResult decided = inDeadlock(
                keys,
                storage -> assertThat(storage.evaluate(chain, now)).isEqualTo(reference.evaluate(chain, now)),
                storage -> storage.evaluate(chain, later),
                counting -> assertThat(counting.executions)
                        .as("statements sent: %s", counting.preparedStatements)
                        .hasValue(2));
        assertThat(decided).isEqualTo(reference.evaluate(chain, later));
    }

    private static List<StateKey> keysInHashOrder(StateKey... keys) {
        List<StateKey> sorted = new ArrayList<>(List.of(keys));
        sorted.sort((x, y) -> Arrays.compareUnsigned(KeyCodec.keyHash(x), KeyCodec.keyHash(y)));
        return sorted;
    }

    /**
     * Runs {@code action} on a storage while another transaction makes it a deadlock's victim, and answers what it
     * answered: {@code setUp} creates the rows of {@code keys} (in key order); the other transaction holds the second,
     * waits until the action blocks on it, then asks for the first, which the action holds. The action waited first,
     * so it looks for the deadlock first and is the victim (without a superuser's setting of deadlock_timeout). The
     * action's second connection (what goes again) waits until the other transaction holds both rows: otherwise it
     * might take the first row while that transaction wakes to take it, and deadlock again. The table holds 5,000 more
     * rows and has statistics, so that the chain statement's plan takes the rows in key order, as on a table in use.
     */
    private <T> T inDeadlock(
            List<StateKey> keys,
            Consumer<JdbcStorage> setUp,
            Function<JdbcStorage, T> action,
            Consumer<CountingDataSource> afterAction)
            throws Exception {
        String table = "guard_deadlock_test";
        try (JdbcStorage creator = database().builder(table).build()) {
            creator.createSchema();
        }
        try (Connection c = database().dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute("TRUNCATE " + table);
            s.execute("INSERT INTO " + table + " (key_hash, subject_hash, scope, subject, kind, state, expires_at)"
                    + " SELECT sha256(CAST('filler-' || g AS bytea)), sha256(CAST('filler' AS bytea)), 'filler',"
                    + " 'filler-' || g, 1, ARRAY[1, 1], 9000000000000000000 FROM generate_series(1, 5000) g");
            s.execute("ANALYZE " + table);
            if (!c.getAutoCommit()) {
                c.commit();
            }
        }
        CountDownLatch bothHeld = new CountDownLatch(1);
        AtomicInteger leases = new AtomicInteger(Integer.MIN_VALUE);
        DataSource gated = new WrappingDataSource(database().dataSource()) {
            @Override
            Connection wrap(Connection connection) throws SQLException {
                if (leases.incrementAndGet() == 2) {
                    try {
                        assertThat(bothHeld.await(30, TimeUnit.SECONDS))
                                .as("both rows held")
                                .isTrue();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new SQLException(e);
                    }
                }
                return connection;
            }
        };
        CountingDataSource counting = new CountingDataSource(gated);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (JdbcStorage storage = JdbcStorage.builder(counting)
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .timeout(Duration.ofSeconds(30))
                        .build();
                Connection other = database().dataSource().getConnection();
                Connection watcher = database().dataSource().getConnection()) {
            setUp.accept(storage);
            other.setAutoCommit(false);
            neverTheFirstToLookForADeadlock(other);
            lockRow(other, table, keys.get(1));
            counting.reset();
            leases.set(0);
            Future<T> acting = executor.submit(() -> action.apply(storage));
            awaitBlockedBy(watcher, other, acting);
            // Waits for the action's row until PostgreSQL aborts the action's statement; the action then goes again
            // and waits for this transaction.
            lockRow(other, table, keys.get(0));
            bothHeld.countDown();
            awaitBlockedBy(watcher, other, acting);
            other.rollback();

            T result = acting.get(30, TimeUnit.SECONDS);
            afterAction.accept(counting);
            return result;
        } finally {
            executor.shutdownNow();
        }
    }

    /** A storage on the test table through {@code source}, without a sweeper. */
    private static JdbcStorage onTestTable(DataSource source) {
        return JdbcStorage.builder(source)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .build();
    }

    /**
     * Makes the transaction open on {@code c} look for a deadlock only after a minute of waiting, where the user may
     * set deadlock_timeout (a superuser, as on the machines that run these tests), so that the operation under test,
     * which looks after PostgreSQL's default second, is the one that finds the deadlock and is aborted: otherwise a
     * machine that starves the server's processes can run this transaction's look first, and abort it instead. For
     * this transaction only (SET LOCAL): the connection goes back to a pool.
     */
    private static void neverTheFirstToLookForADeadlock(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) {
            if (rs.next() && rs.getBoolean(1)) {
                s.execute("SET LOCAL deadlock_timeout = '1min'");
            }
        }
    }

    private static void lockRow(Connection c, String table, StateKey key) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM " + table + " WHERE key_hash = ? FOR UPDATE")) {
            ps.setBytes(1, KeyCodec.keyHash(key));
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as("the key's row").isTrue();
            }
        }
    }

    /**
     * Until a backend waits for a lock that {@code holder}'s backend holds (at most 30 seconds), while {@code decision}
     * has not ended.
     */
    private static void awaitBlockedBy(Connection watcher, Connection holder, Future<?> decision) throws Exception {
        awaitQuery(watcher, backendId(holder), "CAST(? AS int) = ANY(pg_blocking_pids(pid))", decision);
    }

    /**
     * Until the backend {@code pid} waits for a lock (at most 30 seconds), while {@code decision} has not ended. The
     * id, not the connection: the connection is busy waiting in another thread.
     */
    private static void awaitWaiting(Connection watcher, int pid, Future<?> decision) throws Exception {
        awaitQuery(watcher, pid, "pid = ? AND cardinality(pg_blocking_pids(pid)) > 0", decision);
    }

    private static int backendId(Connection c) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * Until a backend in {@code pg_stat_activity} meets {@code condition}, whose one parameter is {@code pid} (at most
     * 30 seconds), while {@code decision} has not ended.
     */
    private static void awaitQuery(Connection watcher, int pid, String condition, Future<?> decision) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        try (PreparedStatement ps =
                watcher.prepareStatement("SELECT count(*) FROM pg_stat_activity WHERE " + condition)) {
            ps.setInt(1, pid);
            while (true) {
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) > 0) {
                        return;
                    }
                }
                if (decision.isDone()) {
                    throw new AssertionError("the decision ended while waiting for it to block: " + decision.get());
                }
                assertThat(System.nanoTime() - deadline)
                        .as("waited for a blocked backend")
                        .isNegative();
            }
        }
    }
}
