package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class SlidingWindowLogTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();
    private final SlidingWindowLog threePerTenSeconds = new SlidingWindowLog(3, Duration.ofSeconds(10));

    private long now() {
        return clock.epochMicros();
    }

    private long[] takeAt(long[] state, long offsetMicros, long permits) {
        long at = t0 + offsetMicros;
        assertThat(Outcome.isAdmitted(threePerTenSeconds.evaluate(state, at, permits)))
                .isTrue();
        return threePerTenSeconds.commit(state, at, permits);
    }

    /** Admitted at 0 s, 2 s and 5 s. */
    private long[] full() {
        return takeAt(takeAt(takeAt(null, 0, 1), 2_000_000, 1), 5_000_000, 1);
    }

    @Test
    void commit_eachPermit_addsOneTimestampInAscendingOrder() {
        assertThat(full()).containsExactly(t0, t0 + 2_000_000, t0 + 5_000_000);
        assertThat(takeAt(null, 0, 2)).containsExactly(t0, t0);
    }

    @Test
    void evaluate_withinLimit_admitsWithWhatRemains() {
        long[] state = takeAt(null, 0, 1);
        assertThat(threePerTenSeconds.evaluate(state, t0, 1)).isEqualTo(1);
        assertThat(threePerTenSeconds.evaluate(state, t0, 2)).isEqualTo(0);
        assertThat(threePerTenSeconds.evaluate(state, t0, 0)).isEqualTo(2);
    }

    @Test
    void evaluate_fullWindow_rejectsUntilTheOldestStampLeaves() {
        clock.advance(Duration.ofSeconds(6));
        assertThat(threePerTenSeconds.evaluate(full(), now(), 1)).isEqualTo(Outcome.rejected(4_000_000));
    }

    @Test
    void evaluate_twoPermitsOverFullWindow_waitsForTheSecondOldestStamp() {
        long[] state = full();
        clock.advance(Duration.ofSeconds(6));
        // Two stamps must leave: the one at 2 s leaves at 12 s, six seconds from now.
        assertThat(threePerTenSeconds.evaluate(state, now(), 2)).isEqualTo(Outcome.rejected(6_000_000));
        clock.set(Instant.parse("2026-01-01T00:00:11.999999Z"));
        assertThat(threePerTenSeconds.evaluate(state, now(), 2)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(threePerTenSeconds.evaluate(state, now(), 2)).isEqualTo(0);
        assertThat(threePerTenSeconds.commit(state, now(), 2)).containsExactly(t0 + 5_000_000, now(), now());
    }

    @Test
    void evaluate_stampsOfEqualTime_leaveTogether() {
        long[] state = takeAt(takeAt(null, 0, 2), 1_000_000, 1);
        assertThat(threePerTenSeconds.evaluate(state, t0 + 3_000_000, 1)).isEqualTo(Outcome.rejected(7_000_000));
        assertThat(threePerTenSeconds.evaluate(state, t0 + 3_000_000, 2)).isEqualTo(Outcome.rejected(7_000_000));
        assertThat(threePerTenSeconds.evaluate(state, t0 + 3_000_000, 3)).isEqualTo(Outcome.rejected(8_000_000));
    }

    @Test
    void evaluate_stampAtExactlyWindowAgo_noLongerCounts() {
        long[] state = full();
        assertThat(threePerTenSeconds.evaluate(state, t0 + 9_999_999, 1)).isEqualTo(Outcome.rejected(1));
        assertThat(threePerTenSeconds.evaluate(state, t0 + 10_000_000, 1)).isEqualTo(0);
    }

    @Test
    void evaluate_morePermitsThanLimit_isNever() {
        assertThat(threePerTenSeconds.evaluate(null, now(), 4)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void commit_dropsStampsThatLeftTheWindow() {
        long[] state = takeAt(full(), 10_000_000, 1);
        assertThat(state).containsExactly(t0 + 2_000_000, t0 + 5_000_000, t0 + 10_000_000);
    }

    @Test
    void commit_asManyLeavingAsComing_shiftsTheSameArray() {
        long[] state = full();
        long[] next = takeAt(state, 12_500_000, 2);
        assertThat(next).isSameAs(state).containsExactly(t0 + 5_000_000, t0 + 12_500_000, t0 + 12_500_000);
        // One more leaves than comes: a new, shorter array, the old one untouched.
        long[] shorter = takeAt(next, 22_500_000, 1);
        assertThat(shorter).isNotSameAs(next).containsExactly(t0 + 22_500_000);
        assertThat(next).containsExactly(t0 + 5_000_000, t0 + 12_500_000, t0 + 12_500_000);
    }

    @Test
    void commit_clockGoneBackwards_stampsAtTheNewestTimeToStayAscending() {
        long[] state = takeAt(null, 5_000_000, 1);
        state = takeAt(state, 1_000_000, 1);
        assertThat(state).containsExactly(t0 + 5_000_000, t0 + 5_000_000);
        assertThat(threePerTenSeconds.evaluate(state, t0 + 1_000_000, 2)).isEqualTo(Outcome.rejected(14_000_000));
    }

    @Test
    void ttl_isUntilTheNewestStampLeaves() {
        long[] state = full();
        assertThat(threePerTenSeconds.ttlMicros(state, t0 + 6_000_000)).isEqualTo(9_000_000);
        assertThat(threePerTenSeconds.ttlMicros(state, t0 + 15_000_000)).isZero();
        assertThat(threePerTenSeconds.evaluate(state, t0 + 15_000_000, 3))
                .isEqualTo(threePerTenSeconds.evaluate(null, t0 + 15_000_000, 3));
        assertThat(threePerTenSeconds.ttlMicros(null, now())).isZero();
        assertThat(threePerTenSeconds.ttlMicros(new long[0], now())).isZero();
        assertThat(threePerTenSeconds.maxTtlMicros()).isEqualTo(10_000_000);
    }

    @Test
    void constructor_badValues_nameTheFieldAndTheValue() {
        assertThatThrownBy(() -> new SlidingWindowLog(0, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit must be positive but was 0");
        assertThatThrownBy(() -> new SlidingWindowLog(10_001, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit must be at most 10000 for an exact sliding window log but was 10001;"
                        + " use SlidingWindowCounter for larger limits");
        assertThatThrownBy(() -> new SlidingWindowLog(1, Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be positive but was PT0S");
        assertThatThrownBy(() -> new SlidingWindowLog(1, Duration.ofSeconds(10).plusNanos(999)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be a whole number of microseconds but was PT10.000000999S");
        assertThat(new SlidingWindowLog(SlidingWindowLog.MAX_LIMIT, Duration.ofSeconds(1)).limit())
                .isEqualTo(10_000);
    }

    @Test
    void equals_sameLimitAndWindow_isEqual() {
        assertThat(threePerTenSeconds)
                .isEqualTo(new SlidingWindowLog(3, Duration.ofMillis(10_000)))
                .hasSameHashCodeAs(new SlidingWindowLog(3, Duration.ofMillis(10_000)))
                .isNotEqualTo(new SlidingWindowLog(3, Duration.ofSeconds(11)))
                .isNotEqualTo(new FixedWindow(3, Duration.ofSeconds(10)))
                .hasToString("SlidingWindowLog[limit=3, window=PT10S]");
        assertThat(threePerTenSeconds.kind()).isEqualTo("sliding_log");
    }
}
