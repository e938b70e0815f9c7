package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Ticker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.Test;

/** The JDBC suite on embedded H2: lock and read, write, commit. */
class H2JdbcStorageTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.H2;
    }

    /**
     * A background sweep that fails with an {@link Error} (here the ticker's, on its first reading in the sweeper's
     * thread) is followed by the next run, as one failing with an exception is: the sweeper does not stop for good.
     */
    @Test
    void backgroundSweeper_afterARunFailingWithAnError_runsAgain() throws InterruptedException {
        CountDownLatch laterRuns = new CountDownLatch(2);
        AtomicBoolean failed = new AtomicBoolean();
        Ticker system = Ticker.system();
        Ticker ticker = () -> {
            if (Thread.currentThread().getName().equals("guard-jdbc-sweeper")) {
                if (failed.compareAndSet(false, true)) {
                    throw new AssertionError("the sweep's first reading of the clock fails");
                }
                laterRuns.countDown();
            }
            return system.epochMicros();
        };
        try (JdbcStorage storage = database()
                .builder()
                .ticker(ticker)
                .sweepInterval(Duration.ofMillis(1))
                .build()) {
            assertThat(laterRuns.await(30, TimeUnit.SECONDS))
                    .as("runs after the failed one")
                    .isTrue();
            assertThat(failed).isTrue();
            assertThat(storage.health().up()).isTrue();
        }
    }

    @Override
    int roundTripsPerDecision() {
        // H2 runs in-process: these are statements, not network round trips.
        return 3;
    }

    /**
     * Two createSchema() calls at once, on a table whose index is still missing, both succeed. H2 looks for the index
     * before it waits for the table's lock, so both find it missing; the lock is held here by an open insert until
     * both calls wait for it inside CREATE INDEX (past that look), and the one that creates the index second must not
     * fail for it. A database of its own, whose lock timeout outlasts the wait.
     */
    @Test
    void createSchema_twoAtOnceWhileTheIndexIsMissing_bothSucceed() throws Exception {
        JdbcDataSource ds = new JdbcDataSource();
        ds.setURL("jdbc:h2:mem:guard_schema_race;DB_CLOSE_DELAY=-1;LOCK_TIMEOUT=60000");
        String table = "guard_schema_race_test";
        try (Connection c = ds.getConnection();
                Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + table);
            // The table alone, as a createSchema() that another process is running has left it so far.
            s.execute(new TableSql(JdbcDialect.H2, table, TableSql.NameCase.UPPER, false)
                    .schema(false)
                    .get(0));
        }
        ExecutorService workers = Executors.newFixedThreadPool(2);
        try (Connection holder = ds.getConnection();
                Statement hs = holder.createStatement()) {
            holder.setAutoCommit(false);
            hs.executeUpdate("INSERT INTO " + table + " (key_hash, subject_hash, scope, subject, kind, expires_at)"
                    + " VALUES (X'00', X'00', 'race', 'race', 0, 0)");
            List<Thread> threads = new CopyOnWriteArrayList<>();
            List<Future<?>> calls = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                calls.add(workers.submit(() -> {
                    threads.add(Thread.currentThread());
                    try (JdbcStorage storage = JdbcStorage.builder(ds)
                            .table(table)
                            .sweepInterval(Duration.ZERO)
                            .build()) {
                        storage.createSchema();
                    }
                }));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (!bothWaitInCreateIndex(hs, threads)) {
                assertThat(System.nanoTime() - deadline)
                        .as("both calls wait for the table inside CREATE INDEX")
                        .isNegative();
                Thread.onSpinWait();
            }
            holder.rollback();
            for (Future<?> call : calls) {
                call.get(30, TimeUnit.SECONDS);
            }
        } finally {
            workers.shutdownNow();
        }
        try (JdbcStorage storage = JdbcStorage.builder(ds)
                .table(table)
                .sweepInterval(Duration.ZERO)
                .build()) {
            assertThat(storage.health().up()).isTrue();
            assertThat(storage.forget("race")).isZero();
        }
    }

    /**
     * On H2 databases that keep unquoted names in lower case (DATABASE_TO_LOWER, as with its PostgreSQL mode) or as
     * written (DATABASE_TO_UPPER=FALSE), the table that the shipped DDL created is the one in use, and a reserved
     * word works: the storage folds the name as the database folds unquoted names before it quotes it.
     */
    @Test
    void table_databaseThatFoldsOtherwise_findsTheShippedDdlsTableAndTakesAReservedWord() throws SQLException {
        for (String setting : List.of("DATABASE_TO_LOWER=TRUE", "DATABASE_TO_UPPER=FALSE")) {
            JdbcDataSource ds = new JdbcDataSource();
            ds.setURL("jdbc:h2:mem:guard_fold_" + setting.replace('=', '_') + ";DB_CLOSE_DELAY=-1;" + setting);
            try (Connection c = ds.getConnection();
                    Statement s = c.createStatement()) {
                for (String statement : JdbcStorage.schemaDdl(JdbcDialect.H2).split("\\n-- statement\\n")) {
                    s.execute(statement);
                }
            }
            StateKey k = new StateKey("fold", "user");
            TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
            for (String table : List.of("guard_state", "order")) {
                try (JdbcStorage storage = JdbcStorage.builder(ds)
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .build()) {
                    if (!table.equals("guard_state")) {
                        storage.createSchema();
                    }
                    assertThat(storage.acquire(k, bucket, 1, 0))
                            .as("%s, %s", setting, table)
                            .isEqualTo(Outcome.admitted(1));
                }
                try (Connection c = ds.getConnection();
                        Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM \"" + table + "\"")) {
                    rs.next();
                    assertThat(rs.getLong(1))
                            .as("%s, rows in %s", setting, table)
                            .isEqualTo(1);
                }
            }
        }
    }

    /** Whether both threads wait (H2 runs a statement in its caller's thread) while two sessions run CREATE INDEX. */
    private static boolean bothWaitInCreateIndex(Statement probe, List<Thread> threads) throws SQLException {
        if (threads.size() < 2) {
            return false;
        }
        for (Thread t : threads) {
            if (t.getState() != Thread.State.TIMED_WAITING && t.getState() != Thread.State.WAITING) {
                return false;
            }
        }
        try (ResultSet rs = probe.executeQuery("SELECT COUNT(*) FROM INFORMATION_SCHEMA.SESSIONS"
                + " WHERE EXECUTING_STATEMENT LIKE 'CREATE INDEX%'")) {
            rs.next();
            return rs.getInt(1) == 2;
        }
    }
}
