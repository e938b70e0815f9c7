package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.FlushMode;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Round trips counted where they happen: Redis' {@code INFO commandstats}. A private redis-server keeps the counts
 * free of other clients; the Cluster tests sum the counts of its three masters.
 *
 * <p>Commandstats also counts the commands that Lua code runs: every call reads each of its keys with one {@code GET}
 * and writes with {@code SET} or {@code DEL}. So "one round trip per decision" reads: one {@code FCALL} per decision
 * ({@code EVALSHA} on the script path), exactly one {@code GET} per step (the function's own reads, none from the
 * client), and no other command. The shared Cluster may serve other clients meanwhile, so there the count comes from
 * {@code MONITOR}, restricted to the test's own keys, with the functions' commands told apart ({@code lua:get}).
 */
class RedisRoundTripTest {
    record Msg(long user, long chat, String text) {}

    private final ManualTicker ticker = ManualTicker.create();

    @Test
    void guardCheck_fourStepChain_isOneFcallPerDecision() {
        assertOneCommandPerDecision(true, "fcall");
    }

    @Test
    void guardCheck_fourStepChainOnScripts_isOneEvalshaPerDecision() {
        assertOneCommandPerDecision(false, "evalsha");
    }

    private void assertOneCommandPerDecision(boolean functions, String command) {
        try (RedisProcess server = RedisProcess.start();
                RedisStorage storage =
                        RedisStorage.builder(server.uri()).functions(functions).build();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            Guard<Msg> guard = Guard.<Msg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Msg::user)
                    .chatId(Msg::chat)
                    .blocklist()
                    .duplicates(Duration.ofSeconds(10), Msg::text)
                    .throttle("per-chat", KeyBy.CHAT, 150, Duration.ofMinutes(1))
                    .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                    .build();
            Map<Reason, Integer> reasons = new EnumMap<>(Reason.class);

            Map<String, Long> before = stats.counts();
            for (int i = 0; i < 200; i++) {
                // 20 users in one chat, a repeated text now and then, 50 ms between messages.
                Decision decision = guard.check(new Msg(i % 20, 7, "text " + (i % 7 == 0 ? 0 : i)));
                reasons.merge(decision.reason(), 1, Integer::sum);
                assertThat(decision.degraded()).isFalse();
                ticker.advance(Duration.ofMillis(50));
            }
            Map<String, Long> executed = CommandStats.delta(before, stats.counts());

            assertThat(executed).containsEntry(command, 200L).containsEntry("get", 4 * 200L);
            assertThat(executed.keySet()).isSubsetOf(command, "get", "set", "del");
            // Every path through the script was taken: admitted, and rejected by the duplicate and chat steps.
            assertThat(reasons).containsKeys(Reason.ALLOWED, Reason.DUPLICATE, Reason.THROTTLED);
        }
    }

    @Test
    void evaluate_scriptCacheFlushed_sendsTheScriptOnceThenCallsItBySha() {
        StateKey key = new StateKey("bucket", "user-1");
        Batch batch = Batch.of(new Step(key, new TokenBucket(10, 1, Duration.ofSeconds(1)), 1));
        RedisClient admin;
        try (RedisProcess server = RedisProcess.start();
                RedisStorage storage =
                        RedisStorage.builder(server.uri()).functions(false).build();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            admin = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> connection = admin.connect()) {
                connection.sync().scriptFlush();
            } finally {
                admin.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }

            Map<String, Long> before = stats.counts();
            assertThat(storage.evaluate(batch, ticker.epochMicros()).outcome(0)).isEqualTo(Outcome.admitted(9));
            Map<String, Long> middle = stats.counts();
            assertThat(storage.evaluate(batch, ticker.epochMicros()).outcome(0)).isEqualTo(Outcome.admitted(8));
            Map<String, Long> after = stats.counts();

            // NOSCRIPT, then the script's text once; from then on by SHA again.
            assertThat(CommandStats.delta(before, middle))
                    .isEqualTo(Map.of("evalsha", 1L, "eval", 1L, "get", 1L, "set", 1L));
            assertThat(CommandStats.delta(middle, after)).isEqualTo(Map.of("evalsha", 1L, "get", 1L, "set", 1L));
        }
    }

    @Test
    void evaluateAsync_functionsFlushedUnderManyCallsInFlight_shareOneLoadOfTheLibrary() {
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofSeconds(1));
        int calls = 16;
        try (RedisProcess server = RedisProcess.start();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> admin = client.connect();
                    StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    // A call for each decision, as many as the decisions: none waits to share a call.
                    RedisStorage storage = RedisStorage.builder(connection)
                            .concurrentCalls(calls)
                            .build()) {
                admin.sync().functionFlush(FlushMode.SYNC);
                Map<String, Long> before = stats.counts();

                // All calls leave in one write, so Redis reads every one of them before the first reply ("Function
                // not found") reaches the client and starts the load: every call finds that one load in flight.
                connection.setAutoFlushCommands(false);
                List<CompletableFuture<BatchResult>> inFlight = new ArrayList<>();
                for (int i = 0; i < calls; i++) {
                    Batch batch = Batch.of(new Step(new StateKey("bucket", "user-" + i), bucket, 1));
                    inFlight.add(
                            storage.evaluateAsync(batch, ticker.epochMicros()).toCompletableFuture());
                }
                connection.flushCommands();
                // The load and the calls again go out as they come; the second flush sends any queued before.
                connection.setAutoFlushCommands(true);
                connection.flushCommands();
                for (CompletableFuture<BatchResult> result : inFlight) {
                    assertThat(result.join().outcome(0)).isEqualTo(Outcome.admitted(9));
                }
                Map<String, Long> after = stats.counts();

                assertThat(CommandStats.delta(before, after))
                        .containsEntry("function|load", 1L)
                        .containsEntry("fcall", 2L * calls);
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void evaluateAsync_functionsFlushedUnderCallsInFlight_runsTheCallsAgainInTheOrderTheyWereMade() {
        // One permit a minute: of two messages of one user, the first is admitted and the second rejected.
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofMinutes(1));
        Batch batch = Batch.of(new Step(new StateKey("bucket", "user-1"), bucket, 1));
        int calls = 4;
        try (RedisProcess server = RedisProcess.start()) {
            RedisClient client = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> admin = client.connect();
                    StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                    RedisStorage storage = RedisStorage.builder(connection).build()) {
                admin.sync().functionFlush(FlushMode.SYNC);

                // Every call leaves in one write and finds the library missing before the load starts.
                connection.setAutoFlushCommands(false);
                List<CompletableFuture<BatchResult>> inFlight = new ArrayList<>();
                for (int i = 0; i < calls; i++) {
                    inFlight.add(storage.evaluateAsync(batch, ticker.epochMicros() + i)
                            .toCompletableFuture());
                }
                connection.flushCommands();
                connection.setAutoFlushCommands(true);
                connection.flushCommands();

                // As without the reload: the calls run in the order they were made on the connection.
                assertThat(inFlight)
                        .extracting(result -> result.join().admitted())
                        .containsExactly(true, false, false, false);
            } finally {
                client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void evaluate_functionsFlushed_loadsTheLibraryOnceThenCallsItAgain() {
        StateKey key = new StateKey("bucket", "user-1");
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofSeconds(1));
        Batch batch = Batch.of(new Step(key, bucket, 1));
        try (RedisProcess server = RedisProcess.start();
                RedisStorage storage = RedisStorage.builder(server.uri()).build();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            RedisClient admin = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> connection = admin.connect()) {
                assertThat(storage.evaluate(batch, ticker.epochMicros()).outcome(0))
                        .isEqualTo(Outcome.admitted(9));
                connection.sync().functionFlush(FlushMode.SYNC);

                Map<String, Long> before = stats.counts();
                assertThat(storage.evaluate(batch, ticker.epochMicros()).outcome(0))
                        .isEqualTo(Outcome.admitted(8));
                Map<String, Long> middle = stats.counts();
                connection.sync().functionFlush(FlushMode.SYNC);
                assertThat(storage.evaluateAsync(batch, ticker.epochMicros())
                                .toCompletableFuture()
                                .join()
                                .outcome(0))
                        .isEqualTo(Outcome.admitted(7));
                Map<String, Long> afterAsync = stats.counts();
                assertThat(storage.acquire(key, bucket, 1, ticker.epochMicros()))
                        .isEqualTo(Outcome.admitted(6));
                Map<String, Long> after = stats.counts();

                // "Function not found", the library once, the call again; from then on one FCALL.
                Map<String, Long> reloaded = Map.of("fcall", 2L, "function|load", 1L, "get", 1L, "set", 1L);
                assertThat(CommandStats.delta(before, middle)).isEqualTo(reloaded);
                Map<String, Long> flushedAndReloaded = new HashMap<>(reloaded);
                flushedAndReloaded.put("function|flush", 1L);
                assertThat(CommandStats.delta(middle, afterAsync)).isEqualTo(flushedAndReloaded);
                assertThat(CommandStats.delta(afterAsync, after)).isEqualTo(Map.of("fcall", 1L, "get", 1L, "set", 1L));
            } finally {
                admin.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            }
        }
    }

    @Test
    void acquire_64CallersOnOneHotKey_noRetriesAndExactlyTheCapacity() throws Exception {
        int storages = 4;
        int threads = 64;
        int perThread = 40;
        long capacity = 1_000;
        // No refill at the test's frozen time: exactly `capacity` of the 2,560 requests can pass.
        TokenBucket bucket = new TokenBucket(capacity, 1, Duration.ofHours(1));
        StateKey hot = new StateKey("bucket", "hot");
        String prefix = Target.freshPrefix();
        try (RedisProcess server = RedisProcess.start();
                CommandStats stats = new CommandStats(List.of(server.uri()))) {
            List<RedisStorage> opened = new ArrayList<>();
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                for (int s = 0; s < storages; s++) {
                    opened.add(
                            RedisStorage.builder(server.uri()).keyPrefix(prefix).build());
                }
                CyclicBarrier gate = new CyclicBarrier(threads);
                long now = ticker.epochMicros();
                Map<String, Long> before = stats.counts();
                List<Future<Integer>> admitted = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    RedisStorage storage = opened.get(t % storages);
                    admitted.add(pool.submit(() -> {
                        gate.await();
                        int passed = 0;
                        for (int i = 0; i < perThread; i++) {
                            if (Outcome.isAdmitted(storage.acquire(hot, bucket, 1, now))) {
                                passed++;
                            }
                        }
                        return passed;
                    }));
                }
                long total = 0;
                for (Future<Integer> f : admitted) {
                    total += f.get(60, TimeUnit.SECONDS);
                }
                Map<String, Long> executed = CommandStats.delta(before, stats.counts());

                assertThat(total).isEqualTo(capacity);
                // Nothing is retried, by callers that won or lost: the functions read the key once per decision and
                // write it once per admitted decision, and no decision takes more than one call (concurrent ones share
                // calls, so there are fewer calls than decisions).
                long decisions = (long) threads * perThread;
                assertThat(executed).containsOnlyKeys("fcall", "get", "set");
                assertThat(executed.get("fcall")).isBetween(1L, decisions);
                assertThat(executed).containsEntry("get", decisions).containsEntry("set", capacity);
            } finally {
                pool.shutdownNow();
                opened.forEach(RedisStorage::close);
            }
        }
    }

    @Test
    void clusterChain_oneSubject_isOneScriptOnOneMaster() {
        String seed = RedisServers.cluster();
        String prefix = Target.freshPrefix();
        try (RedisStorage storage = RedisStorage.builder(seed).keyPrefix(prefix).build();
                MonitoredCommands monitor = new MonitoredCommands(RedisServers.clusterMasters(seed), prefix)) {
            String user = "user-7";
            Batch chain = Batch.of(
                    new Step(new StateKey("set:blocklist", user), Membership.MUST_BE_ABSENT, 1),
                    // The duplicates filter: one key per conversation, the message's fingerprint as the item.
                    new Step(new StateKey("duplicates", user), new DuplicateWindow(Duration.ofSeconds(10), 32), 4_242),
                    new Step(new StateKey("throttle", user), new FixedWindow(10, Duration.ofMinutes(1)), 1),
                    new Step(new StateKey("bucket", user), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1));

            BatchResult first = storage.evaluate(chain, ticker.epochMicros());
            BatchResult copy = storage.evaluate(chain, ticker.epochMicros());
            Map<String, Long> executed = monitor.drain();

            assertThat(first.admitted()).isTrue();
            assertThat(copy.firstRejected()).isEqualTo(1);
            // Four reads per script; the admitted one wrote the duplicate window, the fixed window and the bucket.
            assertThat(executed).isEqualTo(Map.of("fcall", 2L, "lua:get", 8L, "lua:set", 3L));
        }
    }

    @Test
    void clusterChain_spanningSlots_isOneScriptPerSlotAndARefundWhenRejected() {
        String seed = RedisServers.cluster();
        String prefix = Target.freshPrefix();
        try (RedisStorage storage = RedisStorage.builder(seed).keyPrefix(prefix).build();
                MonitoredCommands monitor = new MonitoredCommands(RedisServers.clusterMasters(seed), prefix)) {
            StateKey user = new StateKey("bucket", "user-7");
            StateKey global = new StateKey("bucket", StateKey.GLOBAL);
            assertThat(slotOf("{user-7}")).isNotEqualTo(slotOf("{*}"));
            TokenBucket perUser = new TokenBucket(5, 1, Duration.ofMinutes(1));
            TokenBucket everyone = new TokenBucket(1, 1, Duration.ofMinutes(1));
            Batch chain = Batch.of(new Step(user, perUser, 1), new Step(global, everyone, 1));
            long now = ticker.epochMicros();

            BatchResult admitted = storage.evaluate(chain, now);
            Map<String, Long> first = monitor.drain();
            BatchResult rejected = storage.evaluate(chain, now);
            Map<String, Long> second = monitor.drain();

            assertThat(admitted).isEqualTo(BatchResult.of(Outcome.admitted(4), Outcome.admitted(0)));
            assertThat(rejected).isEqualTo(BatchResult.of(Outcome.admitted(3), Outcome.rejected(60_000_000)));
            // Two slots, two scripts sent at once; the rejection adds one refund for the slot that admitted.
            assertThat(first).isEqualTo(Map.of("fcall", 2L, "lua:get", 2L, "lua:set", 2L));
            assertThat(second).isEqualTo(Map.of("fcall", 3L, "lua:get", 3L, "lua:set", 2L));
            // The refund gave the user's token back.
            assertThat(storage.acquire(user, perUser, 0, now)).isEqualTo(Outcome.admitted(4));
        }
    }

    private static int slotOf(String tag) {
        return SlotHash.getSlot(tag.getBytes(StandardCharsets.UTF_8));
    }
}
