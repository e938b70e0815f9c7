package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Periods so long that now plus the period passes 2<sup>53</sup>, where Lua's doubles round: the Java checks accept
 * them and the reference computes exactly, so Redis refuses them before sending, naming the values, rather than
 * storing a deadline that is some micros off; so are a duplicate window's items of 2<sup>53</sup> or more, which Lua
 * would compare rounded. On the standalone Redis.
 */
class RedisExactnessTest {
    private static final long NOW = 1_700_000_000_000_001L;
    private static final StateKey KEY = new StateKey("cooldown", "user-1");
    private static final Cooldown CENTURIES = new Cooldown(Duration.ofDays(100_000));

    @Test
    void cooldown_nowPlusPeriodPast2To53_isRefusedNamingTheValues() {
        try (RedisStorage storage = Target.STANDALONE.builder().build()) {
            String message = "step 0 (Cooldown[period=PT2400000H]) reaches nowMicros 1700000000000001 + "
                    + "8640000000000000 = 10340000000000001 micros, past 2^53 where Redis' Lua numbers are not exact;"
                    + " use a shorter period";
            assertThatThrownBy(() -> storage.acquire(KEY, CENTURIES, 1, NOW))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage(message);
            assertThatThrownBy(() -> storage.evaluate(Batch.of(new Step(KEY, CENTURIES, 1)), NOW))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage(message);
            Batch second = Batch.of(
                    new Step(new StateKey("window", "user-1"), new FixedWindow(1, Duration.ofSeconds(1)), 1),
                    new Step(KEY, CENTURIES, 1));
            assertThatThrownBy(() -> storage.evaluateAsync(second, NOW))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("step 1 (Cooldown[period=PT2400000H]) reaches nowMicros");
            // Nothing was sent, so nothing was written.
            assertThat(storage.acquire(KEY, new Cooldown(Duration.ofSeconds(1)), 0, NOW))
                    .isEqualTo(Outcome.admitted(1));
        }
    }

    @Test
    void duplicateWindow_itemOf2To53_isRefusedBeforeSendingOnEveryPath() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey key = new StateKey("duplicates", "user-1");
        long item = LimitSpec.EXACT_LIMIT;
        try (RedisStorage storage = Target.STANDALONE.builder().build()) {
            Batch batch = Batch.of(
                    new Step(new StateKey("window", "user-1"), new FixedWindow(1, Duration.ofSeconds(1)), 1),
                    new Step(key, window, item));
            assertThatThrownBy(() -> storage.evaluateAsync(batch, NOW))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining(Long.toString(item));
            assertThatThrownBy(() -> storage.acquire(key, window, item, NOW))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining(Long.toString(item));
            // Nothing was sent: the fixed window's permit is still there, and 2^53 - 1 is an item like any other.
            assertThat(storage.acquire(
                            new StateKey("window", "user-1"), new FixedWindow(1, Duration.ofSeconds(1)), 1, NOW))
                    .isEqualTo(Outcome.admitted(0));
            assertThat(storage.acquire(key, window, item - 1, NOW)).isEqualTo(Outcome.admitted(0));
        }
    }

    static Stream<LimitSpec> longSpecs() {
        Duration years = Duration.ofDays(100_000);
        return Stream.of(
                CENTURIES,
                new FixedWindow(1, years),
                new SlidingWindowLog(1, years),
                new DuplicateWindow(years, 4),
                new SlidingWindowCounter(1, Duration.ofDays(50_000), 4));
    }

    @ParameterizedTest
    @MethodSource("longSpecs")
    void longPeriod_justBelow2To53_agreesWithTheReference(LimitSpec spec) {
        // The latest now at which the Lua arithmetic stays exact, an odd number that a rounded double would lose.
        long now = LimitSpec.EXACT_LIMIT - 1 - LuaArgs.reach(spec);
        try (RedisStorage storage = Target.STANDALONE.builder().build();
                ReferenceStorage reference = ReferenceStorage.create()) {
            for (long at : new long[] {now - 2, now - 1, now}) {
                assertThat(storage.acquire(KEY, spec, 1, at))
                        .as("%s at %d", spec, at)
                        .isEqualTo(reference.acquire(KEY, spec, 1, at));
            }
            assertThatThrownBy(() -> storage.acquire(KEY, spec, 1, now + 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("past 2^53");
        }
    }
}
