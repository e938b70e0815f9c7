package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
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
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * MariaDB locks a decision's rows in key order, yet InnoDB can still choose a deadlock's victim: when a transaction
 * that inserted a key's row rolls back, the locks of the transactions queued for that row become gap locks, and two of
 * them then both need the gap to insert the row. The victim's transaction is rolled back whole (SQLSTATE 40001); its
 * decision goes again.
 */
class MariaDbDeadlockServerTest {
    private static final String TABLE = "guard_mariadb_deadlock_test";

    @Test
    void decisionsQueuedBehindAFirstTouchThatRollsBack_bothDecide() throws Exception {
        long now = ManualTicker.create().epochMicros();
        StateKey key = new StateKey("rolled-back-first-touch", "user-" + UUID.randomUUID());
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofHours(1));
        ExecutorService threads = Executors.newFixedThreadPool(2);
        List<Future<Long>> queued = new ArrayList<>();
        try (JdbcStorage decisions = TestDatabase.MARIADB
                .builder(TABLE)
                .timeout(Duration.ofSeconds(30))
                .build()) {
            decisions.createSchema();
            // Runs inside putRecord, right after its lock statement inserted the key's row: two decisions queue for it.
            HookedDataSource hooked = new HookedDataSource(TestDatabase.MARIADB.dataSource(), "RETURNING", () -> {
                for (int i = 0; i < 2; i++) {
                    queued.add(threads.submit(() -> decisions.acquire(key, bucket, 1, now)));
                }
                awaitLockWaits(2);
            });
            try (JdbcStorage records = JdbcStorage.builder(hooked)
                    .table(TABLE)
                    .sweepInterval(Duration.ZERO)
                    .timeout(Duration.ofSeconds(30))
                    .build()) {
                // A compare-and-set with a stale version on a key without a row rolls its transaction back.
                assertThat(records.putRecord(key, new byte[] {1}, 7)).isEqualTo(-1);
            }
            assertThat(hooked.ran()).isTrue();
            List<Long> outcomes = new ArrayList<>();
            for (Future<Long> decision : queued) {
                outcomes.add(decision.get(30, TimeUnit.SECONDS));
            }
            assertThat(outcomes).containsExactlyInAnyOrder(Outcome.admitted(4), Outcome.admitted(3));
        } finally {
            threads.shutdownNow();
        }
    }

    /**
     * Until {@code n} transactions wait for a lock (at most 30 seconds), by InnoDB's status, which the server computes
     * on each read (its information_schema tables are a cache refreshed at most every 0.1 s).
     */
    private static void awaitLockWaits(int n) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        try (Connection c = TestDatabase.MARIADB.dataSource().getConnection();
                Statement s = c.createStatement()) {
            while (lockWaits(s) < n) {
                assertThat(System.nanoTime() - deadline)
                        .as("waited for %d lock waits", n)
                        .isNegative();
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The transactions that wait for a lock now: the TRANSACTIONS section's, not the last deadlock's. */
    private static int lockWaits(Statement s) throws SQLException {
        try (ResultSet rs = s.executeQuery("SHOW ENGINE INNODB STATUS")) {
            rs.next();
            String status = rs.getString("Status");
            String transactions = status.substring(status.indexOf("\nTRANSACTIONS\n"));
            int count = 0;
            for (int at = transactions.indexOf("LOCK WAIT"); at >= 0; at = transactions.indexOf("LOCK WAIT", at + 1)) {
                count++;
            }
            return count;
        }
    }
}
