package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.Test;

/** What needs no server: builder checks, dialect detection, failures and recovery, Jdbi, codecs. */
class JdbcStorageTest {
    private static final String SECRET = "hunter2";

    @Test
    void builder_badValues_failWithMessagesNamingTheSettingAndValue() {
        JdbcStorage.Builder b = JdbcStorage.builder(TestDatabase.H2.dataSource());
        assertThatThrownBy(() -> b.timeout(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must be positive but was PT0S");
        assertThatThrownBy(() -> b.table("guard state; drop"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("table must be a plain identifier")
                .hasMessageEndingWith("but was 'guard state; drop'");
        assertThatThrownBy(() -> b.sweepBatchSize(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("sweepBatchSize must be between 1 and 10000 but was 0");
        assertThatThrownBy(() -> b.concurrentCalls(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("concurrentCalls must be between 1 and 1024 but was 0");
        assertThatThrownBy(() -> b.concurrentCalls(1025))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("concurrentCalls must be between 1 and 1024 but was 1025");
        assertThatThrownBy(() -> b.sweepInterval(Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("sweepInterval must not be negative but was PT-1S");
        // Shorter than the microsecond the sweeper counts in: it would read as zero, and silently run no sweeper.
        assertThatThrownBy(() -> b.sweepInterval(Duration.ofNanos(999)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("sweepInterval must be zero (no sweeper) or at least 1 microsecond but was PT0.000000999S");
        assertThatThrownBy(() -> b.sweepInterval(null))
                .hasMessage("sweepInterval must not be null (Duration.ZERO: no sweeper)");
        assertThatThrownBy(() -> b.sweepGrace(null)).hasMessage("sweepGrace must not be null");
        assertThatThrownBy(() -> JdbcStorage.builder((DataSource) null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("dataSource must not be null");
        assertThatThrownBy(() -> JdbcStorage.builder(TestDatabase.H2.dataSource())
                        .unloggedTable(true)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unloggedTable is only available on postgresql but the dialect is h2");
    }

    @Test
    void build_durationTooLongToCount_failsNamingItAndLeavesNoThread() {
        Set<Thread> before = guardJdbcThreads();
        assertThatThrownBy(() -> JdbcStorage.builder(TestDatabase.H2.dataSource())
                        .dialect(JdbcDialect.POSTGRESQL)
                        .sweepGrace(Duration.ofSeconds(Long.MAX_VALUE / 100))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("sweepGrace must be at most 106751991 days but was PT25620477880152H9M18S");
        assertThatThrownBy(() -> JdbcStorage.builder(TestDatabase.H2.dataSource())
                        .dialect(JdbcDialect.POSTGRESQL)
                        .sweepInterval(Duration.ofDays(106_751_992))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("sweepInterval must be at most 106751991 days but was PT2562047808H");
        assertThatThrownBy(() -> JdbcStorage.builder(TestDatabase.H2.dataSource())
                        .dialect(JdbcDialect.POSTGRESQL)
                        .timeout(Duration.ofDays(106_752))
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeout must be at most 106751 days but was PT2562048H");
        assertThat(guardJdbcThreads()).isEqualTo(before);
    }

    @Test
    void build_longestDurations_buildAndCloseCleanly() {
        JdbcStorage storage = JdbcStorage.builder(TestDatabase.H2.dataSource())
                .dialect(JdbcDialect.POSTGRESQL)
                .timeout(Duration.ofDays(106_751))
                .sweepInterval(Duration.ofDays(106_751_991))
                .sweepGrace(Duration.ofDays(106_751_991))
                .build();
        storage.close();
    }

    /**
     * A run deletes 100 batches of 500 rows at most by default. Stopping at that cap having deleted half of it or more
     * means expired rows are left: the next run comes at once. A run that stops there having deleted fewer ran out of
     * windows of live rows rather than of rows to delete, and a run that reached the end of the table left nothing:
     * both wait the interval.
     */
    @Test
    void nextSweepDelay_runStoppedAtItsCapHavingDeletedHalfItsMost_isZero_otherwiseTheInterval() {
        long interval = Duration.ofMinutes(1).toNanos() / 1000;
        assertThat(JdbcStorage.nextSweepDelayMicros(new JdbcStorage.SweepRun(50_000, true), 500, interval))
                .isZero();
        assertThat(JdbcStorage.nextSweepDelayMicros(new JdbcStorage.SweepRun(25_000, true), 500, interval))
                .isZero();
        assertThat(JdbcStorage.nextSweepDelayMicros(new JdbcStorage.SweepRun(24_999, true), 500, interval))
                .isEqualTo(interval);
        assertThat(JdbcStorage.nextSweepDelayMicros(new JdbcStorage.SweepRun(30_000, false), 500, interval))
                .isEqualTo(interval);
        assertThat(JdbcStorage.nextSweepDelayMicros(new JdbcStorage.SweepRun(0, false), 500, interval))
                .isEqualTo(interval);
    }

    /** The live threads that storages start: their watchdogs and sweepers. */
    private static Set<Thread> guardJdbcThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("guard-jdbc"))
                .collect(Collectors.toSet());
    }

    @Test
    void toString_namesDialectTableAndCommitMode_withoutTheConnectionsSecrets() {
        JdbcStorage h2 = JdbcStorage.builder(TestDatabase.H2.dataSource())
                .table("bot_limits")
                .sweepInterval(Duration.ZERO)
                .build();
        assertThat(h2).hasToString("JdbcStorage[h2, table bot_limits]");
        JdbcStorage postgres = JdbcStorage.builder(TestDatabase.H2.dataSource())
                .dialect(JdbcDialect.POSTGRESQL)
                .sweepInterval(Duration.ZERO)
                .build();
        assertThat(postgres).hasToString("JdbcStorage[postgresql, table guard_state, asynchronous commit]");
        JdbcStorage durable = JdbcStorage.builder(TestDatabase.H2.dataSource())
                .dialect(JdbcDialect.POSTGRESQL)
                .unloggedTable(true)
                .synchronousCommit(true)
                .storedFunction(false)
                .sweepInterval(Duration.ZERO)
                .build();
        assertThat(durable)
                .hasToString("JdbcStorage[postgresql, table guard_state, unlogged, synchronous commit,"
                        + " without the stored function]");
    }

    @Test
    void detect_productNamesAndVersions_pickTheDialect() {
        assertThat(JdbcDialect.detect("PostgreSQL", "15.2")).isEqualTo(JdbcDialect.POSTGRESQL);
        assertThat(JdbcDialect.detect("MariaDB", "10.11.19-MariaDB")).isEqualTo(JdbcDialect.MARIADB);
        assertThat(JdbcDialect.detect("MySQL", "5.5.5-10.11.19-MariaDB-0+deb12u1"))
                .isEqualTo(JdbcDialect.MARIADB);
        assertThat(JdbcDialect.detect("MySQL", "8.0.36")).isEqualTo(JdbcDialect.MYSQL);
        assertThat(JdbcDialect.detect("H2", "2.4.240")).isEqualTo(JdbcDialect.H2);
        assertThat(JdbcDialect.detect("Oracle", "23")).isNull();
        assertThat(JdbcStorage.builder(TestDatabase.H2.dataSource()).build().dialect())
                .isEqualTo(JdbcDialect.H2);
    }

    @Test
    void acquire_databaseDown_throwsGuardStorageExceptionWithoutSecretsThenRecovers() {
        AtomicBoolean down = new AtomicBoolean();
        DataSource real = TestDatabase.H2.dataSource();
        DataSource flaky = (DataSource) Proxy.newProxyInstance(
                DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, failingWhen(down, real));
        TestDatabase.H2.builder().build().close(); // creates the schema
        JdbcStorage storage = JdbcStorage.builder(flaky)
                .dialect(JdbcDialect.H2)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .build();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey key = new StateKey("down-" + System.nanoTime(), "user");
        assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(1));

        down.set(true);
        JdbcStorage failing = storage;
        assertThatThrownBy(() -> failing.acquire(key, bucket, 1, 1_000_000))
                .isInstanceOfSatisfying(GuardStorageException.class, e -> {
                    assertThat(e.backend()).isEqualTo("jdbc");
                    assertThat(e.operation()).isEqualTo("acquire");
                    assertThat(e.getMessage())
                            .isEqualTo("jdbc acquire failed: h2 sqlstate 08001: connection to"
                                    + " jdbc:postgresql://***@127.0.0.1/test?password=*** refused");
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        assertThat(String.valueOf(t.getMessage())).doesNotContain(SECRET);
                    }
                })
                .hasCauseInstanceOf(SQLException.class);
        assertThat(storage.health().up()).isFalse();
        assertThat(storage.health().detail()).doesNotContain(SECRET);

        down.set(false);
        assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.health().up()).isTrue();
    }

    /**
     * A URL with user info (as MySQL's driver takes it) given to drivers that do not take it: they fail to connect
     * with part of it in their exceptions, pgjdbc's host lookup with the user info as the host, MariaDB's driver with
     * the password as the port. The storage's exception and its causes show no password. Neither driver reaches a
     * server: pgjdbc refuses the host before any lookup, MariaDB's driver the URL before connecting.
     */
    @Test
    void build_driverEchoingAPasswordFromAUrlWithUserInfo_failsWithoutShowingIt() {
        for (String url : List.of(
                "jdbc:postgresql://bob:" + SECRET + "@127.0.0.1:5432/test",
                "jdbc:mariadb://bob:" + SECRET + "@127.0.0.1/test")) {
            DataSource driver = (DataSource) Proxy.newProxyInstance(
                    DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, (proxy, method, args) -> {
                        if (method.getName().equals("getConnection")) {
                            return DriverManager.getConnection(url);
                        }
                        throw new UnsupportedOperationException(method.getName());
                    });
            assertThatThrownBy(() -> JdbcStorage.builder(driver)
                            .sweepInterval(Duration.ZERO)
                            .build())
                    .as(url)
                    .isInstanceOfSatisfying(GuardStorageException.class, e -> {
                        StringWriter trace = new StringWriter();
                        e.printStackTrace(new PrintWriter(trace));
                        assertThat(trace.toString())
                                .as(url)
                                .contains("***@127.0.0.1")
                                .doesNotContain(SECRET);
                    });
        }
    }

    private static InvocationHandler failingWhen(AtomicBoolean down, DataSource real) {
        return (proxy, method, args) -> {
            if (method.getName().equals("getConnection") && down.get()) {
                throw new SQLException(
                        "connection to jdbc:postgresql://bob:" + SECRET + "@127.0.0.1/test?password=" + SECRET
                                + " refused",
                        "08001",
                        new IllegalStateException("login with password=" + SECRET + " failed"));
            }
            return method.invoke(real, args);
        };
    }

    @Test
    void evaluateAsync_onAnExecutor_databaseDown_failsTheStageWithTheGuardStorageExceptionItself() {
        AtomicBoolean down = new AtomicBoolean(true);
        DataSource real = TestDatabase.H2.dataSource();
        DataSource flaky = (DataSource) Proxy.newProxyInstance(
                DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, failingWhen(down, real));
        TestDatabase.H2.builder().build().close(); // creates the schema
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try (JdbcStorage storage = JdbcStorage.builder(flaky)
                .dialect(JdbcDialect.H2)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .executor(executor)
                .build()) {
            StateKey key = new StateKey("async-down-" + System.nanoTime(), "user");
            Batch batch = Batch.of(new Step(key, new TokenBucket(1, 1, Duration.ofHours(1)), 1));

            // What a caller's handle() or exceptionally() sees: the storage's exception, as without an executor.
            Throwable seen = storage.evaluateAsync(batch, 1_000_000)
                    .handle((result, failure) -> failure)
                    .toCompletableFuture()
                    .join();

            assertThat(seen).isInstanceOfSatisfying(GuardStorageException.class, e -> assertThat(e.operation())
                    .isEqualTo("evaluate"));
            down.set(false);
            assertThat(storage.evaluateAsync(batch, 1_000_000)
                            .toCompletableFuture()
                            .join()
                            .admitted())
                    .isTrue();
        } finally {
            executor.shutdown();
        }
    }

    @Test
    void evaluateAsync_executorRejects_answersAStageFailedWithGuardStorageException() {
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.shutdown();
        try (JdbcStorage storage = TestDatabase.H2.builder().executor(executor).build()) {
            StateKey key = new StateKey("rejected-" + System.nanoTime(), "user");
            Batch batch = Batch.of(new Step(key, new TokenBucket(1, 1, Duration.ofHours(1)), 1));

            CompletableFuture<BatchResult> stage =
                    storage.evaluateAsync(batch, 1_000_000).toCompletableFuture();

            assertThat(stage).isCompletedExceptionally();
            assertThatThrownBy(stage::join)
                    .isInstanceOf(CompletionException.class)
                    .cause()
                    .isInstanceOfSatisfying(GuardStorageException.class, e -> {
                        assertThat(e.backend()).isEqualTo("jdbc");
                        assertThat(e.operation()).isEqualTo("evaluate");
                        assertThat(e.getMessage()).isEqualTo("jdbc evaluate failed: the executor rejected the task");
                    })
                    .hasCauseInstanceOf(RejectedExecutionException.class);
        }
    }

    /**
     * A caller that cancels the stage, or completes it on its own timeout ({@code orTimeout}), before the executor
     * runs the task has given up on the decision: the task then sends nothing and consumes nothing, as a task of
     * {@code CompletableFuture.supplyAsync} skips its supplier.
     */
    @Test
    void evaluateAsync_stageCancelledOrTimedOutBeforeTheTaskRuns_sendsAndConsumesNothing() {
        TestDatabase.H2.builder().build().close(); // creates the schema
        CountingDataSource counting = new CountingDataSource(TestDatabase.H2.dataSource());
        List<Runnable> queued = new ArrayList<>();
        try (JdbcStorage storage = JdbcStorage.builder(counting)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .executor(queued::add)
                .build()) {
            StateKey key = new StateKey("async-cancelled-" + System.nanoTime(), "user");
            TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
            Batch batch = Batch.of(new Step(key, bucket, 1));
            CompletableFuture<BatchResult> cancelled =
                    storage.evaluateAsync(batch, 1_000_000).toCompletableFuture();
            CompletableFuture<BatchResult> timedOut =
                    storage.evaluateAsync(batch, 1_000_000).toCompletableFuture();
            assertThat(cancelled.cancel(false)).isTrue();
            assertThat(timedOut.completeExceptionally(new TimeoutException())).isTrue();
            counting.reset();

            queued.forEach(Runnable::run);

            assertThat(counting.total())
                    .as("statements and transaction control sent")
                    .isZero();
            assertThat(cancelled).isCancelled();
            assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
        }
    }

    /**
     * A task that a busy executor has not started within the timeout fails its stage then, whatever the executor
     * does, as the SPI asks of every call; started later, it sends and consumes nothing.
     */
    @Test
    void evaluateAsync_executorThatDoesNotStartTheTaskWithinTheTimeout_failsTheStageThen_andTheTaskSendsNothing() {
        TestDatabase.H2.builder().build().close(); // creates the schema
        CountingDataSource counting = new CountingDataSource(TestDatabase.H2.dataSource());
        List<Runnable> queued = new ArrayList<>();
        List<Long> delays = new ArrayList<>();
        List<Runnable> timers = new ArrayList<>();
        try (JdbcStorage storage = JdbcStorage.builder(counting)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .timeout(Duration.ofMillis(300))
                .executor(queued::add)
                .delay(nanos -> {
                    delays.add(nanos);
                    return timers::add;
                })
                .build()) {
            StateKey key = new StateKey("async-late-" + System.nanoTime(), "user");
            TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
            CompletableFuture<BatchResult> stage = storage.evaluateAsync(Batch.of(new Step(key, bucket, 1)), 1_000_000)
                    .toCompletableFuture();
            assertThat(stage).isNotDone();
            assertThat(delays).containsExactly(Duration.ofMillis(300).toNanos());

            timers.forEach(Runnable::run); // the timeout passes, the task still queued
            assertThat(stage).isCompletedExceptionally();
            assertThatThrownBy(stage::join)
                    .cause()
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageContaining("the executor did not start the call within PT0.3S");

            counting.reset();
            queued.forEach(Runnable::run);
            assertThat(counting.total())
                    .as("statements and transaction control sent")
                    .isZero();
            assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
        }
    }

    /** A task that started before its timeout decides, and the timeout then changes nothing. */
    @Test
    void evaluateAsync_taskStartedBeforeTheTimeout_decides_andTheTimeoutChangesNothing() {
        TestDatabase.H2.builder().build().close(); // creates the schema
        List<Runnable> queued = new ArrayList<>();
        List<Runnable> timers = new ArrayList<>();
        try (JdbcStorage storage = TestDatabase.H2
                .builder()
                .executor(queued::add)
                .delay(nanos -> timers::add)
                .build()) {
            StateKey key = new StateKey("async-in-time-" + System.nanoTime(), "user");
            TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
            CompletableFuture<BatchResult> stage = storage.evaluateAsync(Batch.of(new Step(key, bucket, 1)), 1_000_000)
                    .toCompletableFuture();

            queued.forEach(Runnable::run);
            timers.forEach(Runnable::run);

            assertThat(stage.join()).isEqualTo(BatchResult.of(Outcome.admitted(0)));
        }
    }

    @Test
    void builder_fromJdbi_decidesThroughJdbiHandles() {
        TestDatabase.H2.builder().build().close(); // creates the schema
        Jdbi jdbi = Jdbi.create(TestDatabase.H2.dataSource());
        try (JdbcStorage storage = JdbcStorage.builder(jdbi)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .build()) {
            StateKey key = new StateKey("jdbi-" + System.nanoTime(), "user");
            TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
            assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
            assertThat(Outcome.isAdmitted(storage.acquire(key, bucket, 1, 1_000_000)))
                    .isFalse();
        }
    }

    @Test
    void keyHash_lengthPrefix_keepsSplitPointsApart() {
        assertThat(KeyCodec.keyHash(new StateKey("ab", "c"))).isNotEqualTo(KeyCodec.keyHash(new StateKey("a", "bc")));
        assertThat(KeyCodec.keyHash(new StateKey("s", "\ud800")))
                .isNotEqualTo(KeyCodec.keyHash(new StateKey("s", "\udc00")));
        long[] state = {Long.MIN_VALUE, -1, 0, 1, Long.MAX_VALUE};
        assertThat(KeyCodec.decodeState(KeyCodec.encodeState(state))).containsExactly(state);
    }

    /**
     * createSchema()'s statements quote the table where they name it, in the case of the database's unquoted names,
     * and keep the names derived from it (index, functions) as configured and unquoted, as the shipped DDL has them.
     */
    @Test
    void schema_reservedWord_isQuotedWhereItNamesTheTableAndPrefixesDerivedNamesAsConfigured() {
        String postgres = String.join(
                "\n", new TableSql(JdbcDialect.POSTGRESQL, "Order", TableSql.NameCase.LOWER, false).schema(true));
        assertThat(postgres)
                .contains("CREATE UNLOGGED TABLE IF NOT EXISTS \"order\" (")
                .contains("CREATE INDEX IF NOT EXISTS Order_subject ON \"order\" (subject_hash, key_hash)")
                .contains("CREATE OR REPLACE FUNCTION Order_evaluate(")
                .contains("WHEN p_now - st[2] >= Order_cdiv(cap - st[1], rate) THEN cap")
                .contains("FROM \"order\" t WHERE t.key_hash = p_keys[k] FOR UPDATE")
                .contains("INSERT INTO \"order\" AS t (key_hash,")
                .contains("UPDATE \"order\"\n")
                .doesNotContain("guard_state");
        assertThat(postgres)
                .endsWith("COMMENT ON TABLE \"order\" IS 'Guard schema version " + JdbcStorage.SCHEMA_VERSION + "';");
        assertThat(new TableSql(JdbcDialect.MARIADB, "Order", TableSql.NameCase.AS_WRITTEN, false).schema(false))
                .satisfiesExactly(
                        table -> assertThat(table)
                                .contains("CREATE TABLE IF NOT EXISTS `Order` (")
                                .contains("KEY Order_subject (subject_hash, key_hash)"),
                        version -> assertThat(version)
                                .endsWith("ALTER TABLE `Order` COMMENT = 'Guard schema version "
                                        + JdbcStorage.SCHEMA_VERSION + "';"));
        List<String> h2 = new TableSql(JdbcDialect.H2, "guard_state_2", TableSql.NameCase.UPPER, false).schema(false);
        assertThat(h2.get(1))
                .isEqualTo("CREATE INDEX IF NOT EXISTS guard_state_2_subject"
                        + " ON \"GUARD_STATE_2\" (subject_hash, key_hash);");
        assertThat(h2.get(2))
                .endsWith("COMMENT ON TABLE \"GUARD_STATE_2\" IS 'Guard schema version " + JdbcStorage.SCHEMA_VERSION
                        + "';");
        assertThat(h2).hasSize(3);
    }

    /**
     * Of createSchema()'s PostgreSQL statements, the one that creates the index (after its comment lines) is the one
     * it looks up first, by the name that the catalog gives the index: the configured prefix folded to lower case.
     */
    @Test
    void createdIndex_postgresSchema_isTheSubjectIndexAsTheCatalogNamesIt() {
        TableSql sql = new TableSql(JdbcDialect.POSTGRESQL, "Order", TableSql.NameCase.LOWER, false);
        assertThat(sql.schema(false).stream().map(sql::createdIndex).filter(Objects::nonNull))
                .containsExactly("order_subject");
    }

    @Test
    void schemaDdl_isShippedForEveryDialect() throws SQLException {
        assertThat(JdbcStorage.schemaDdl(JdbcDialect.POSTGRESQL))
                .contains("CREATE TABLE IF NOT EXISTS guard_state")
                .contains("guard_state_evaluate");
        assertThat(JdbcStorage.schemaDdl(JdbcDialect.MARIADB)).contains("ENGINE = InnoDB");
        assertThat(JdbcStorage.schemaDdl(JdbcDialect.H2)).contains("CREATE INDEX IF NOT EXISTS guard_state_subject");
        try (Connection c = TestDatabase.H2.dataSource().getConnection()) {
            assertThat(c.isValid(1)).isTrue();
        }
    }
}
