package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.FixedWindow;
import dev.guard.limit.Outcome;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): {@link JdbcStorage#close()} stops the watchdog that bounds
 * decisions, so it must never leave a decision running without its timeout, on a row that a stuck transaction holds.
 */
class PostgresCloseServerTest {
    private static final long START = 1_700_000_000_000_000L;
    private static final Duration TIMEOUT = Duration.ofMillis(600);

    private final String scope = "close-" + UUID.randomUUID();
    private final StateKey hot = new StateKey(scope, "hot");
    private final FixedWindow window = new FixedWindow(5, Duration.ofMinutes(1));
    private final ExecutorService threads = Executors.newCachedThreadPool();

    @AfterEach
    void tearDown() throws InterruptedException {
        threads.shutdownNow();
        assertThat(threads.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void close_whileADecisionWaitsForALockedRow_stillEndsItAtItsTimeout() throws Exception {
        CountDownLatch executing = new CountDownLatch(1);
        AtomicBoolean armed = new AtomicBoolean();
        JdbcStorage storage = JdbcStorage.builder(signalling(armed, executing))
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .timeout(TIMEOUT)
                .build();
        assertThat(storage.acquire(hot, window, 1, START)).isEqualTo(Outcome.admitted(4));
        armed.set(true);
        try (Connection other = TestDatabase.POSTGRES.lockingRowOf(hot)) {
            CompletableFuture<Long> decision =
                    CompletableFuture.supplyAsync(() -> storage.acquire(hot, window, 1, START + 1), threads);
            assertThat(executing.await(10, TimeUnit.SECONDS)).isTrue();

            storage.close();

            // Without the watchdog nothing would end the statement until the other transaction does.
            assertThat(decision)
                    .failsWithin(Duration.ofSeconds(10))
                    .withThrowableOfType(ExecutionException.class)
                    .havingCause()
                    .isInstanceOf(GuardStorageException.class)
                    .withMessageContaining("sqlstate 57014");
            other.rollback();
        }
    }

    @Test
    void decisionAfterClose_onALockedRow_failsAtOnceInsteadOfWaitingWithoutATimeout() throws Exception {
        JdbcStorage storage = TestDatabase.POSTGRES.builder().timeout(TIMEOUT).build();
        assertThat(storage.acquire(hot, window, 1, START)).isEqualTo(Outcome.admitted(4));
        storage.close();
        try (Connection other = TestDatabase.POSTGRES.lockingRowOf(hot)) {
            CompletableFuture<Long> decision =
                    CompletableFuture.supplyAsync(() -> storage.acquire(hot, window, 1, START + 1), threads);

            assertThat(decision)
                    .failsWithin(Duration.ofSeconds(10))
                    .withThrowableOfType(ExecutionException.class)
                    .havingCause()
                    .isInstanceOf(GuardStorageException.class)
                    .withMessageContaining("closed");
            other.rollback();
        }
    }

    @Test
    void healthAfterClose_isDown_sinceEveryDecisionFails() {
        JdbcStorage storage = TestDatabase.POSTGRES.builder().timeout(TIMEOUT).build();
        assertThat(storage.health().up()).isTrue();

        storage.close();

        // A readiness probe must not call a storage healthy whose every decision fails.
        assertThat(storage.health().up()).isFalse();
        assertThat(storage.health().detail()).contains("closed");
        assertThatThrownBy(() -> storage.acquire(hot, window, 1, START))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("closed");
    }

    /**
     * The shared pool, whose statements count {@code executing} down as they start to execute once {@code armed} (after
     * the build's and the storage's own first decision): by then the storage's watchdog watches the statement.
     */
    private static WrappingDataSource signalling(AtomicBoolean armed, CountDownLatch executing) {
        // Creates the test table once per JVM, through the unwrapped pool.
        TestDatabase.POSTGRES.builder();
        return new WrappingDataSource(TestDatabase.POSTGRES.dataSource()) {
            @Override
            Connection wrap(Connection connection) {
                InvocationHandler handler = (proxy, method, args) -> {
                    Object result = invoke(method, connection, args);
                    if (method.getName().equals("prepareStatement")) {
                        return signalled((PreparedStatement) result);
                    }
                    return result;
                };
                return (Connection) Proxy.newProxyInstance(
                        Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, handler);
            }

            private PreparedStatement signalled(PreparedStatement statement) {
                InvocationHandler handler = (proxy, method, args) -> {
                    if (method.getName().equals("executeQuery") && armed.get()) {
                        executing.countDown();
                    }
                    return invoke(method, statement, args);
                };
                return (PreparedStatement) Proxy.newProxyInstance(
                        PreparedStatement.class.getClassLoader(), new Class<?>[] {PreparedStatement.class}, handler);
            }
        };
    }
}
