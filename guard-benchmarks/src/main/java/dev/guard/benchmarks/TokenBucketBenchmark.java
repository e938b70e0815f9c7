package dev.guard.benchmarks;

import com.google.common.util.concurrent.RateLimiter;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.Ticker;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.storage.memory.MemoryStorage;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.resilience4j.ratelimiter.RateLimiterConfig;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
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
 * One hot key, a limit never reached: the cost of one permit on the synchronous path, Guard's memory storage beside
 * Bucket4j's default (lock-free) local bucket, Resilience4j's RateLimiter and Guava's RateLimiter, measured in the
 * same run. Guard is called through {@link Storage#acquire}, the single-step path a {@code Guard} with one stateful
 * filter takes, with a key built once, as a bot holds the key of a hot chat. {@code guard} reads time as a {@code
 * Guard} does by default ({@link Ticker#system()}, a cached clock of millisecond resolution); {@code guard-precise}
 * reads the operating system's clock on every call ({@link Ticker#precise()}), as the peers do (Bucket4j's default
 * calls {@code System.currentTimeMillis()}, Resilience4j and Guava {@code System.nanoTime()}).
 *
 * <p>{@code guard} and {@code guard-precise} call the storage SPI, a level below what a bot calls; the peers are
 * called through their own public API. {@code guard-check} is what a bot calls: {@link Guard#check} of a guard whose
 * one filter is that token bucket keyed {@link KeyBy#GLOBAL} (one state for everybody, the hot key), with Guard's
 * default clock and no id extractor, so that it decides in Guard's shortest path (one storage call, no buffer); it
 * adds the plan's work around the storage call (the breaker, the {@code Decision}, which the compiler leaves unmade
 * only when it takes {@code check} into the benchmark's own code). {@code guard-allows} is {@link Guard#allows} of the
 * same guard: the yes or no that Bucket4j's {@code tryConsume}, Resilience4j's {@code acquirePermission} and Guava's
 * {@code tryAcquire} answer, with no {@code Decision} made.
 *
 * <p>What differs: Guard and Bucket4j keep a greedy token bucket; Resilience4j hands out permits per refresh period
 * (a fixed window); Guava smooths to a steady rate. Every side admits every call here ({@code
 * TokenBucketBenchmarkTest} checks it).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(2)
public class TokenBucketBenchmark {
    /** Large enough never to be reached, small enough to keep every implementation's arithmetic exact. */
    static final long CAPACITY = 1_000_000_000L;

    @Param({"guard", "guard-precise", "guard-check", "guard-allows", "bucket4j", "resilience4j", "guava"})
    public String impl;

    private Storage storage;
    private TokenBucket spec;
    private StateKey key;
    private Ticker ticker;
    private Guard<Object> guard;
    private Bucket bucket;
    private io.github.resilience4j.ratelimiter.RateLimiter resilience4j;
    private RateLimiter guava;
    private BooleanSupplier acquirer;

    @Setup(Level.Trial)
    public void setUp() {
        switch (impl) {
            case "guard", "guard-precise" -> {
                storage = MemoryStorage.create();
                spec = new TokenBucket(CAPACITY, CAPACITY, Duration.ofSeconds(1));
                key = new StateKey("bench", "hot");
                ticker = impl.equals("guard") ? Ticker.system() : Ticker.precise();
                acquirer = () -> storage.acquire(key, spec, 1, ticker.epochMicros()) >= 0;
            }
            case "guard-check", "guard-allows" -> {
                storage = MemoryStorage.create();
                guard = Guard.builder()
                        .storage(storage)
                        .tokenBucket("bench", KeyBy.GLOBAL, CAPACITY, CAPACITY, Duration.ofSeconds(1))
                        .build();
                Object message = new Object();
                acquirer =
                        impl.equals("guard-check") ? () -> guard.check(message).allowed() : () -> guard.allows(message);
            }
            case "bucket4j" -> {
                bucket = Bucket.builder()
                        .addLimit(Bandwidth.builder()
                                .capacity(CAPACITY)
                                .refillGreedy(CAPACITY, Duration.ofSeconds(1))
                                .build())
                        .build();
                acquirer = () -> bucket.tryConsume(1);
            }
            case "resilience4j" -> {
                resilience4j = io.github.resilience4j.ratelimiter.RateLimiter.of(
                        "bench",
                        RateLimiterConfig.custom()
                                .limitForPeriod(Integer.MAX_VALUE)
                                .limitRefreshPeriod(Duration.ofSeconds(1))
                                .timeoutDuration(Duration.ZERO)
                                .build());
                acquirer = resilience4j::acquirePermission;
            }
            case "guava" -> {
                guava = RateLimiter.create(1e12);
                acquirer = guava::tryAcquire;
            }
            default ->
                throw new IllegalArgumentException(
                        "impl must be guard, guard-precise, guard-check, guard-allows, bucket4j, resilience4j or guava"
                                + " but was " + impl);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (storage != null) {
            storage.close();
        }
    }

    private boolean acquire() {
        // One implementation per fork, so this call site stays monomorphic.
        return acquirer.getAsBoolean();
    }

    @Benchmark
    @Threads(1)
    public boolean oneThread() {
        return acquire();
    }

    @Benchmark
    @Threads(2)
    public boolean twoThreads() {
        return acquire();
    }
}
