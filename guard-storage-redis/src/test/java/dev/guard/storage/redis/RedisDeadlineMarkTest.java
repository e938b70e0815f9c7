package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.spi.StateKey;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SetArgs;
import io.lettuce.core.api.sync.RedisCommands;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The text of a gate's, a cooldown's and a membership's deadline in Redis: marked with the kind that wrote it, in a
 * form that an earlier version, which wrote deadlines without a mark, reads as the number itself; and the unmarked
 * deadlines that an earlier version left in Redis, read and merged as that version did. On the standalone Redis.
 */
class RedisDeadlineMarkTest {
    private static final long SECOND = 1_000_000L;

    /** How the earlier version's decode read one word of a state: "max" for never, else Lua's tonumber. */
    private static final String EARLIER_DECODE = "local v = ARGV[1] == 'max' and math.huge or tonumber(ARGV[1])\n"
            + "if v == math.huge then return 'never' elseif v == nil then return 'nil' end\n"
            + "return string.format('%d', v)";

    private final long now = ManualTicker.create().epochMicros();
    private final String prefix = Target.freshPrefix();
    private final RedisKeys keys = new RedisKeys(prefix, false);

    @Test
    void deadlines_carryTheirWritersMark_whichTheEarlierDecodeReadsAsTheNumber() {
        StateKey gate = new StateKey("gate", "sender-1");
        StateKey gateForGood = new StateKey("gate", "sender-2");
        StateKey member = new StateKey("blocklist", "user-1");
        StateKey memberForGood = new StateKey("blocklist", "user-2");
        StateKey cooled = new StateKey("cooldown", "user-1");
        withStorage((storage, redis) -> {
            storage.raiseGate(gate, now + 10 * SECOND, now);
            storage.raiseGate(gateForGood, Long.MAX_VALUE, now);
            storage.addMember(member, now + 20 * SECOND, now);
            storage.addMember(memberForGood, Long.MAX_VALUE, now);
            assertThat(storage.acquire(cooled, new Cooldown(Duration.ofSeconds(5)), 1, now))
                    .isEqualTo(Outcome.admitted(0));

            assertThat(text(redis, gate)).isEqualTo("+" + (now + 10 * SECOND));
            assertThat(text(redis, gateForGood)).isEqualTo("+inf");
            assertThat(text(redis, member)).isEqualTo((now + 20 * SECOND) + ".");
            assertThat(text(redis, memberForGood)).isEqualTo("inf");
            assertThat(text(redis, cooled)).isEqualTo((now + 5 * SECOND) + ".");

            assertThat(earlierDecode(redis, gate)).isEqualTo(Long.toString(now + 10 * SECOND));
            assertThat(earlierDecode(redis, gateForGood)).isEqualTo("never");
            assertThat(earlierDecode(redis, member)).isEqualTo(Long.toString(now + 20 * SECOND));
            assertThat(earlierDecode(redis, memberForGood)).isEqualTo("never");
            assertThat(earlierDecode(redis, cooled)).isEqualTo(Long.toString(now + 5 * SECOND));
        });
    }

    @Test
    void deadlinesWithoutAMark_thatAnEarlierVersionWrote_readAndMergeAsThen() {
        StateKey gate = new StateKey("gate", "sender-1");
        StateKey gateForGood = new StateKey("gate", "sender-2");
        StateKey held = new StateKey("held", "user-1");
        withStorage((storage, redis) -> {
            // An earlier version wrote every deadline as the bare number: any of them may be a gate's, and merges.
            setText(redis, gate, Long.toString(now + 10 * SECOND));
            setText(redis, gateForGood, "max");
            assertThat(storage.raiseGate(gate, now + SECOND, now)).isEqualTo(now + 10 * SECOND);
            assertThat(storage.raiseGate(gateForGood, now + SECOND, now)).isEqualTo(Long.MAX_VALUE);
            assertThat(text(redis, gate)).isEqualTo("+" + (now + 10 * SECOND));
            assertThat(text(redis, gateForGood)).isEqualTo("+inf");

            setText(redis, held, Long.toString(now + 10 * SECOND));
            assertThat(storage.acquire(held, Gate.INSTANCE, 1, now)).isEqualTo(Outcome.rejected(10 * SECOND));
            assertThat(storage.acquire(held, new Cooldown(Duration.ofSeconds(1)), 1, now))
                    .isEqualTo(Outcome.rejected(10 * SECOND));
            assertThat(storage.acquire(held, Membership.MUST_BE_ABSENT, 1, now))
                    .isEqualTo(Outcome.rejected(10 * SECOND));
            assertThat(storage.isMember(held, now)).isTrue();
        });
    }

    @Test
    void oneNumberWithoutAMark_pastAsADeadline_staysForTheLogThatMayHoldIt_whileAMarkedOneIsDropped() {
        StateKey logged = new StateKey("log", "user-1");
        StateKey gate = new StateKey("gate", "sender-1");
        SlidingWindowLog log = new SlidingWindowLog(1, Duration.ofSeconds(10));
        withStorage((storage, redis) -> {
            assertThat(storage.acquire(logged, log, 1, now)).isEqualTo(Outcome.admitted(0));
            storage.raiseGate(gate, now + SECOND, now);

            long later = now + 2 * SECOND;
            assertThat(storage.acquire(logged, Gate.INSTANCE, 0, later)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
            assertThat(storage.acquire(gate, Gate.INSTANCE, 0, later)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
            assertThat(redis.exists(keys.state(logged)))
                    .as("the log's timestamp")
                    .isEqualTo(1);
            assertThat(redis.exists(keys.state(gate))).as("the gate's deadline").isZero();
        });
    }

    private String text(RedisCommands<byte[], byte[]> redis, StateKey key) {
        return new String(redis.get(keys.state(key)), StandardCharsets.US_ASCII);
    }

    private void setText(RedisCommands<byte[], byte[]> redis, StateKey key, String text) {
        redis.set(keys.state(key), text.getBytes(StandardCharsets.US_ASCII), SetArgs.Builder.px(60_000));
    }

    private String earlierDecode(RedisCommands<byte[], byte[]> redis, StateKey key) {
        byte[] answer = redis.eval(EARLIER_DECODE, ScriptOutputType.VALUE, new byte[0][], redis.get(keys.state(key)));
        return new String(answer, StandardCharsets.US_ASCII);
    }

    private void withStorage(StandaloneRedis.Use use) {
        StandaloneRedis.with(prefix, Duration.ofMinutes(5), use);
    }
}
