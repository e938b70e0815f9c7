package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Ticker;
import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.sync.RedisClusterCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * With server time, decisions read Redis' clock: processes whose clocks disagree by hours still agree. The deadlines a
 * caller sets count from its own now on Redis' clock, and the deadline in force comes back on the caller's clock. The
 * tests that offset a caller's clock from Redis' read Redis' {@code TIME} before and after, so that the real time that
 * passes in between bounds what they assert.
 */
class RedisServerTimeTest {
    private static final long HOUR = Duration.ofHours(1).toNanos() / 1_000;
    private static final long SECOND = 1_000_000L;
    private static final long MARGIN_MILLIS = 1_000;

    /** The Lua code paths and deployments the deadlines must agree on. */
    enum Path {
        FUNCTIONS,
        SCRIPTS,
        CLUSTER
    }

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

    @ParameterizedTest
    @EnumSource(Path.class)
    void raiseGate_serverTime_callerClockBehindRedis_gatesForTheWholeRetryAfter(Path path) {
        assertRetryAfterLastsItsLength(path, -5 * SECOND);
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void raiseGate_serverTime_callerClockAheadOfRedis_gatesNoLongerThanTheRetryAfter(Path path) {
        assertRetryAfterLastsItsLength(path, 5 * SECOND);
    }

    /**
     * A caller whose clock is {@code offset} off Redis' raises a gate for a retry_after of 10 s: Redis holds it 10 s on
     * its own clock (not 10 s minus the offset), expires its key then plus the margin, and answers the caller's own
     * deadline.
     */
    private static void assertRetryAfterLastsItsLength(Path path, long offset) {
        StateKey gate = new StateKey("gate", "sender-1");
        try (Fixture redis = Fixture.open(path)) {
            long start = redis.time();
            long callerNow = start + offset;
            assertThat(redis.storage.raiseGate(gate, callerNow + 10 * SECOND, callerNow))
                    .isEqualTo(callerNow + 10 * SECOND);
            long wait = Outcome.retryAfterMicros(redis.storage.acquire(gate, Gate.INSTANCE, 1, callerNow));
            long ttl = redis.commands.pttl(redis.keys.state(gate));
            long elapsed = redis.time() - start;
            assertThat(wait).isBetween(10 * SECOND - elapsed, 10 * SECOND);
            assertThat(ttl).isBetween(10_000 + MARGIN_MILLIS - elapsed / 1_000 - 1, 10_000 + MARGIN_MILLIS);
        }
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void raiseGate_serverTime_longerGateInForce_isAnsweredOnTheCallersClock(Path path) {
        StateKey gate = new StateKey("gate", "sender-1");
        try (Fixture redis = Fixture.open(path)) {
            long start = redis.time();
            long ahead = start + 5 * SECOND;
            long behind = start - 5 * SECOND;
            // One process, its clock ahead, is pushed back for 20 s; another, its clock behind, for 10 s just after.
            assertThat(redis.storage.raiseGate(gate, ahead + 20 * SECOND, ahead))
                    .isEqualTo(ahead + 20 * SECOND);
            long inForce = redis.storage.raiseGate(gate, behind + 10 * SECOND, behind);
            long elapsed = redis.time() - start;
            // The first one's 20 s, on the second one's clock: about its now + 20 s, not the first one's deadline.
            assertThat(inForce).isBetween(behind + 20 * SECOND - elapsed, behind + 20 * SECOND);
        }
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void addMember_serverTime_callerClockBehindRedis_blocksForTheWholeDuration(Path path) {
        StateKey member = new StateKey("blocklist", "user-1");
        try (Fixture redis = Fixture.open(path)) {
            long start = redis.time();
            long callerNow = start - 5 * SECOND;
            redis.storage.addMember(member, callerNow + HOUR, callerNow);
            long wait =
                    Outcome.retryAfterMicros(redis.storage.acquire(member, Membership.MUST_BE_ABSENT, 1, callerNow));
            long elapsed = redis.time() - start;
            assertThat(wait).isBetween(HOUR - elapsed, HOUR);
        }
    }

    @ParameterizedTest
    @EnumSource(Path.class)
    void addMember_serverTime_callerClockAheadOfRedis_expiryAtItsNow_storesNoMembership(Path path) {
        StateKey member = new StateKey("blocklist", "user-1");
        try (Fixture redis = Fixture.open(path)) {
            long callerNow = redis.time() + 5 * SECOND;
            redis.storage.addMember(member, Long.MAX_VALUE, callerNow);
            assertThat(redis.storage.isMember(member, callerNow)).isTrue();
            // Over at the caller's now: over on Redis' clock too, although Redis' TIME is 5 s before it.
            redis.storage.addMember(member, callerNow, callerNow);
            assertThat(redis.storage.isMember(member, callerNow)).isFalse();
            assertThat(redis.commands.exists(redis.keys.state(member))).isZero();
        }
    }

    /** A storage with server time on {@code path}, over a connection whose synchronous view reads Redis' clock. */
    private static final class Fixture implements AutoCloseable {
        final String prefix = Target.freshPrefix();
        final RedisKeys keys = new RedisKeys(prefix, false);
        /** What closing releases, most recent first. */
        private final List<Runnable> opened = new ArrayList<>();

        RedisClusterCommands<byte[], byte[]> commands;
        RedisStorage storage;

        static Fixture open(Path path) {
            Fixture fixture = new Fixture();
            try {
                fixture.connect(path);
                return fixture;
            } catch (RuntimeException e) {
                fixture.close();
                throw e;
            }
        }

        private void connect(Path path) {
            RedisStorage.Builder builder;
            if (path == Path.CLUSTER) {
                RedisClusterClient client = RedisClusterClient.create(RedisServers.cluster());
                opened.add(0, () -> client.shutdown(Duration.ZERO, Duration.ofSeconds(2)));
                StatefulRedisClusterConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                opened.add(0, connection::close);
                commands = connection.sync();
                builder = RedisStorage.builder(connection);
            } else {
                RedisClient client = RedisClient.create(RedisServers.standalone());
                opened.add(0, () -> client.shutdown(Duration.ZERO, Duration.ofSeconds(2)));
                StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                opened.add(0, connection::close);
                commands = connection.sync();
                builder = RedisStorage.builder(connection).functions(path == Path.FUNCTIONS);
            }
            storage = builder.keyPrefix(prefix)
                    .serverTime(true)
                    .expiryMargin(Duration.ofMillis(MARGIN_MILLIS))
                    .build();
            opened.add(0, storage::close);
        }

        /** Redis' {@code TIME} in microseconds (in a Cluster, one master's; the test's masters share a host). */
        long time() {
            List<byte[]> time = commands.time();
            return Long.parseLong(new String(time.get(0), StandardCharsets.US_ASCII)) * SECOND
                    + Long.parseLong(new String(time.get(1), StandardCharsets.US_ASCII));
        }

        @Override
        public void close() {
            opened.forEach(Runnable::run);
        }
    }
}
