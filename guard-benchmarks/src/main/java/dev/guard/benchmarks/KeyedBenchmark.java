package dev.guard.benchmarks;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.guard.Guard;
import dev.guard.KeyBy;
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
 * before the measurement (Guard's {@code StateKey}s, Bucket4j's boxed {@code Integer}s; {@code guard-check}, below,
 * builds Guard's from the boxed ids per message). Bytes per resident key are measured by {@link ResidentKeys}.
 *
 * <p>The limit is never reached, as in {@link TokenBucketBenchmark}: every call admits and writes on both sides. (With
 * 100 per second per key the hottest keys, hit hundreds of thousands of times a second in this closed loop, rejected 42
 * to 48% of the calls, and the faster side rejected more of them, so the two sides did not do the same work.) A bucket
 * refills in one second on both sides. Caffeine keeps Bucket4j's keys an hour after their last use ({@code
 * expireAfterAccess}), longer than a trial; Guard keeps a key two to four refill times after its last use (its own
 * expiry, on the calling thread), longer than the sample's gaps at the speed of {@code guard}, and a key that a slower
 * Guard side drops all the same is created again there, work that only slows Guard's side. (Until 2026-12-05 Caffeine
 * dropped a key one second after its last use: the slower side, which takes about four times as long over the sample,
 * found about 16% of its keys dropped and created their buckets again, work that Guard did not do.) All buckets share
 * one {@link Bandwidth}, as all of Guard's keys share one {@link TokenBucket}.
 *
 * <p>Every key of the sample has its bucket before the warm-up, on every side: the setup takes one token from each.
 * (Until 2026-12-06 each side created its buckets as the sample first reached them: the faster side had walked the
 * whole sample in its warm-up, the slower did not, and Bucket4j, at the speed of {@code keyed.json}, met about 170,000
 * keys for the first time in its measurement, one call in twenty, each building a bucket and inserting it into
 * Caffeine, where Guard met none.)
 *
 * <p>{@code guard} reads time from {@link Ticker#system()} (a cached clock, Guard's default); {@code guard-precise}
 * from {@link Ticker#precise()} (one {@code System.nanoTime} per call), as Bucket4j reads {@code
 * System.currentTimeMillis()} per call. Both call the storage SPI with prebuilt keys, a level below what a bot calls.
 * {@code guard-check} is what a bot calls: {@link Guard#check} of a guard whose one filter is the token bucket keyed
 * {@link KeyBy#USER}, the message being the user's id (the same boxed {@code Integer}s as Bucket4j's keys), so that
 * Guard builds the user's key from the id per message as it does for a bot.
 *
 * <p>{@code bucket4j} keeps Caffeine's default executor, as a Bucket4j user would: the cache's maintenance runs on
 * the common pool, on another core. {@code bucket4j-inline} runs it on the calling thread ({@code
 * executor(Runnable::run)}), as Guard's memory storage runs its own cache's, so that either configuration of the peer
 * can be put beside Guard.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class KeyedBenchmark {
    static final int SAMPLES = 1 << 22;

    /**
     * Tokens per second and capacity: far above any key's rate here (Bucket4j allows at most 10^9 per second), and a
     * power of two times 10^6: Guard's ticks per microsecond are then a power of two, the case where its expiry
     * interval is the refill time itself (one second plus a millisecond, as with 100 per second) rather than rounded
     * up to as much as twice it.
     */
    static final long CAPACITY = 512_000_000L;

    /** The one limit of every key, shared as Guard's buckets share their spec. */
    private static final Bandwidth BANDWIDTH = Bandwidth.builder()
            .capacity(CAPACITY)
            .refillGreedy(CAPACITY, Duration.ofSeconds(1))
            .build();

    @Param({"guard", "guard-precise", "guard-check", "bucket4j", "bucket4j-inline"})
    public String impl;

    @Param({"1000000"})
    public int keys;

    // storage, buckets and sample are package-private for KeyedBenchmarkTest, which checks what the setup creates.
    Storage storage;
    private TokenBucket spec;
    private StateKey[] stateKeys;
    private Ticker ticker;
    private Guard<Integer> guard;
    Cache<Integer, Bucket> buckets;
    private Integer[] boxedKeys;
    int[] sample;

    /** Each thread walks the shared sample from its own offset. */
    @State(Scope.Thread)
    public static class Cursor {
        int next = (int) (Thread.currentThread().getId() * 7919) & (SAMPLES - 1);
    }

    @Setup(Level.Trial)
    public void setUp() {
        sample = Zipf.sample(keys, 1.0, SAMPLES, 42);
        switch (impl) {
            case "guard", "guard-precise" -> {
                storage = MemoryStorage.create();
                spec = new TokenBucket(CAPACITY, CAPACITY, Duration.ofSeconds(1));
                ticker = impl.equals("guard") ? Ticker.system() : Ticker.precise();
                stateKeys = new StateKey[keys];
                for (int i = 0; i < keys; i++) {
                    stateKeys[i] = new StateKey("per-user", "u:" + i);
                }
            }
            case "guard-check" -> {
                storage = MemoryStorage.create();
                guard = Guard.<Integer>builder()
                        .storage(storage)
                        .userId(id -> id)
                        .tokenBucket("per-user", KeyBy.USER, CAPACITY, CAPACITY, Duration.ofSeconds(1))
                        .build();
                boxedKeys = boxedKeys(keys);
            }
            case "bucket4j", "bucket4j-inline" -> {
                Caffeine<Object, Object> builder = Caffeine.newBuilder().expireAfterAccess(Duration.ofHours(1));
                if (impl.equals("bucket4j-inline")) {
                    builder.executor(Runnable::run);
                }
                buckets = builder.build();
                boxedKeys = boxedKeys(keys);
            }
            default ->
                throw new IllegalArgumentException(
                        "impl must be guard, guard-precise, guard-check, bucket4j or bucket4j-inline but was " + impl);
        }
        // Every key the sample reaches gets its bucket now, on every side, so that no side meets a key for the first
        // time in its measurement (the slower side would meet more of them).
        boolean[] touched = new boolean[keys];
        for (int index : sample) {
            if (!touched[index]) {
                touched[index] = true;
                if (!acquire(index)) {
                    throw new IllegalStateException("the limit is never reached, but key " + index + " was refused");
                }
            }
        }
    }

    private static Integer[] boxedKeys(int keys) {
        Integer[] boxed = new Integer[keys];
        for (int i = 0; i < keys; i++) {
            boxed[i] = i;
        }
        return boxed;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (storage != null) {
            storage.close();
        }
    }

    static Bucket newBucket(Integer key) {
        return Bucket.builder().addLimit(BANDWIDTH).build();
    }

    private boolean acquire(Cursor cursor) {
        int index = sample[cursor.next];
        cursor.next = (cursor.next + 1) & (SAMPLES - 1);
        return acquire(index);
    }

    private boolean acquire(int index) {
        if (guard != null) {
            return guard.check(boxedKeys[index]).allowed();
        }
        if (storage != null) {
            return storage.acquire(stateKeys[index], spec, 1, ticker.epochMicros()) >= 0;
        }
        return buckets.get(boxedKeys[index], KeyedBenchmark::newBucket).tryConsume(1);
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
