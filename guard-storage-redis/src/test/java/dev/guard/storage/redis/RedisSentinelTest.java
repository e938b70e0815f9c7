package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Sentinel: a storage from a {@code redis-sentinel://} URI finds the master through a Sentinel the test starts. */
class RedisSentinelTest {
    @Test
    void create_sentinelUri_decidesOnTheMasterItNames() {
        ManualTicker ticker = ManualTicker.create();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofMinutes(1));
        StateKey key = new StateKey("bucket", "user-1");
        try (RedisProcess master = RedisProcess.start();
                RedisProcess sentinel = RedisProcess.startSentinel(master);
                RedisStorage viaSentinel = RedisStorage.builder(
                                "redis-sentinel://127.0.0.1:" + sentinel.port() + "#mymaster")
                        .build();
                RedisStorage direct = RedisStorage.builder(master.uri()).build()) {
            long now = ticker.epochMicros();
            assertThat(viaSentinel.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(1));
            // The same state, read without the Sentinel: the storage wrote to the master.
            assertThat(direct.acquire(key, bucket, 1, now)).isEqualTo(Outcome.admitted(0));
            assertThat(viaSentinel.health().detail()).isEqualTo("redis standalone sentinel master mymaster");
        }
    }
}
