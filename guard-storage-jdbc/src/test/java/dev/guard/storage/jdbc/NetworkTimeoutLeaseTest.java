package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.spi.StateKey;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.h2.jdbcx.JdbcDataSource;
import org.junit.jupiter.api.Test;

/**
 * The network timeout a call sets on its connection, on drivers that fail at it: the connection always goes back to
 * the source, and a driver that predates {@link Connection#getNetworkTimeout} (JDBC 4.0, which answers with an
 * {@link AbstractMethodError}) is a driver without network timeouts, as HikariCP takes it.
 */
class NetworkTimeoutLeaseTest {
    private static final String TABLE = "guard_network_lease_test";

    @Test
    void aDriverOlderThanNetworkTimeouts_decides_andGivesEveryConnectionBack() {
        LeaseCountingDataSource source =
                new LeaseCountingDataSource(() -> new AbstractMethodError("getNetworkTimeout"));
        StateKey key = new StateKey("record-" + UUID.randomUUID(), "sender");
        try (JdbcStorage storage = JdbcStorage.builder(source)
                .dialect(JdbcDialect.H2)
                .table(TABLE)
                .sweepInterval(Duration.ZERO)
                .build()) {
            storage.createSchema();
            assertThat(storage.putRecord(key, new byte[] {1}, 0)).isEqualTo(1);
            assertThat(storage.getRecord(key)).isPresent();
        }

        assertThat(source.opened.get()).isPositive();
        assertThat(source.closed.get()).isEqualTo(source.opened.get());
    }

    /** The first call is build()'s, which reads the schema's version: it fails, and the build with it. */
    @Test
    void anErrorWhileBoundingTheNetwork_failsTheCall_andGivesTheConnectionBack() {
        LeaseCountingDataSource source = new LeaseCountingDataSource(() -> new OutOfMemoryError("simulated"));
        JdbcStorage.Builder builder =
                JdbcStorage.builder(source).dialect(JdbcDialect.H2).table(TABLE).sweepInterval(Duration.ZERO);

        assertThatThrownBy(builder::build).isInstanceOf(OutOfMemoryError.class).hasMessage("simulated");

        assertThat(source.opened.get()).isEqualTo(1);
        assertThat(source.closed.get()).isEqualTo(1);
    }

    /** H2 connections whose {@code getNetworkTimeout} throws what {@code error} makes, counted as opened and closed. */
    private static final class LeaseCountingDataSource extends WrappingDataSource {
        final AtomicInteger opened = new AtomicInteger();
        final AtomicInteger closed = new AtomicInteger();
        private final Supplier<Error> error;

        LeaseCountingDataSource(Supplier<Error> error) {
            super(h2());
            this.error = error;
        }

        private static JdbcDataSource h2() {
            JdbcDataSource ds = new JdbcDataSource();
            ds.setURL("jdbc:h2:mem:guard_network_lease;DB_CLOSE_DELAY=-1;LOCK_TIMEOUT=2000");
            return ds;
        }

        @Override
        Connection wrap(Connection connection) {
            opened.incrementAndGet();
            InvocationHandler handler = (proxy, method, args) -> {
                String name = method.getName();
                if (name.equals("getNetworkTimeout")) {
                    throw error.get();
                }
                if (name.equals("close") && !connection.isClosed()) {
                    closed.incrementAndGet();
                }
                return invoke(method, connection, args);
            };
            return (Connection) Proxy.newProxyInstance(
                    Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
        }
    }
}
