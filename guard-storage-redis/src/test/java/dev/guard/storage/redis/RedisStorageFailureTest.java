package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.event.connection.ConnectionActivatedEvent;
import io.lettuce.core.event.connection.ConnectionDeactivatedEvent;
import io.lettuce.core.output.StatusOutput;
import io.lettuce.core.protocol.CommandArgs;
import io.lettuce.core.protocol.CommandType;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import reactor.core.Disposable;

/**
 * A Redis that the test starts itself, then stops, kills, pauses and restarts: every call fails fast with {@link
 * GuardStorageException}, never hangs beyond the timeout, and the storage recovers by itself.
 */
class RedisStorageFailureTest {
    private static final TokenBucket BUCKET = new TokenBucket(3, 1, Duration.ofMinutes(1));
    private static final StateKey KEY = new StateKey("bucket", "user-1");

    private final ManualTicker ticker = ManualTicker.create();
    private RedisProcess server;
    private RedisClient admin;
    private StatefulRedisConnection<String, String> adminConnection;

    @BeforeEach
    void startServer() {
        server = RedisProcess.start();
    }

    @AfterEach
    void stopServer() {
        if (adminConnection != null) {
            adminConnection.close();
            admin.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
        if (server != null) {
            server.close();
        }
    }

    private RedisStorage open(Duration timeout) {
        return RedisStorage.builder(server.uri()).timeout(timeout).build();
    }

    /** A connection of the test's own, to pause the server. */
    private StatefulRedisConnection<String, String> admin() {
        if (adminConnection == null) {
            admin = RedisClient.create(server.uri());
            adminConnection = admin.connect();
        }
        return adminConnection;
    }

    private void unpause() {
        admin().sync()
                .dispatch(
                        CommandType.CLIENT,
                        new StatusOutput<>(StringCodec.UTF8),
                        new CommandArgs<>(StringCodec.UTF8).add("UNPAUSE"));
    }

    private long now() {
        return ticker.epochMicros();
    }

    private static long millisOf(Runnable call) {
        long start = System.nanoTime();
        call.run();
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
    }

    private static void assertFailsFast(String operation, Runnable call) {
        long[] elapsed = new long[1];
        assertThatThrownBy(() -> {
                    long start = System.nanoTime();
                    try {
                        call.run();
                    } finally {
                        elapsed[0] = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                    }
                })
                .as(operation)
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis " + operation + " failed: ");
        // The timeout is 5 s: a failure that waited for it would be a hang, not a fast failure.
        assertThat(elapsed[0]).as("%s took ms", operation).isLessThan(2_000);
    }

    @Test
    void everyCall_redisDown_failsFastWithGuardStorageException() throws Exception {
        try (RedisStorage storage = open(Duration.ofSeconds(5))) {
            assertThat(storage.acquire(KEY, BUCKET, 1, now())).isEqualTo(Outcome.admitted(2));
            server.stop();

            Batch batch = Batch.of(new Step(KEY, BUCKET, 1));
            assertFailsFast("evaluate", () -> storage.evaluate(batch, now()));
            assertFailsFast("acquire", () -> storage.acquire(KEY, BUCKET, 1, now()));
            assertFailsFast("raiseGate", () -> storage.raiseGate(KEY, now() + 1_000_000, now()));
            assertFailsFast("addMember", () -> storage.addMember(KEY, Long.MAX_VALUE, now()));
            assertFailsFast("removeMember", () -> storage.removeMember(KEY));
            assertFailsFast("isMember", () -> storage.isMember(KEY, now()));
            assertFailsFast("getRecord", () -> storage.getRecord(KEY));
            assertFailsFast("putRecord", () -> storage.putRecord(KEY, new byte[] {1}, 0));
            assertFailsFast("forget", () -> storage.forget("user-1"));
            assertThat(storage.health().up()).isFalse();
            assertThat(storage.health().detail()).startsWith("redis standalone 127.0.0.1:" + server.port() + ": ");

            assertAsyncEvaluateFails(storage, batch);
        }
    }

    @Test
    void storage_redisRestarted_recoversByItself() throws Exception {
        try (RedisStorage storage = open(Duration.ofSeconds(5))) {
            assertThat(storage.acquire(KEY, BUCKET, 3, now())).isEqualTo(Outcome.admitted(0));
            server.stop();
            assertFailsFast("acquire", () -> storage.acquire(KEY, BUCKET, 1, now()));

            CountDownLatch reconnected = new CountDownLatch(1);
            Disposable subscription = onEvent(storage, e -> {
                if (e instanceof ConnectionActivatedEvent) {
                    reconnected.countDown();
                }
            });
            try {
                server.restart();
                assertThat(reconnected.await(10, TimeUnit.SECONDS))
                        .as("reconnected within 10 s")
                        .isTrue();
            } finally {
                subscription.dispose();
            }

            // The restarted server kept nothing (no persistence): the bucket is full again.
            assertThat(storage.acquire(KEY, BUCKET, 1, now())).isEqualTo(Outcome.admitted(2));
            assertThat(storage.health().up()).isTrue();
        }
    }

    private static Disposable onEvent(RedisStorage storage, Consumer<Object> listener) {
        return storage.resources().eventBus().get().subscribe(listener::accept);
    }

    @Test
    void evaluate_serverPaused_failsWithinTheTimeoutAndWorksAfterwards() {
        try (RedisStorage storage = open(Duration.ofMillis(200))) {
            assertThat(storage.acquire(KEY, BUCKET, 1, now())).isEqualTo(Outcome.admitted(2));
            // CLIENT PAUSE answers at once and then holds every other client's commands: a hung server.
            admin().sync().clientPause(1_500);

            long elapsed = millisOf(() -> assertThatThrownBy(() -> storage.acquire(KEY, BUCKET, 1, now()))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage("redis acquire failed: no answer within 200 ms"));
            assertThat(elapsed).isBetween(200L, 1_400L);

            unpause();
            // The timed-out command ran once the pause ended, or not at all: never twice.
            assertThat(storage.acquire(KEY, BUCKET, 0, now())).isIn(Outcome.admitted(1), Outcome.admitted(2));
        }
    }

    @Test
    void build_serverPaused_failsWithinTheConnectTimeout() {
        // A server that accepts the connection and then answers nothing (paused by a failover, hung): the handshake
        // waited for Lettuce's default of 60 s, whatever the storage's timeout said.
        admin().sync().clientPause(10_000);
        long elapsed = millisOf(() -> assertThatThrownBy(() -> open(Duration.ofMillis(200)))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis connect failed: "));
        // The connect timeout is the storage's timeout, but at least a second.
        assertThat(elapsed).isBetween(1_000L, 3_000L);
        // The server stays paused until the test kills it.
    }

    @Test
    void evaluate_givenConnectionPaused_failsWithinTheTimeout() {
        RedisClient client = RedisClient.create(server.uri());
        try (StatefulRedisConnection<byte[], byte[]> connection =
                        client.connect(io.lettuce.core.codec.ByteArrayCodec.INSTANCE);
                RedisStorage storage = RedisStorage.builder(connection)
                        .timeout(Duration.ofMillis(200))
                        .build()) {
            admin().sync().clientPause(1_500);
            long elapsed =
                    millisOf(() -> assertThatThrownBy(() -> storage.evaluate(Batch.of(new Step(KEY, BUCKET, 1)), now()))
                            .isInstanceOf(GuardStorageException.class)
                            .hasMessage("redis evaluate failed: no answer within 200 ms"));
            assertThat(elapsed).isBetween(200L, 1_400L);
            unpause();
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    @Test
    void evaluateAsync_connectionLostInFlight_failsAtOnceInsteadOfWaitingForAReplay() throws Exception {
        try (RedisStorage storage = open(Duration.ofSeconds(5))) {
            assertThat(storage.acquire(KEY, BUCKET, 1, now())).isEqualTo(Outcome.admitted(2));
            admin().sync().clientPause(10_000);
            CompletableFuture<?> inFlight = storage.evaluateAsync(Batch.of(new Step(KEY, BUCKET, 1)), now())
                    .toCompletableFuture();
            long start = System.nanoTime();
            server.kill();

            assertThatThrownBy(() -> inFlight.get(5, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause()
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageStartingWith("redis evaluate failed: ");
            // Lettuce would otherwise keep the command to replay it after reconnecting, until the 5 s timeout.
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(2_000);
        }
    }

    @Test
    void evaluateAsync_givenClientQueuesWhileDisconnected_callThatTimedOutIsNeverSentAfterTheReconnect()
            throws Exception {
        // Lettuce's defaults, as a bot that passes its own client has them: commands made while disconnected wait in a
        // queue and go out once the connection is back.
        RedisClient client = RedisClient.create(server.uri());
        CountDownLatch lost = new CountDownLatch(1);
        CountDownLatch back = new CountDownLatch(1);
        Disposable subscription = client.getResources().eventBus().get().subscribe(e -> {
            if (e instanceof ConnectionDeactivatedEvent) {
                lost.countDown();
            } else if (e instanceof ConnectionActivatedEvent && lost.getCount() == 0) {
                back.countDown();
            }
        });
        try (RedisStorage storage =
                RedisStorage.builder(client).timeout(Duration.ofMillis(200)).build()) {
            Batch batch = Batch.of(new Step(KEY, BUCKET, 1));
            assertThat(storage.acquire(KEY, BUCKET, 1, now())).isEqualTo(Outcome.admitted(2));
            // The restarted server loads this snapshot: Guard's functions and the bucket with 2 tokens.
            admin().sync().save();
            server.stop();
            assertThat(lost.await(10, TimeUnit.SECONDS))
                    .as("disconnected within 10 s")
                    .isTrue();

            assertAsyncEvaluateFails(storage, batch);
            assertThatThrownBy(() -> storage.acquire(KEY, BUCKET, 1, now()))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage("redis acquire failed: no answer within 200 ms");

            server.restart();
            assertThat(back.await(10, TimeUnit.SECONDS))
                    .as("reconnected within 10 s")
                    .isTrue();
            // Calls the caller was told had failed must not take a token now.
            assertThat(storage.acquire(KEY, BUCKET, 0, now())).isEqualTo(Outcome.admitted(2));
        } finally {
            subscription.dispose();
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    @Test
    void evaluateAsync_continuationOfATimedOutStageBlocks_otherStagesStillTimeOut() throws Exception {
        RedisClient client = RedisClient.create(server.uri());
        CountDownLatch release = new CountDownLatch(1);
        try (StatefulRedisConnection<byte[], byte[]> connection =
                        client.connect(io.lettuce.core.codec.ByteArrayCodec.INSTANCE);
                RedisStorage storage = RedisStorage.builder(connection)
                        .timeout(Duration.ofMillis(200))
                        .build()) {
            admin().sync().clientPause(5_000);
            Batch batch = Batch.of(new Step(KEY, BUCKET, 1));
            CompletableFuture<?> first = storage.evaluateAsync(batch, now()).toCompletableFuture();
            CompletableFuture<?> second = storage.evaluateAsync(batch, now()).toCompletableFuture();
            // A bot's continuation that blocks (a reply over a blocking HTTP client) when the first stage times out.
            first.handle((result, failure) -> {
                try {
                    return release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            });

            // The first stage's timeout must not hold up the second's: both run out at 200 ms.
            assertThatThrownBy(() -> second.get(2, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause()
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage("redis evaluate failed: no answer within 200 ms");
        } finally {
            release.countDown();
            unpause();
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    @Test
    void evaluateAsync_afterClose_failsItsStageWithGuardStorageExceptionAsEvaluateThrows() {
        RedisStorage storage = open(Duration.ofSeconds(5));
        storage.close();
        Batch batch = Batch.of(new Step(KEY, BUCKET, 1));

        // The closed client's timer refuses every command; evaluate reports that as a storage failure.
        assertThatThrownBy(() -> storage.evaluate(batch, now()))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis evaluate failed: ");
        // So does the stage of evaluateAsync, which must not throw the client's IllegalStateException at the caller.
        assertAsyncEvaluateFails(storage, batch);
    }

    @Test
    void build_redisDown_failsWithGuardStorageException() {
        server.stop();
        assertThatThrownBy(() -> open(Duration.ofMillis(200)))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis connect failed: ");
    }

    @Test
    void health_redisUp_reportsLatencyAndWhere() {
        try (RedisStorage storage = open(Duration.ofSeconds(1))) {
            assertThat(storage.health().up()).isTrue();
            assertThat(storage.health().detail()).isEqualTo("redis standalone 127.0.0.1:" + server.port());
            assertThat(storage.health().latency()).isLessThan(Duration.ofSeconds(1));
            assertThat(storage.toString()).isEqualTo("RedisStorage[redis standalone 127.0.0.1:" + server.port() + "]");
        }
    }

    /** The stage of {@code storage.evaluateAsync(batch)} fails with a GuardStorageException, within 2 s. */
    private void assertAsyncEvaluateFails(RedisStorage storage, Batch batch) {
        CompletableFuture<?> async = storage.evaluateAsync(batch, now()).toCompletableFuture();
        assertThatThrownBy(() -> async.get(2, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class)
                .cause()
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis evaluate failed: ");
    }
}
