package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Ticker;
import dev.guard.limit.Gate;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** With server time, decisions read Redis' clock: processes whose clocks disagree by hours still agree. */
class RedisServerTimeTest {
    private static final long HOUR = Duration.ofHours(1).toNanos() / 1_000;

    @Test
    void acquire_serverTime_ignoresTheCallersSkewedClock() {
        TokenBucket hourly = new TokenBucket(1, 1, Duration.ofHours(1));
        StateKey key = new StateKey("bucket", "user-1");
        String prefix = Target.freshPrefix();
        String uri = RedisServers.standalone();
        try (RedisStorage early = RedisStorage.builder(uri)
                        .keyPrefix(prefix)
                        .serverTime(true)
                        .build();
                RedisStorage late = RedisStorage.builder(uri)
                        .keyPrefix(prefix)
                        .serverTime(true)
                        .build()) {
            long now = Ticker.system().epochMicros();
            assertThat(early.acquire(key, hourly, 1, now)).isEqualTo(Outcome.admitted(0));
            // Ten hours ahead on the caller's clock would have refilled the bucket; Redis' clock has not moved.
            long wait = Outcome.retryAfterMicros(late.acquire(key, hourly, 1, now + 10 * HOUR));
            assertThat(wait).isBetween(HOUR - Duration.ofMinutes(1).toNanos() / 1_000, HOUR);
        }
    }

    @Test
    void raiseGate_serverTime_expiresOnRedisClock() {
        StateKey gate = new StateKey("gate", "sender-1");
        try (RedisStorage storage = RedisStorage.builder(RedisServers.standalone())
                .keyPrefix(Target.freshPrefix())
                .serverTime(true)
                .build()) {
            long now = Ticker.system().epochMicros();
            assertThat(storage.raiseGate(gate, now + HOUR, now)).isEqualTo(now + HOUR);
            long wait = Outcome.retryAfterMicros(storage.acquire(gate, Gate.INSTANCE, 1, 0));
            assertThat(wait).isBetween(HOUR - Duration.ofMinutes(1).toNanos() / 1_000, HOUR);
        }
    }
}
