package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.spi.StateKey;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * A transaction whose work ends in an {@link Error} (the driver running out of memory while it reads an answer, say)
 * is rolled back like one that ends in an exception: on a pool in auto-commit, which PostgreSQL's pools are, switching
 * auto-commit back on would commit it.
 */
class PostgresTransactionErrorServerTest {
    private static final String TABLE = "review_transaction_error";

    @Test
    void putRecord_errorAfterItsWrite_commitsNothing() {
        TestDatabase.POSTGRES.builder(TABLE).build().close(); // the schema
        WrappingDataSource failing = new WrappingDataSource(TestDatabase.POSTGRES.dataSource()) {
            @Override
            Connection wrap(Connection connection) {
                InvocationHandler handler = (proxy, method, args) -> {
                    Object result = invoke(method, connection, args);
                    if (method.getName().equals("prepareStatement")
                            && args[0] instanceof String sql
                            && sql.startsWith("UPDATE")) {
                        return erringAfterExecution((PreparedStatement) result);
                    }
                    return result;
                };
                return (Connection) Proxy.newProxyInstance(
                        Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
            }
        };
        StateKey key = new StateKey("record-" + UUID.randomUUID(), "sender");
        try (JdbcStorage erring = JdbcStorage.builder(failing)
                        .table(TABLE)
                        .sweepInterval(Duration.ZERO)
                        .build();
                JdbcStorage storage = TestDatabase.POSTGRES.builder(TABLE).build()) {
            assertThatThrownBy(() -> erring.putRecord(key, new byte[] {1}, 0))
                    .isInstanceOf(OutOfMemoryError.class)
                    .hasMessage("simulated");

            assertThat(storage.getRecord(key)).isEmpty();
            assertThat(storage.putRecord(key, new byte[] {2}, 0)).isEqualTo(1);
        }
    }

    /** {@code statement}, which throws an {@link OutOfMemoryError} once the database has executed it. */
    private static PreparedStatement erringAfterExecution(PreparedStatement statement) {
        InvocationHandler handler = (proxy, method, args) -> {
            Object result = WrappingDataSource.invoke(method, statement, args);
            if (method.getName().startsWith("execute")) {
                throw new OutOfMemoryError("simulated");
            }
            return result;
        };
        return (PreparedStatement) Proxy.newProxyInstance(
                PreparedStatement.class.getClassLoader(), new Class<?>[] {PreparedStatement.class}, handler);
    }
}
