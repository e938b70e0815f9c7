package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The arguments the Lua functions take: each step's text, and numbers in decimal, exactly as long as they need. */
class LuaArgsTest {
    private static final StateKey KEY = new StateKey("scope", "subject");

    @Test
    void step_everyKind_isItsCodeThenPermitsAndParameters() {
        TokenBucket bucket = new TokenBucket(5, 3, Duration.ofSeconds(2));
        assertThat(text(bucket, 2))
                .isEqualTo("t 2 " + bucket.ticksPerMicro() + " " + bucket.ticksPerToken() + " " + bucket.capacity());
        assertThat(text(new FixedWindow(4, Duration.ofSeconds(3)), 1)).isEqualTo("f 1 4 3000000 0");
        assertThat(text(new SlidingWindowLog(7, Duration.ofMillis(1_500)), 0)).isEqualTo("l 0 7 1500000 0");
        assertThat(text(new SlidingWindowCounter(6, Duration.ofSeconds(4), 4), 3))
                .isEqualTo("c 3 6 4 1000000");
        assertThat(text(new Cooldown(Duration.ofMillis(1_500)), 1)).isEqualTo("d 1 1500000 0 0");
        assertThat(text(new DuplicateWindow(Duration.ofSeconds(10), 32), 9_007_199_254_740_991L))
                .isEqualTo("w 9007199254740991 32 10000000 0");
        assertThat(text(Gate.INSTANCE, 1)).isEqualTo("g 1 0 0 0");
        assertThat(text(Membership.MUST_BE_ABSENT, 1)).isEqualTo("a 1 0 0 0");
        assertThat(text(Membership.MUST_BE_PRESENT, 10)).isEqualTo("p 10 0 0 0");
    }

    @Test
    void step_hugePermits_areWrittenInFull() {
        assertThat(text(Gate.INSTANCE, 1L << 60)).isEqualTo("g " + (1L << 60) + " 0 0 0");
        assertThat(text(Gate.INSTANCE, Long.MAX_VALUE)).isEqualTo("g 9223372036854775807 0 0 0");
    }

    @Test
    void step_randomSpecs_matchTheDecimalTextAndItsExactLength() {
        Random random = new Random(42);
        for (int i = 0; i < 10_000; i++) {
            long limit = 1 + (random.nextLong() >>> (12 + random.nextInt(50)));
            long micros = 1 + (random.nextLong() >>> (12 + random.nextInt(50)));
            long permits = random.nextLong() >>> (1 + random.nextInt(63));
            FixedWindow window = new FixedWindow(limit, Duration.of(micros, ChronoUnit.MICROS));
            byte[] text = LuaArgs.step(new Step(KEY, window, permits));
            assertThat(new String(text, StandardCharsets.US_ASCII))
                    .as("limit %d, window %d us, permits %d", limit, micros, permits)
                    .isEqualTo("f " + permits + " " + window.limit() + " " + window.windowMicros() + " 0");
        }
    }

    @Test
    void number_anyValue_isItsDecimalText() {
        long[] values = {0, 1, -1, 9, 10, -10, 99, 100, 1L << 53, -(1L << 53), Long.MAX_VALUE, Long.MIN_VALUE};
        for (long value : values) {
            assertThat(new String(LuaArgs.number(value), StandardCharsets.US_ASCII))
                    .isEqualTo(Long.toString(value));
            assertThat(LuaArgs.length(value))
                    .as("%d", value)
                    .isEqualTo(Long.toString(value).length());
        }
        Random random = new Random(7);
        for (int i = 0; i < 10_000; i++) {
            long value = random.nextLong() >> random.nextInt(64);
            assertThat(new String(LuaArgs.number(value), StandardCharsets.US_ASCII))
                    .isEqualTo(Long.toString(value));
        }
    }

    @Test
    void deadline_never_isMax() {
        assertThat(LuaArgs.deadline(Long.MAX_VALUE)).isEqualTo("max".getBytes(StandardCharsets.US_ASCII));
        assertThat(LuaArgs.deadline(1_234)).isEqualTo("1234".getBytes(StandardCharsets.US_ASCII));
    }

    private static String text(LimitSpec spec, long permits) {
        return new String(LuaArgs.step(new Step(KEY, spec, permits)), StandardCharsets.US_ASCII);
    }
}
