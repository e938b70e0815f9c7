package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * Decisions that share a call ({@link RedisStorage.Builder#concurrentCalls}). With one call in flight at most and the
 * connection holding its commands until the test flushes them, the first decision of a round goes alone and every
 * later one waits; when the first returns, the waiting ones go together in one call. Each must be answered exactly as
 * if it had been a call of its own, in the order the decisions were made.
 */
class RedisCombinedCallsTest {
    private static final List<String> SUBJECTS = List.of("u1", "u2", "{x}\n*?[é] 😀", "");

    private final ManualTicker ticker = ManualTicker.create();

    @Test
    void sharedCalls_randomDecisionsOfEveryKind_answerAsTheReferenceInTheirOrder() {
        Random random = new Random(20261205);
        Storage reference = ReferenceStorage.create();
        try (RedisProcess server = RedisProcess.start();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    RedisStorage redis =
                            RedisStorage.builder(connection).concurrentCalls(1).build()) {
                int decisions = 0;
                Map<String, Long> before = stats.counts();
                for (int round = 0; round < 40; round++) {
                    List<Batch> batches = new ArrayList<>();
                    List<Long> nows = new ArrayList<>();
                    List<CompletableFuture<BatchResult>> answers = new ArrayList<>();
                    connection.setAutoFlushCommands(false);
                    int size = 2 + random.nextInt(20);
                    for (int i = 0; i < size; i++) {
                        Batch batch = randomBatch(random);
                        long now = ticker.epochMicros();
                        batches.add(batch);
                        nows.add(now);
                        answers.add(redis.evaluateAsync(batch, now).toCompletableFuture());
                        ticker.advance(Duration.ofMillis(random.nextInt(120)));
                    }
                    assertThat(redis.waitingDecisions()).as("round %d", round).isEqualTo(size - 1);
                    flush(connection);
                    for (int i = 0; i < size; i++) {
                        assertThat(answers.get(i).join())
                                .as("round %d, decision %d: %s", round, i, batches.get(i))
                                .isEqualTo(reference.evaluate(batches.get(i), nows.get(i)));
                    }
                    decisions += size;
                }
                // Two calls a round: the first decision alone, then the others together.
                Map<String, Long> executed = CommandStats.delta(before, stats.counts());
                assertThat(executed).containsEntry("fcall", 80L);
                assertThat(decisions).isGreaterThan(200);
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void sharedCall_oneDecisionFailsInRedis_failsAloneAndTheOthersStand() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofMinutes(1));
        StateKey hot = new StateKey("bucket", "hot");
        StateKey broken = new StateKey("bucket", "broken");
        Storage reference = ReferenceStorage.create();
        try (RedisProcess server = RedisProcess.start()) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    RedisStorage redis =
                            RedisStorage.builder(connection).concurrentCalls(1).build()) {
                // A key of another type: the function's GET of it fails with WRONGTYPE.
                connection.sync().lpush(new RedisKeys("guard:", false).state(broken), new byte[] {1});
                long now = ticker.epochMicros();
                Batch one = Batch.of(new Step(hot, bucket, 1));
                Batch failing = Batch.of(new Step(hot, bucket, 1), new Step(broken, bucket, 1));

                connection.setAutoFlushCommands(false);
                CompletableFuture<BatchResult> first =
                        redis.evaluateAsync(one, now).toCompletableFuture();
                CompletableFuture<BatchResult> second =
                        redis.evaluateAsync(one, now).toCompletableFuture();
                CompletableFuture<BatchResult> third =
                        redis.evaluateAsync(failing, now).toCompletableFuture();
                CompletableFuture<BatchResult> fourth =
                        redis.evaluateAsync(one, now).toCompletableFuture();
                assertThat(redis.waitingDecisions()).isEqualTo(3);
                flush(connection);

                assertThat(first.join()).isEqualTo(reference.evaluate(one, now));
                assertThat(second.join()).isEqualTo(reference.evaluate(one, now));
                assertThatThrownBy(third::join)
                        .hasCauseInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("WRONGTYPE");
                // The failed decision took nothing before it failed (it read its keys first): the bucket of two is
                // empty after the first two, so the fourth is rejected, as the reference answers without the third.
                assertThat(fourth.join()).isEqualTo(reference.evaluate(one, now));
                assertThat(fourth.join().admitted()).isFalse();
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void waitingDecision_threadInterrupted_failsAndIsNeverSent() throws Exception {
        TokenBucket single = new TokenBucket(1, 1, Duration.ofHours(1));
        StateKey first = new StateKey("bucket", "first");
        StateKey waiting = new StateKey("bucket", "waiting");
        try (RedisProcess server = RedisProcess.start();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    RedisStorage redis = RedisStorage.builder(connection)
                            .concurrentCalls(1)
                            .timeout(Duration.ofMinutes(1))
                            .build()) {
                long now = ticker.epochMicros();
                Map<String, Long> before = stats.counts();
                connection.setAutoFlushCommands(false);
                CompletableFuture<BatchResult> inFlight = redis.evaluateAsync(Batch.of(new Step(first, single, 1)), now)
                        .toCompletableFuture();
                AtomicReference<Throwable> thrown = new AtomicReference<>();
                AtomicReference<Boolean> stillInterrupted = new AtomicReference<>();
                Thread caller = new Thread(() -> {
                    try {
                        redis.acquire(waiting, single, 1, now);
                    } catch (Throwable e) {
                        thrown.set(e);
                    }
                    stillInterrupted.set(Thread.currentThread().isInterrupted());
                });
                caller.start();
                awaitTrue(() -> redis.waitingDecisions() == 1);
                caller.interrupt();
                caller.join(TimeUnit.SECONDS.toMillis(30));

                assertThat(thrown.get())
                        .isInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("acquire");
                assertThat(stillInterrupted.get()).isTrue();
                assertThat(redis.waitingDecisions()).isZero();
                flush(connection);
                assertThat(Outcome.isAdmitted(inFlight.join().outcome(0))).isTrue();
                // The withdrawn decision took nothing: the bucket of one still has its token.
                assertThat(Outcome.isAdmitted(redis.acquire(waiting, single, 1, now)))
                        .isTrue();
                assertThat(CommandStats.delta(before, stats.counts())).containsEntry("fcall", 2L);
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void closedConnection_decisionsWaitingAndNew_failAtOnceAndFreeTheirCalls() {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofMinutes(1));
        try (RedisProcess server = RedisProcess.start()) {
            RedisClient client = RedisClient.create(server.uri());
            StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
            try (RedisStorage redis = RedisStorage.builder(connection)
                    .concurrentCalls(1)
                    .timeout(Duration.ofMinutes(1))
                    .build()) {
                long now = ticker.epochMicros();
                connection.setAutoFlushCommands(false);
                List<CompletableFuture<BatchResult>> answers = new ArrayList<>();
                for (int i = 0; i < 5; i++) {
                    Batch batch = Batch.of(new Step(new StateKey("bucket", "u" + i), bucket, 1));
                    answers.add(redis.evaluateAsync(batch, now).toCompletableFuture());
                }
                assertThat(redis.waitingDecisions()).isEqualTo(4);
                // The call in flight fails as the connection closes; the waiting ones then go, one call at a time,
                // each refused by the closed connection as it is sent.
                connection.close();

                for (CompletableFuture<BatchResult> answer : answers) {
                    assertThatThrownBy(() -> answer.get(30, TimeUnit.SECONDS))
                            .hasCauseInstanceOf(GuardStorageException.class);
                }
                assertThat(redis.waitingDecisions()).isZero();
                assertThatThrownBy(() -> redis.acquire(new StateKey("bucket", "later"), bucket, 1, now))
                        .isInstanceOf(GuardStorageException.class);
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void callThatNeverReturns_endsAtItsDecisionsTimeout_freesItsSlotAndIsNeverSent() {
        TokenBucket single = new TokenBucket(1, 1, Duration.ofHours(1));
        StateKey first = new StateKey("bucket", "first");
        StateKey second = new StateKey("bucket", "second");
        try (RedisProcess server = RedisProcess.start()) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    RedisStorage redis = RedisStorage.builder(connection)
                            .concurrentCalls(1)
                            .timeout(Duration.ofMillis(200))
                            .build()) {
                long now = ticker.epochMicros();
                // Held back by the connection, the calls never reach Redis: only the timeouts end them.
                connection.setAutoFlushCommands(false);
                CompletableFuture<BatchResult> held = redis.evaluateAsync(Batch.of(new Step(first, single, 1)), now)
                        .toCompletableFuture();
                CompletableFuture<BatchResult> waiting = redis.evaluateAsync(Batch.of(new Step(second, single, 1)), now)
                        .toCompletableFuture();
                assertThatThrownBy(() -> held.get(30, TimeUnit.SECONDS))
                        .hasCauseInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("no answer within 200 ms");
                assertThatThrownBy(() -> waiting.get(30, TimeUnit.SECONDS))
                        .hasCauseInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("no answer within 200 ms");
                flush(connection);

                // Both calls were cancelled before they went out: each bucket of one still has its token, and the
                // slot of the first call is free for the next decision.
                assertThat(Outcome.isAdmitted(redis.acquire(first, single, 1, now)))
                        .isTrue();
                assertThat(Outcome.isAdmitted(redis.acquire(second, single, 1, now)))
                        .isTrue();
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void clusterSharedCalls_decisionsOfTwoSlots_goInOneCallPerSlotAndAnswerAsTheReference() {
        String seed = RedisServers.cluster();
        String prefix = Target.freshPrefix();
        RedisKeys keys = new RedisKeys(prefix, false);
        StateKey x = new StateKey("bucket", "x");
        StateKey y = new StateKey("bucket", "y");
        assertThat(SlotHash.getSlot(keys.state(x))).isNotEqualTo(SlotHash.getSlot(keys.state(y)));
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofMinutes(1));
        Storage reference = ReferenceStorage.create();
        RedisClusterClient client = RedisClusterClient.create(seed);
        try (StatefulRedisClusterConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis = RedisStorage.builder(connection)
                        .keyPrefix(prefix)
                        .concurrentCalls(1)
                        .build()) {
            for (int round = 0; round < 3; round++) {
                long now = ticker.epochMicros();
                List<Batch> batches = new ArrayList<>();
                for (int i = 0; i < 7; i++) {
                    StateKey key = i % 2 == 0 ? x : y;
                    batches.add(Batch.of(
                            new Step(key, bucket, 1), new Step(new StateKey("fixed", key.subject()), fixed(), 1)));
                }
                connection.setAutoFlushCommands(false);
                List<CompletableFuture<BatchResult>> answers = new ArrayList<>();
                for (Batch batch : batches) {
                    answers.add(redis.evaluateAsync(batch, now).toCompletableFuture());
                }
                assertThat(redis.waitingDecisions()).isEqualTo(6);
                connection.flushCommands();
                connection.setAutoFlushCommands(true);
                connection.flushCommands();
                for (int i = 0; i < batches.size(); i++) {
                    assertThat(answers.get(i).join())
                            .as("round %d, decision %d", round, i)
                            .isEqualTo(reference.evaluate(batches.get(i), now));
                }
                ticker.advance(Duration.ofSeconds(1));
            }
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    private static FixedWindow fixed() {
        return new FixedWindow(5, Duration.ofSeconds(2));
    }

    private static Batch randomBatch(Random random) {
        int steps = 1 + random.nextInt(4);
        List<Step> list = new ArrayList<>();
        for (int i = 0; i < steps; i++) {
            String subject = SUBJECTS.get(random.nextInt(SUBJECTS.size()));
            int kind = random.nextInt(6);
            LimitSpec spec =
                    switch (kind) {
                        case 0 -> new TokenBucket(5, 3, Duration.ofSeconds(2));
                        case 1 -> new FixedWindow(4, Duration.ofSeconds(3));
                        case 2 -> new SlidingWindowLog(4, Duration.ofSeconds(3));
                        case 3 -> new SlidingWindowCounter(6, Duration.ofSeconds(4), 4);
                        case 4 -> new Cooldown(Duration.ofMillis(700));
                        default -> new DuplicateWindow(Duration.ofSeconds(2), 3);
                    };
            long permits = kind == 5 ? random.nextInt(4) : random.nextInt(3);
            StateKey key = new StateKey("kind" + kind, subject);
            if (list.stream().noneMatch(s -> s.key().equals(key))) {
                list.add(new Step(key, spec, permits));
            }
        }
        return new Batch(list);
    }

    /** Sends what the connection held back, and from then on every command as it comes. */
    private static void flush(StatefulRedisConnection<byte[], byte[]> connection) {
        connection.flushCommands();
        // The shared call goes out when the first call's reply comes: the second flush sends it if it came before.
        connection.setAutoFlushCommands(true);
        connection.flushCommands();
    }

    /** Waits (spinning, at most 30 s) until {@code condition} holds. */
    private static void awaitTrue(BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime() - deadline).as("waited 30 s").isNegative();
            Thread.onSpinWait();
        }
    }
}
