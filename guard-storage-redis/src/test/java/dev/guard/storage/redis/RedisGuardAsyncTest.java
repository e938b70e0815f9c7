package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Guard#checkAsync} over Redis: on which thread the bot's code runs once Redis answered, and what a listener
 * that blocks there does to the storage's other calls.
 */
class RedisGuardAsyncTest {
    record Msg(long user, String text) {}

    private final String prefix = "guard-async-" + UUID.randomUUID() + ":";
    private final RedisClient client = RedisClient.create(RedisServers.standalone());
    private final StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
    private final StatefulRedisConnection<byte[], byte[]> admin = client.connect(ByteArrayCodec.INSTANCE);

    @AfterEach
    void close() {
        admin.sync().del(hold());
        admin.close();
        connection.close();
        client.shutdown();
    }

    private RedisStorage storage(Duration timeout) {
        return RedisStorage.builder(connection)
                .keyPrefix(prefix)
                .timeout(timeout)
                .build();
    }

    private byte[] hold() {
        return (prefix + "hold").getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Holds the storage's connection at Redis (a BLPOP in front of its calls) until {@link #release}: the calls sent
     * meanwhile are answered after the guard has attached its continuations, so that Lettuce's thread runs them (an
     * answer already there when they are attached runs them in the caller's thread).
     */
    private void holdConnection() {
        connection.async().blpop(0, hold());
    }

    private void release() {
        admin.sync().lpush(hold(), new byte[] {1});
    }

    private static Guard.Builder<Msg> guard(RedisStorage storage, Map<String, String> threads) {
        return Guard.<Msg>builder()
                .storage(storage)
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .listener((m, d, nanos) -> threads.put(
                        "listener " + m.text(), Thread.currentThread().getName()))
                .onReject((m, d) -> threads.put(
                        "onReject " + m.text(), Thread.currentThread().getName()))
                .rejectNotice(
                        Duration.ofMinutes(1),
                        (m, d) -> threads.put(
                                "notice " + m.text(), Thread.currentThread().getName()));
    }

    @Test
    void checkAsync_withoutAnExecutor_runsTheBotsCodeOnLettucesEventLoop() {
        Map<String, String> threads = new ConcurrentHashMap<>();
        try (RedisStorage storage = storage(Duration.ofSeconds(5))) {
            Guard<Msg> guard = guard(storage, threads).build();

            holdConnection();
            var a = guard.checkAsync(new Msg(1, "a")).toCompletableFuture();
            release();
            a.join();
            holdConnection();
            var b = guard.checkAsync(new Msg(1, "b"))
                    .thenApply(d -> Thread.currentThread().getName());
            release();
            String continuation = b.toCompletableFuture().join();

            // As Guard#checkAsync documents: the thread that completed Redis' answer, which is Lettuce's.
            assertThat(threads).containsOnlyKeys("listener a", "listener b", "onReject b", "notice b");
            assertThat(threads.values()).allSatisfy(name -> assertThat(name).startsWith("lettuce-"));
            assertThat(continuation).startsWith("lettuce-");
        }
    }

    @Test
    void checkAsync_withAnExecutor_runsTheBotsCodeAndTheCallersContinuationThere() {
        Map<String, String> threads = new ConcurrentHashMap<>();
        ExecutorService bot = Executors.newSingleThreadExecutor(task -> new Thread(task, "bot-async"));
        try (RedisStorage storage = storage(Duration.ofSeconds(5))) {
            Guard<Msg> guard = guard(storage, threads).asyncExecutor(bot).build();

            guard.checkAsync(new Msg(1, "a")).toCompletableFuture().join();
            // The continuation is attached while Redis holds the answer back: attached to a stage already complete,
            // it would run in this thread, as with any CompletableFuture.
            holdConnection();
            var b = guard.checkAsync(new Msg(1, "b"))
                    .thenApply(d -> Thread.currentThread().getName());
            release();
            String continuation = b.toCompletableFuture().join();

            assertThat(threads).containsOnlyKeys("listener a", "listener b", "onReject b", "notice b");
            assertThat(threads.values()).containsOnly("bot-async");
            assertThat(continuation).isEqualTo("bot-async");
        } finally {
            bot.shutdownNow();
        }
    }

    /**
     * A decision listener that blocks (a slow log appender, a database call) while another decision needs Redis:
     * on Lettuce's event loop it holds up the connection, whose other calls time out; on an executor it holds up
     * nothing.
     */
    @Test
    void aListenerThatBlocks_holdsUpEveryRedisCallOnTheEventLoop_andNoneOnAnExecutor() throws Exception {
        for (boolean withExecutor : new boolean[] {false, true}) {
            CountDownLatch blocked = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            ExecutorService bot = Executors.newSingleThreadExecutor(task -> new Thread(task, "bot-async"));
            try (RedisStorage storage = storage(Duration.ofMillis(200))) {
                Guard.Builder<Msg> builder = Guard.<Msg>builder()
                        .storage(storage)
                        .ticker(ManualTicker.create())
                        .userId(Msg::user)
                        .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                        .listener((m, d, nanos) -> {
                            if (m.text().equals("slow")) {
                                blocked.countDown();
                                try {
                                    release.await(10, TimeUnit.SECONDS);
                                } catch (InterruptedException e) {
                                    Thread.currentThread().interrupt();
                                }
                            }
                        });
                if (withExecutor) {
                    builder.asyncExecutor(bot);
                }
                Guard<Msg> guard = builder.build();

                holdConnection();
                var slow =
                        guard.checkAsync(new Msg(withExecutor ? 11 : 1, "slow")).toCompletableFuture();
                release();
                assertThat(blocked.await(10, TimeUnit.SECONDS)).isTrue();
                Decision other = guard.check(new Msg(withExecutor ? 12 : 2, "meanwhile"));
                release.countDown();

                assertThat(slow.join().reason()).isEqualTo(Reason.ALLOWED);
                if (withExecutor) {
                    assertThat(other.reason()).as("Redis answered").isEqualTo(Reason.ALLOWED);
                    assertThat(other.degraded()).isFalse();
                } else {
                    assertThat(other.reason())
                            .as("the event loop was held: Redis' answer could not be read within the timeout")
                            .isEqualTo(Reason.STORAGE_UNAVAILABLE);
                }
            } finally {
                release.countDown();
                admin.sync().del(hold());
                bot.shutdownNow();
            }
        }
    }
}
