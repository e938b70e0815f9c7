package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.spi.StateKey;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Gates and memberships expire in Redis after their deadline minus the {@code nowMicros} the caller passes with them,
 * plus the margin: the manual clock reads 2026-01-01, far from Redis' own clock, so only the caller's time gives these
 * expiries.
 */
class RedisDeadlineExpiryTest {
    private static final long SECOND = 1_000_000L;
    private static final long MARGIN_MILLIS = 1_000;
    /** Real time that may pass between the write and the read of its expiry on a busy machine. */
    private static final long SLACK_MILLIS = 500;

    private final long now = ManualTicker.create().epochMicros();
    private final String prefix = Target.freshPrefix();
    private final RedisKeys keys = new RedisKeys(prefix, false);

    @Test
    void raiseGate_callersNow_setsExpiryToDeadlineMinusNowPlusMargin() {
        StateKey gate = new StateKey("gate", "sender-1");
        withStorage((storage, redis) -> {
            assertThat(storage.raiseGate(gate, now + 10 * SECOND, now)).isEqualTo(now + 10 * SECOND);
            assertThat(redis.pttl(keys.state(gate)))
                    .isBetween(10_000 + MARGIN_MILLIS - SLACK_MILLIS, 10_000 + MARGIN_MILLIS);
        });
    }

    @Test
    void addMember_callersNow_setsExpiryToDeadlineMinusNowPlusMargin() {
        StateKey member = new StateKey("blocklist", "user-1");
        withStorage((storage, redis) -> {
            storage.addMember(member, now + 20 * SECOND, now);
            assertThat(redis.pttl(keys.state(member)))
                    .isBetween(20_000 + MARGIN_MILLIS - SLACK_MILLIS, 20_000 + MARGIN_MILLIS);
        });
    }

    @Test
    void addMember_expiryAtNow_deletesTheEarlierMembership() {
        StateKey member = new StateKey("blocklist", "user-1");
        withStorage((storage, redis) -> {
            storage.addMember(member, Long.MAX_VALUE, now);
            assertThat(redis.exists(keys.state(member))).isEqualTo(1);
            storage.addMember(member, now, now);
            assertThat(redis.exists(keys.state(member))).isZero();
            assertThat(storage.isMember(member, now)).isFalse();
        });
    }

    private void withStorage(StandaloneRedis.Use use) {
        StandaloneRedis.with(prefix, Duration.ofMillis(MARGIN_MILLIS), use);
    }
}
