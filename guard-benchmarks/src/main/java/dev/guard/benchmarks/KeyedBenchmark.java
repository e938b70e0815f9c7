package dev.guard.benchmarks;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.guard.Ticker;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.storage.memory.MemoryStorage;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Many keys, Zipf-distributed (a few hot users, a long tail): one token bucket per key, Guard's memory storage beside
 * Bucket4j's local buckets held in a Caffeine cache, the way Bucket4j's users key their buckets. Keys are built once
 * before the measurement on both sides. Bytes per resident key are measured by {@link ResidentKeys}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class KeyedBenchmark {
    static final int SAMPLES = 1 << 22;

    @Param({"guard", "bucket4j"})
    public String impl;

    @Param({"1000000"})
    public int keys;

    private Storage storage;
    private TokenBucket spec;
    private StateKey[] stateKeys;
    private Ticker ticker;
    private Cache<Integer, Bucket> buckets;
    private int[] sample;

    /** Each thread walks the shared sample from its own offset. */
    @State(Scope.Thread)
    public static class Cursor {
        int next = (int) (Thread.currentThread().getId() * 7919) & (SAMPLES - 1);
    }

    @Setup(Level.Trial)
    public void setUp() {
        sample = Zipf.sample(keys, 1.0, SAMPLES, 42);
        switch (impl) {
            case "guard" -> {
                storage = MemoryStorage.create();
                spec = new TokenBucket(100, 100, Duration.ofSeconds(1));
                ticker = Ticker.system();
                stateKeys = new StateKey[keys];
                for (int i = 0; i < keys; i++) {
                    stateKeys[i] = new StateKey("per-user", "u:" + i);
                }
            }
            case "bucket4j" ->
                buckets = Caffeine.newBuilder()
                        .expireAfterAccess(Duration.ofSeconds(1))
                        .build();
            default -> throw new IllegalArgumentException("impl must be guard or bucket4j but was " + impl);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (storage != null) {
            storage.close();
        }
    }

    static Bucket newBucket(Integer key) {
        return Bucket.builder()
                .addLimit(Bandwidth.builder()
                        .capacity(100)
                        .refillGreedy(100, Duration.ofSeconds(1))
                        .build())
                .build();
    }

    private boolean acquire(Cursor cursor) {
        int index = sample[cursor.next];
        cursor.next = (cursor.next + 1) & (SAMPLES - 1);
        if (storage != null) {
            return storage.acquire(stateKeys[index], spec, 1, ticker.epochMicros()) >= 0;
        }
        return buckets.get(index, KeyedBenchmark::newBucket).tryConsume(1);
    }

    @Benchmark
    @Threads(1)
    public boolean oneThread(Cursor cursor) {
        return acquire(cursor);
    }

    @Benchmark
    @Threads(2)
    public boolean twoThreads(Cursor cursor) {
        return acquire(cursor);
    }
}
