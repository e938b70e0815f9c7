package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.io.PrintWriter;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): each kind of decision statement commits with {@code
 * synchronous_commit = off} unless the storage is told otherwise, and leaves the pooled connection's session setting
 * as it found it. The connections are handed out outside auto-commit, so that the storage commits itself and the test
 * can read the setting inside the decision's transaction, just before its commit.
 */
class PostgresSynchronousCommitServerTest {
    private final ManualTicker ticker = ManualTicker.create();
    private final String scope = "sync-commit-" + UUID.randomUUID();

    @Test
    void asyncCommit_everyDecisionStatement_commitsWithoutWaitingAndLeavesTheSessionAlone() throws SQLException {
        SettingAtCommit settings = new SettingAtCommit(TestDatabase.POSTGRES.dataSource());
        String server = settings.sessionSetting();
        try (JdbcStorage storage = storage(settings, false)) {
            assertDecisions(storage, settings, "off");
        }
        assertThat(settings.afterCommit).as("session setting after each commit").containsOnly(server);
    }

    @Test
    void asyncCommit_withoutTheStoredFunction_everyDecisionCommitsWithoutWaiting() throws SQLException {
        SettingAtCommit settings = new SettingAtCommit(TestDatabase.POSTGRES.dataSource());
        String server = settings.sessionSetting();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        long now = ticker.epochMicros();
        try (JdbcStorage storage = JdbcStorage.builder(settings)
                .table(TestDatabase.TABLE)
                .dialect(JdbcDialect.POSTGRESQL)
                .sweepInterval(Duration.ZERO)
                .storedFunction(false)
                .build()) {
            settings.atCommit.clear();
            // A first touch, a live row, and a chain: each one transaction of the Java path.
            assertThat(storage.acquire(new StateKey(scope, "user"), bucket, 1, now))
                    .isEqualTo(Outcome.admitted(1));
            assertThat(storage.acquire(new StateKey(scope, "user"), bucket, 1, now))
                    .isEqualTo(Outcome.admitted(0));
            Batch chain = Batch.of(
                    new Step(new StateKey(scope, "chat"), bucket, 1),
                    new Step(new StateKey(scope, "tenant"), bucket, 1));
            assertThat(storage.evaluate(chain, now).admitted()).isTrue();

            assertThat(settings.atCommit).as("at each commit").hasSize(3).containsOnly("off");
        }
        assertThat(settings.afterCommit).as("session setting after each commit").containsOnly(server);
    }

    /**
     * Only decisions skip the WAL flush wait: a gate, a set member and a record (the state that a crash must not lose)
     * commit with the server's setting, as documented, also while decisions commit asynchronously.
     */
    @Test
    void asyncCommit_gatesMembersAndRecords_commitWithTheServerSetting() throws SQLException {
        SettingAtCommit settings = new SettingAtCommit(TestDatabase.POSTGRES.dataSource());
        String server = settings.sessionSetting();
        assertThat(server)
                .as("the server's own setting, which the test tells apart")
                .isNotEqualTo("off");
        long now = ticker.epochMicros();
        try (JdbcStorage storage = storage(settings, false)) {
            settings.atCommit.clear();
            StateKey gate = new StateKey(scope, "gate");
            assertThat(storage.raiseGate(gate, now + 1_000_000, now)).isEqualTo(now + 1_000_000);
            StateKey member = new StateKey(scope, "member");
            storage.addMember(member, now + 1_000_000, now);
            assertThat(storage.removeMember(member)).isTrue();
            StateKey record = new StateKey(scope, "record");
            assertThat(storage.putRecord(record, new byte[] {1}, 0)).isEqualTo(1);

            assertThat(settings.atCommit).as("at each commit").hasSize(4).containsOnly(server);
            // Decisions still commit asynchronously.
            settings.atCommit.clear();
            StateKey decision = new StateKey(scope, "decision");
            assertThat(storage.acquire(decision, new TokenBucket(1, 1, Duration.ofHours(1)), 1, now))
                    .isEqualTo(Outcome.admitted(0));
            assertThat(settings.atCommit).as("decision").last().isEqualTo("off");
        }
        assertThat(settings.afterCommit).as("session setting after each commit").containsOnly(server);
    }

    /**
     * Outside auto-commit, a chain of buckets that one bucket rejects makes the plain UPDATE fail and abort its
     * transaction: the storage rolls it back (a commit would fail on the aborted transaction) and the evaluate
     * function decides, consuming nothing.
     */
    @Test
    void bucketChain_partlyAdmittedOutsideAutoCommit_rolledBackAndDecidedByTheFunction() throws SQLException {
        SettingAtCommit settings = new SettingAtCommit(TestDatabase.POSTGRES.dataSource());
        TokenBucket scarce = new TokenBucket(1, 1, Duration.ofHours(1));
        TokenBucket ample = new TokenBucket(100, 1, Duration.ofHours(1));
        StateKey scarceKey = new StateKey(scope, "scarce");
        StateKey ampleKey = new StateKey(scope, "ample");
        Batch chain = Batch.of(new Step(scarceKey, scarce, 1), new Step(ampleKey, ample, 1));
        long now = ticker.epochMicros();
        try (JdbcStorage storage = storage(settings, false)) {
            assertThat(storage.evaluate(chain, now).admitted())
                    .as("first touch")
                    .isTrue();
            assertThat(storage.evaluate(chain, now).firstRejected()).isZero();
            assertThat(storage.acquire(ampleKey, ample, 0, now)).isEqualTo(Outcome.admitted(99));
        }
    }

