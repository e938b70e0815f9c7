package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import io.lettuce.core.RedisClient;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code refund.lua} on a key that another caller wrote between a cross-slot batch's commit and its refund, on the
 * standalone Redis. The interleaving that a Cluster leaves to chance is played in order here: batch A commits, caller
 * B takes permits, A's refund runs. Afterwards the key must answer as {@link ReferenceStorage} does after B alone.
 */
class RedisRefundTest {
    private static final long SECOND = 1_000_000L;
    private static final StateKey KEY = new StateKey("limit", "user-1");
    /** Absent: a step on it never admits, so a batch with it shows its other step's outcome and commits nothing. */
    private static final Step NEVER_ADMITS =
            new Step(new StateKey("set:required", "nobody"), Membership.MUST_BE_PRESENT, 1);

    /**
     * Permits taken {@code earlier} micros before the batch ({@code prior}, 0: none, the key is empty), by batch A
     * ({@code a}) at the batch's time, and by B ({@code b}) {@code later} micros after it; then every permit count up
     * to {@code limit} is probed at B's time and after.
     */
    record Case(String name, LimitSpec spec, long limit, long earlier, long prior, long a, long later, long b) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofSeconds(1));
        return Stream.of(
                // The review's scenario: without A the bucket would have refilled to its cap before B.
                new Case("bucket, empty, B half a second later", bucket, 10, 0, 0, 1, SECOND / 2, 1),
                new Case("bucket, half full, B later", bucket, 10, 2 * SECOND, 8, 3, 3 * SECOND, 2),
                new Case("bucket, nearly full, B at once", bucket, 10, SECOND / 2, 1, 4, 0, 2),
                new Case("bucket, nearly full, B half a second later", bucket, 10, 4 * SECOND / 5, 1, 1, SECOND / 2, 1),
                new Case("fixed window", new FixedWindow(5, Duration.ofSeconds(1)), 5, SECOND / 2, 1, 2, 100, 1),
                new Case("sliding log", new SlidingWindowLog(5, Duration.ofSeconds(1)), 5, SECOND / 2, 1, 2, 100, 1),
                new Case(
                        "sliding counter",
                        new SlidingWindowCounter(5, Duration.ofSeconds(1), 5),
                        5,
                        SECOND / 2,
                        1,
                        2,
                        300_000,
                        1),
                new Case("cooldown", new Cooldown(Duration.ofSeconds(1)), 1, 2 * SECOND, 1, 1, SECOND + 100, 1),
                // Permits are items here: A's item 2 is forgotten again, the earlier item 1 and B's item 3 kept.
                new Case(
                        "duplicate window", new DuplicateWindow(Duration.ofSeconds(1), 3), 4, SECOND / 2, 1, 2, 100, 3),
                // Full: A forgot item 1 early, and so did B's commit in the reference, where A never ran.
                new Case(
                        "duplicate window, full",
                        new DuplicateWindow(Duration.ofSeconds(1), 1),
                        4,
                        SECOND / 2,
                        1,
                        2,
                        100,
                        3));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void refund_afterAnotherCallerWroteTheKey_leavesWhatThatCallerAloneWouldHaveLeft(Case c) {
        long t = ManualTicker.create().epochMicros();
        String prefix = Target.freshPrefix();
        RedisKeys keys = new RedisKeys(prefix, false);
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis =
                        RedisStorage.builder(connection).keyPrefix(prefix).build();
                ReferenceStorage reference = ReferenceStorage.create()) {
            byte[] key = keys.state(KEY);
            for (Storage storage : new Storage[] {redis, reference}) {
                if (c.prior() > 0) {
                    storage.acquire(KEY, c.spec(), c.prior(), t - c.earlier());
                }
            }
            byte[] before = connection.sync().get(key);
            redis.acquire(KEY, c.spec(), c.a(), t);
            byte[] after = connection.sync().get(key);
            // B must pass with A as without it, or B alone is not what the refund should come back to.
            assertThat(Outcome.isAdmitted(redis.acquire(KEY, c.spec(), c.b(), t + c.later())))
                    .as("B admitted")
                    .isTrue();
            assertThat(Outcome.isAdmitted(reference.acquire(KEY, c.spec(), c.b(), t + c.later())))
                    .isTrue();
            LuaCalls lua = new LuaCalls(connection.async(), true);
            Long refunded = lua.<Long>run(
                            RedisScript.REFUND,
                            ScriptOutputType.INTEGER,
                            new byte[][] {key},
                            LuaArgs.number(t),
                            LuaArgs.number(1_000),
                            LuaArgs.step(new Step(KEY, c.spec(), c.a())),
                            before == null ? LuaArgs.EMPTY : before,
                            after)
                    .get(5, TimeUnit.SECONDS);
            assertThat(refunded).isEqualTo(1);

            byte[] left = connection.sync().get(key);
            String state = left == null ? "absent" : new String(left, StandardCharsets.US_ASCII);
            for (long at : new long[] {t + c.later(), t + c.later() + SECOND / 4, t + c.later() + SECOND}) {
                for (long permits = 0; permits <= c.limit(); permits++) {
                    Batch probe = Batch.of(new Step(KEY, c.spec(), permits), NEVER_ADMITS);
                    assertThat(redis.evaluate(probe, at).outcome(0))
                            .as("%d permits %d micros after B, state %s", permits, at - t - c.later(), state)
                            .isEqualTo(reference.evaluate(probe, at).outcome(0));
                }
            }
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }
}
