package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariDataSource;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A database server that falls silent (its host gone, packets dropped: nothing refused, nothing reset) must not hold a
 * decision beyond its timeout: the failure policy and the breaker only act on a call that fails.
 */
class SilentServerTimeoutServerTest {
    private static final String TABLE = "review_silent_server";

    @ParameterizedTest
    @EnumSource(
            value = TestDatabase.class,
            names = {"POSTGRES", "MARIADB"})
    void decision_serverFallsSilent_failsWithGuardStorageExceptionSoonAfterItsTimeout(TestDatabase database)
            throws Exception {
        database.builder(TABLE).build().close(); // the schema, on the server directly
        InetSocketAddress server = database.address();
        ExecutorService caller = Executors.newSingleThreadExecutor();
        try (SilentNetworkProxy proxy = new SilentNetworkProxy(server.getHostString(), server.getPort());
                HikariDataSource pool = database.poolThrough("127.0.0.1", proxy.port());
                JdbcStorage storage = JdbcStorage.builder(pool)
                        .table(TABLE)
                        .timeout(Duration.ofSeconds(1))
                        .sweepInterval(Duration.ZERO)
                        .build()) {
            StateKey key = new StateKey("silent-" + UUID.randomUUID(), "user");
            TokenBucket bucket = new TokenBucket(10, 10, Duration.ofMinutes(1));
            assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(9));

            proxy.silence();
            CompletableFuture<Long> decision =
                    CompletableFuture.supplyAsync(() -> storage.acquire(key, bucket, 1, 2_000_000), caller);

            // A timeout of 1 s: the decision fails well within 10 s (before, it waited for the operating system to
            // give up on the connection, a quarter of an hour on Linux).
            assertThat(decision)
                    .failsWithin(Duration.ofSeconds(10))
                    .withThrowableOfType(ExecutionException.class)
                    .havingCause()
                    .isInstanceOf(GuardStorageException.class);
        } finally {
            caller.shutdownNow();
        }
    }
}
