package dev.guard.benchmarks;

import dev.guard.Ticker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.storage.redis.RedisStorage;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.distributed.BucketProxy;
import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.distributed.proxy.RemoteBucketBuilder;
import io.github.bucket4j.distributed.proxy.optimization.Optimizations;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.github.bucket4j.redis.lettuce.cas.LettuceBasedProxyManager;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.UUID;
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
 * A token bucket shared through Redis: Guard's {@code RedisStorage} beside Bucket4j's Lettuce backend (its
 * compare-and-swap proxy manager, the module's only one), one hot key whose limit is never reached, measured in the
 * same run against the same Redis ({@code -p uri=...}, default {@code redis://127.0.0.1:6379}).
 *
 * <ul>
 *   <li>{@code oneLimit}: one bucket, 1 and 16 threads. Guard sends one {@code FCALL} of its Redis Functions library
 *       ({@code EVALSHA} on a Redis without Functions), which decisions that wait while {@code calls} calls are in
 *       flight share; Bucket4j reads the state
 *       ({@code GET}), computes in Java and writes it back with a compare-and-swap script ({@code EVAL}), retrying when
 *       another thread won the race.
 *   <li>{@code chain}: three limits per decision. Guard evaluates all three in one call, all-or-nothing; Bucket4j uses
 *       three buckets, one after the other (and cannot give back the first two when the third rejects).
 *   <li>{@code ping}: a Lettuce {@code PING} on a connection of its own, the floor of one round trip (independent of
 *       {@code impl}; measured once per value as a check of the run's noise).
 * </ul>
 *
 * <p>Both sides share one Lettuce connection between their threads, expire their keys, and read the system clock on the
 * client. Throughput in operations per second; at 1 thread, its inverse is the latency.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class RedisTokenBucketBenchmark {
    private static final long HUGE = 1_000_000_000L;

    /**
     * {@code bucket4j}: Bucket4j's buckets as built by default; {@code bucket4j-batching}: with {@code
     * Optimizations.batching()}, which Bucket4j's maintainer advises for many threads on one bucket: concurrent
     * requests on the bucket go to Redis together, one read and one compare-and-swap for all of them.
     */
    @Param({"guard", "bucket4j", "bucket4j-batching"})
    public String impl;

    @Param("redis://127.0.0.1:6379")
    public String uri;

    /**
     * Guard's {@code RedisStorage.Builder.concurrentCalls}: how many calls are in flight at most before concurrent
     * decisions wait to share one; 1024 is its default (nothing shared in practice), 1 makes busy threads share the
     * most.
     */
    @Param("1024")
    public int calls;

    private RedisStorage storage;
    private final TokenBucket spec = new TokenBucket(HUGE, HUGE, Duration.ofSeconds(1));
    private StateKey key;
    private Batch chain;

    private RedisClient client;
    private StatefulRedisConnection<byte[], byte[]> bucket4jConnection;
    private StatefulRedisConnection<String, String> pingConnection;
    private BucketProxy bucket;
    private BucketProxy[] buckets;

    @Setup(Level.Trial)
    public void setUp() {
        String run = "bench-" + UUID.randomUUID();
        client = RedisClient.create(uri);
        pingConnection = client.connect();
        if (impl.equals("guard")) {
            storage = RedisStorage.builder(uri)
                    .keyPrefix(run + ":")
                    .concurrentCalls(calls)
                    .build();
            key = new StateKey("bucket", "hot");
            chain = Batch.of(
                    new Step(new StateKey("per-user", "hot"), spec, 1),
                    new Step(new StateKey("per-chat", "hot"), spec, 1),
                    new Step(new StateKey("global", "hot"), spec, 1));
        } else if (impl.equals("bucket4j") || impl.equals("bucket4j-batching")) {
            bucket4jConnection = client.connect(ByteArrayCodec.INSTANCE);
            LettuceBasedProxyManager<byte[]> proxies = Bucket4jLettuce.casBasedBuilder(bucket4jConnection)
                    .expirationAfterWrite(
                            ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(Duration.ofSeconds(10)))
                    .build();
            BucketConfiguration configuration = BucketConfiguration.builder()
                    .addLimit(Bandwidth.builder()
                            .capacity(HUGE)
                            .refillGreedy(HUGE, Duration.ofSeconds(1))
                            .build())
                    .build();
            boolean batching = impl.equals("bucket4j-batching");
            bucket = bucket4j(proxies, batching, run + ":hot", configuration);
            buckets = new BucketProxy[] {
                bucket4j(proxies, batching, run + ":per-user", configuration),
                bucket4j(proxies, batching, run + ":per-chat", configuration),
                bucket4j(proxies, batching, run + ":global", configuration)
            };
        } else {
            throw new IllegalArgumentException("impl must be guard, bucket4j or bucket4j-batching but was " + impl);
        }
    }

    private static BucketProxy bucket4j(
            LettuceBasedProxyManager<byte[]> proxies, boolean batching, String key, BucketConfiguration configuration) {
        RemoteBucketBuilder<byte[]> builder = proxies.builder();
        if (batching) {
            builder = builder.withOptimization(Optimizations.batching());
        }
        return builder.build(bytes(key), () -> configuration);
    }

    private static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (storage != null) {
            storage.close();
        }
        if (bucket4jConnection != null) {
            bucket4jConnection.close();
        }
        pingConnection.close();
        client.shutdown();
    }

    private boolean oneLimit() {
        if (storage != null) {
            return Outcome.isAdmitted(
                    storage.acquire(key, spec, 1, Ticker.system().epochMicros()));
        }
        return bucket.tryConsume(1);
    }

    private boolean chain() {
        if (storage != null) {
            return storage.evaluate(chain, Ticker.system().epochMicros()).admitted();
        }
        return buckets[0].tryConsume(1) && buckets[1].tryConsume(1) && buckets[2].tryConsume(1);
    }

    @Benchmark
    @Threads(1)
    public boolean oneLimit_1thread() {
        return oneLimit();
    }

    @Benchmark
    @Threads(16)
    public boolean oneLimit_16threads() {
        return oneLimit();
    }

    @Benchmark
    @Threads(1)
    public boolean chain_1thread() {
        return chain();
    }

    @Benchmark
    @Threads(16)
    public boolean chain_16threads() {
        return chain();
    }

    @Benchmark
    @Threads(1)
    public String ping_1thread() {
        return pingConnection.sync().ping();
    }
}
