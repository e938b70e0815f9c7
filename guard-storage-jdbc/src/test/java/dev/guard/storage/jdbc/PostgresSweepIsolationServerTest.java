package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Outcome;
import dev.guard.spi.StateKey;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The sweeper runs READ COMMITTED on PostgreSQL whatever the pool's default isolation. Under SERIALIZABLE (or
 * REPEATABLE READ) a sweep batch's snapshot is taken by its first statement, and its locking read then fails with a
 * serialization error (40001) on any expired row that a decision updated after that snapshot.
 */
class PostgresSweepIsolationServerTest {
    private static final String TABLE = "review_sweep_isolation";

    @Test
    void sweep_poolDefaultSerializable_rowUpdatedAfterTheBatchsFirstStatement_isStillSwept() throws SQLException {
        TestDatabase.POSTGRES.builder(TABLE).build().close(); // the schema
        execute("DELETE FROM " + TABLE);
        ManualTicker ticker = ManualTicker.create();
        try (JdbcStorage decisions = TestDatabase.POSTGRES.builder(TABLE).build()) {
            StateKey key = new StateKey("sweep-isolation-" + UUID.randomUUID(), "sender");
            assertThat(decisions.acquire(key, new Cooldown(Duration.ofSeconds(5)), 1, ticker.epochMicros()))
                    .isEqualTo(Outcome.admitted(0));
        }
        ticker.advance(Duration.ofSeconds(6));
        WrappingDataSource serializable = new WrappingDataSource(TestDatabase.POSTGRES.dataSource()) {
            @Override
            Connection wrap(Connection connection) throws SQLException {
                // The pool resets the isolation when the connection goes back.
                connection.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
                return connection;
            }
        };
        // Right after the batch's first statement (its window's end), which takes a SERIALIZABLE snapshot: the
        // expired row is updated, still expired, and committed by another transaction.
        HookedDataSource hooked = new HookedDataSource(serializable, "OFFSET", () -> {
            try {
                execute("UPDATE " + TABLE + " SET expires_at = expires_at");
            } catch (SQLException e) {
                throw new IllegalStateException(e);
            }
        });
        try (JdbcStorage sweeper = JdbcStorage.builder(hooked)
                .table(TABLE)
                .sweepInterval(Duration.ZERO)
                .ticker(ticker)
                .sweepGrace(Duration.ZERO)
                .build()) {
            assertThat(sweeper.sweep()).isEqualTo(1);
        }
        assertThat(hooked.ran()).isTrue();
    }

    private static void execute(String sql) throws SQLException {
        try (Connection c = TestDatabase.POSTGRES.dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }
}
