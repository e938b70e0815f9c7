package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Several storages (separate clients, as separate bot processes would have) with 8 threads each on one key: they
 * admit exactly the limit. The time is frozen, so nothing refills during the race.
 */
class RedisConcurrencyTest {
    private static final int STORAGES = 3;
    private static final int THREADS_PER_STORAGE = 8;
    private static final int REQUESTS_PER_THREAD = 60;

    private final ManualTicker ticker = ManualTicker.create();

    /** Runs {@code request} from every thread of every storage behind one gate; answers how many were admitted. */
    private long race(Target target, String prefix, RaceRequest request) throws Exception {
        int threads = STORAGES * THREADS_PER_STORAGE;
        List<RedisStorage> storages = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            for (int s = 0; s < STORAGES; s++) {
                storages.add(target.builder(prefix).build());
            }
            CyclicBarrier gate = new CyclicBarrier(threads);
            List<Future<Integer>> admitted = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                RedisStorage storage = storages.get(t % STORAGES);
                Callable<Integer> worker = () -> {
                    gate.await();
                    int passed = 0;
                    for (int i = 0; i < REQUESTS_PER_THREAD; i++) {
                        if (request.admitted(storage)) {
                            passed++;
                        }
                    }
                    return passed;
                };
                admitted.add(pool.submit(worker));
            }
            long total = 0;
            for (Future<Integer> f : admitted) {
                total += f.get(60, TimeUnit.SECONDS);
            }
            return total;
        } finally {
            pool.shutdownNow();
            storages.forEach(RedisStorage::close);
        }
    }

    @FunctionalInterface
    private interface RaceRequest {
        boolean admitted(RedisStorage storage);
    }

    @ParameterizedTest
    @EnumSource(
            value = Target.class,
            names = {"STANDALONE", "CLUSTER"})
    void severalStorages_8ThreadsEach_admitExactlyTheLimit(Target target) throws Exception {
        long now = ticker.epochMicros();
        StateKey key = new StateKey("race", "hot");
        TokenBucket bucket = new TokenBucket(700, 1, Duration.ofHours(1));
        SlidingWindowLog log = new SlidingWindowLog(300, Duration.ofHours(1));
        StateKey logKey = new StateKey("race-log", "hot");

        long buckets = race(target, Target.freshPrefix(), s -> Outcome.isAdmitted(s.acquire(key, bucket, 1, now)));
        long logs = race(target, Target.freshPrefix(), s -> Outcome.isAdmitted(s.acquire(logKey, log, 1, now)));

        assertThat(buckets).isEqualTo(700);
        assertThat(logs).isEqualTo(300);
    }

    @ParameterizedTest
    @EnumSource(
            value = Target.class,
            names = {"STANDALONE", "CLUSTER"})
    void severalStorages_chainOverTwoSubjects_admitExactlyTheSharedLimitAndRefundTheRest(Target target)
            throws Exception {
        long now = ticker.epochMicros();
        String prefix = Target.freshPrefix();
        // In a Cluster the two subjects live in different slots: every rejected batch is refunded in the user's slot.
        StateKey user = new StateKey("per-user", "user-1");
        StateKey global = new StateKey("global", StateKey.GLOBAL);
        TokenBucket perUser = new TokenBucket(10_000, 1, Duration.ofHours(1));
        FixedWindow everyone = new FixedWindow(500, Duration.ofHours(1));
        Batch chain = Batch.of(new Step(user, perUser, 1), new Step(global, everyone, 1));

        long admitted = race(target, prefix, s -> s.evaluate(chain, now).admitted());

        assertThat(admitted).isEqualTo(500);
        try (RedisStorage storage = target.builder(prefix).build()) {
            // Exactly the admitted batches' tokens are gone: every refund put back exactly what its batch took.
            assertThat(storage.acquire(user, perUser, 0, now)).isEqualTo(Outcome.admitted(10_000 - 500));
            assertThat(storage.acquire(global, everyone, 0, now)).isEqualTo(Outcome.admitted(0));
        }
    }
}