    @Test
    void synchronousCommit_everyDecisionStatement_commitsWithTheServerSetting() throws SQLException {
        SettingAtCommit settings = new SettingAtCommit(TestDatabase.POSTGRES.dataSource());
        String server = settings.sessionSetting();
        try (JdbcStorage storage = storage(settings, true)) {
            assertDecisions(storage, settings, server);
        }
    }

    private JdbcStorage storage(SettingAtCommit settings, boolean synchronous) {
        // Creates the test table and its function once.
        TestDatabase.POSTGRES.builder().build().close();
        return JdbcStorage.builder(settings)
                .table(TestDatabase.TABLE)
                .dialect(JdbcDialect.POSTGRESQL)
                .sweepInterval(Duration.ZERO)
                .synchronousCommit(synchronous)
                .build();
    }

    /**
     * One bucket: a first touch (update, then upsert), a live row (update), a rejection (update, then upsert). A
     * chain of buckets: a first touch (update, then the evaluate function), live rows (update).
     */
    private void assertDecisions(JdbcStorage storage, SettingAtCommit settings, String expected) {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey key = new StateKey(scope, "user");
        long now = ticker.epochMicros();

        settings.atCommit.clear();
        assertThat(storage.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(1));
        // The plain update found no row and wrote nothing (a transaction without a write waits for no flush); the
        // upsert after it wrote the row.
        assertThat(settings.atCommit).as("first touch").hasSize(2).last().isEqualTo(expected);

        settings.atCommit.clear();
        assertThat(storage.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(0));
        assertThat(settings.atCommit).as("live row").hasSize(1).containsOnly(expected);

        settings.atCommit.clear();
        assertThat(Outcome.isAdmitted(storage.acquire(key, bucket, 1, now))).isFalse();
        assertThat(settings.atCommit).as("rejection").hasSize(2).last().isEqualTo(expected);

        settings.atCommit.clear();
        Batch chain = Batch.of(
                new Step(new StateKey(scope, "chat"), bucket, 1), new Step(new StateKey(scope, "tenant"), bucket, 1));
        assertThat(storage.evaluate(chain, now).admitted()).isTrue();
        // The plain update of the chain's rows found none, then the evaluate function wrote them.
        assertThat(settings.atCommit)
                .as("chain's first touch")
                .hasSize(2)
                .last()
                .isEqualTo(expected);

        settings.atCommit.clear();
        assertThat(storage.evaluate(chain, now).admitted()).isTrue();
        assertThat(settings.atCommit).as("chain on live rows").hasSize(1).containsOnly(expected);
    }

    /**
     * Hands out the pool's connections outside auto-commit and records {@code synchronous_commit} just before and
     * just after each commit.
     */
    private static final class SettingAtCommit implements DataSource {
        private final DataSource target;
        final List<String> atCommit = new ArrayList<>();
        final List<String> afterCommit = new ArrayList<>();

        SettingAtCommit(DataSource target) {
            this.target = target;
        }

        String sessionSetting() throws SQLException {
            try (Connection c = target.getConnection()) {
                return show(c);
            }
        }

        private static String show(Connection c) throws SQLException {
            try (Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SHOW synchronous_commit")) {
                rs.next();
                return rs.getString(1);
            }
        }

        @Override
        public Connection getConnection() throws SQLException {
            Connection connection = target.getConnection();
            connection.setAutoCommit(false);
            InvocationHandler handler = (proxy, method, args) -> {
                if (method.getName().equals("commit")) {
                    atCommit.add(show(connection));
                    connection.commit();
                    afterCommit.add(show(connection));
                    // SHOW opened a transaction of its own: end it so that the next statement starts afresh.
                    connection.commit();
                    return null;
                }
                if (method.getName().equals("close")) {
                    connection.rollback();
                    connection.setAutoCommit(true);
                }
                try {
                    return method.invoke(connection, args);
                } catch (InvocationTargetException e) {
                    throw e.getCause();
                }
            };
            return (Connection) Proxy.newProxyInstance(
                    Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            throw new SQLException("not used");
        }

        @Override
        public PrintWriter getLogWriter() {
            return null;
        }

        @Override
        public void setLogWriter(PrintWriter out) {}

        @Override
        public void setLoginTimeout(int seconds) {}

        @Override
        public int getLoginTimeout() {
            return 0;
        }

        @Override
        public Logger getParentLogger() {
            return Logger.getGlobal();
        }

        @Override
        public <T> T unwrap(Class<T> iface) throws SQLException {
            throw new SQLException("not a wrapper");
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    }
}
