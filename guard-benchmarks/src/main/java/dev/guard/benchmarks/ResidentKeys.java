package dev.guard.benchmarks;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import dev.guard.storage.memory.MemoryStorage;
import io.github.bucket4j.Bucket;
import java.lang.ref.Reference;
import java.time.Duration;
import java.util.Locale;

/**
 * Bytes of heap per resident key: fills Guard's memory storage, and Bucket4j buckets in a Caffeine cache, with one
 * token bucket for each of N keys, and divides the growth of the live heap (after full collections) by N. The key
 * objects themselves are built before the first reading on both sides, so the figure is what the storage adds per
 * key. The limit's definition is built once on both sides (Guard's {@link TokenBucket}, the {@link KeyedBenchmark}
 * buckets' one shared {@code Bandwidth}; until 2026-12-05 each Bucket4j bucket was given a {@code Bandwidth} of its
 * own, about 64 bytes per key that Guard's side did not pay). Run: {@code java -cp
 * guard-benchmarks/target/benchmarks.jar dev.guard.benchmarks.ResidentKeys [N]}.
 */
public final class ResidentKeys {
    private ResidentKeys() {}

    /** Prints bytes per resident key for Guard and for Bucket4j in Caffeine. */
    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        System.out.printf(
                Locale.ROOT,
                "{\"keys\": %d, \"guardBytesPerKey\": %.1f, \"bucket4jCaffeineBytesPerKey\": %.1f}%n",
                n,
                guard(n),
                bucket4j(n));
    }

    static double guard(int n) {
        StateKey[] keys = new StateKey[n];
        for (int i = 0; i < n; i++) {
            keys[i] = new StateKey("per-user", "u:" + i);
        }
        TokenBucket spec = new TokenBucket(KeyedBenchmark.CAPACITY, KeyedBenchmark.CAPACITY, Duration.ofSeconds(1));
        long now = System.currentTimeMillis() * 1_000;
        long before = liveHeap();
        MemoryStorage storage = MemoryStorage.create();
        for (int i = 0; i < n; i++) {
            storage.acquire(keys[i], spec, 1, now);
        }
        long after = liveHeap();
        double perKey = (after - before) / (double) n;
        Reference.reachabilityFence(keys);
        storage.close();
        return perKey;
    }

    static double bucket4j(int n) {
        Integer[] keys = new Integer[n];
        for (int i = 0; i < n; i++) {
            keys[i] = Integer.valueOf(i + 1_000_000); // outside the Integer cache: a real object per key
        }
        long before = liveHeap();
        Cache<Integer, Bucket> cache =
                Caffeine.newBuilder().expireAfterAccess(Duration.ofHours(1)).build(); // nothing expires while filling
        for (int i = 0; i < n; i++) {
            cache.get(keys[i], KeyedBenchmark::newBucket).tryConsume(1);
        }
        long after = liveHeap();
        double perKey = (after - before) / (double) n;
        Reference.reachabilityFence(keys);
        Reference.reachabilityFence(cache);
        return perKey;
    }

    private static long liveHeap() {
        Runtime rt = Runtime.getRuntime();
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            System.gc();
            used = Math.min(used, rt.totalMemory() - rt.freeMemory());
        }
        return used;
    }
}
