package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class FixedWindowTest {
    /** 2026-01-01T00:00:00Z is 1_767_225_600 s after the epoch: a multiple of both 60 s and 7 s. */
    private static final long MINUTE_INDEX = 1_767_225_600L / 60;

    private final ManualTicker clock = ManualTicker.at(Instant.parse("2026-01-01T00:00:50Z"));
    private final FixedWindow threePerMinute = new FixedWindow(3, Duration.ofMinutes(1));

    private long now() {
        return clock.epochMicros();
    }

    private long[] take(FixedWindow window, long[] state, long permits) {
        assertThat(Outcome.isAdmitted(window.evaluate(state, now(), permits))).isTrue();
        return window.commit(state, now(), permits);
    }

    @Test
    void evaluate_withinLimit_admitsWithWhatRemains() {
        long[] state = null;
        for (long remaining = 2; remaining >= 0; remaining--) {
            assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(remaining);
            state = threePerMinute.commit(state, now(), 1);
        }
        assertThat(state).containsExactly(MINUTE_INDEX, 3);
    }

    @Test
    void evaluate_fullWindow_rejectsUntilTheNextAlignedWindow() {
        long[] state = take(threePerMinute, null, 3);
        assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(10_000_000));
        clock.set(Instant.parse("2026-01-01T00:00:59.999999Z"));
        assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(2);
        assertThat(threePerMinute.commit(state, now(), 1)).containsExactly(MINUTE_INDEX + 1, 1);
    }

    @Test
    void evaluate_morePermitsThanLimit_isNever() {
        assertThat(threePerMinute.evaluate(null, now(), 4)).isEqualTo(Outcome.NEVER);
        assertThat(threePerMinute.evaluate(null, now(), 3)).isEqualTo(0);
    }

    @Test
    void evaluate_partlyFullWindow_rejectsARequestThatDoesNotFit() {
        long[] state = take(threePerMinute, null, 2);
        assertThat(threePerMinute.evaluate(state, now(), 2)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(0);
    }

    @Test
    void windows_areAlignedToTheEpochNotToTheFirstRequest() {
        FixedWindow twoPerSevenSeconds = new FixedWindow(2, Duration.ofSeconds(7));
        clock.set(Instant.parse("2026-01-01T00:00:03Z"));
        long[] state = take(twoPerSevenSeconds, null, 2);
        assertThat(state).containsExactly(1_767_225_600L / 7, 2);
        // The window is [00:00:00, 00:00:07): it ends 4 s after the first request, not 7 s.
        assertThat(twoPerSevenSeconds.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(4_000_000));
        clock.set(Instant.parse("2026-01-01T00:00:07Z"));
        assertThat(twoPerSevenSeconds.evaluate(state, now(), 2)).isEqualTo(0);
    }

    @Test
    void evaluate_acrossAWindowEdge_admitsTwiceTheLimitWithinMicroseconds() {
        clock.set(Instant.parse("2026-01-01T00:00:59.999999Z"));
        long[] state = take(threePerMinute, null, 3);
        clock.advanceMicros(1);
        assertThat(threePerMinute.evaluate(state, now(), 3)).isEqualTo(0);
    }

    @Test
    void evaluate_windowLongPassed_countsFromZero() {
        long[] state = take(threePerMinute, null, 3);
        clock.advance(Duration.ofHours(5));
        assertThat(threePerMinute.evaluate(state, now(), 3)).isEqualTo(0);
    }

    @Test
    void evaluate_clockGoneBackwards_staysInTheNewestWindowSeen() {
        clock.set(Instant.parse("2026-01-01T00:01:05Z"));
        long[] state = take(threePerMinute, null, 3);
        clock.set(Instant.parse("2026-01-01T00:00:30Z"));
        assertThat(threePerMinute.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(90_000_000));
    }

    @Test
    void commit_clockGoneBackwards_countsIntoTheNewestWindowSeen() {
        clock.set(Instant.parse("2026-01-01T00:01:05Z"));
        long[] state = take(threePerMinute, null, 1);
        clock.set(Instant.parse("2026-01-01T00:00:30Z"));
        state = take(threePerMinute, state, 1);
        assertThat(state).containsExactly(MINUTE_INDEX + 1, 2);
    }

    @Test
    void ttl_isTheTimeUntilTheWindowEnds() {
        long[] state = take(threePerMinute, null, 1);
        assertThat(threePerMinute.ttlMicros(state, now())).isEqualTo(10_000_000);
        clock.advance(Duration.ofSeconds(10));
        assertThat(threePerMinute.ttlMicros(state, now())).isZero();
        assertThat(threePerMinute.evaluate(state, now(), 3)).isEqualTo(threePerMinute.evaluate(null, now(), 3));
        assertThat(threePerMinute.ttlMicros(null, now())).isZero();
    }

    @Test
    void maxTtl_isTheWindow() {
        assertThat(threePerMinute.maxTtlMicros()).isEqualTo(60_000_000);
        clock.set(Instant.parse("2026-01-01T00:01:00Z"));
        assertThat(threePerMinute.ttlMicros(take(threePerMinute, null, 1), now()))
                .isEqualTo(60_000_000);
    }

    @Test
    void constructor_badValues_nameTheFieldAndTheValue() {
        assertThatThrownBy(() -> new FixedWindow(0, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit must be positive but was 0");
        assertThatThrownBy(() -> new FixedWindow(1, Duration.ofSeconds(-5)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be positive but was PT-5S");
        assertThatThrownBy(() -> new FixedWindow(1, null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must not be null");
        assertThatThrownBy(() -> new FixedWindow(1, Duration.ofMillis(1).plusNanos(500)))
                .as("a part finer than a microsecond, which the window would not count")
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be a whole number of microseconds but was PT0.0010005S");
        assertThatThrownBy(() -> new FixedWindow(1L << 53, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit exceeds 2^53 and cannot be evaluated exactly: 9007199254740992");
        assertThat(new FixedWindow((1L << 53) - 1, Duration.ofSeconds(1)).limit())
                .isEqualTo((1L << 53) - 1);
    }

    @Test
    void evaluate_negativePermits_isRefused() {
        assertThatThrownBy(() -> threePerMinute.evaluate(null, now(), -3))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -3");
    }

    @Test
    void equals_sameLimitAndWindow_isEqual() {
        assertThat(threePerMinute)
                .isEqualTo(new FixedWindow(3, Duration.ofSeconds(60)))
                .hasSameHashCodeAs(new FixedWindow(3, Duration.ofSeconds(60)))
                .isNotEqualTo(new FixedWindow(4, Duration.ofMinutes(1)))
                .hasToString("FixedWindow[limit=3, window=PT1M]");
        assertThat(threePerMinute.kind()).isEqualTo("fixed_window");
    }
}
