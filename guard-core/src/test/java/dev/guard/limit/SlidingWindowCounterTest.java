package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class SlidingWindowCounterTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();

    /** 2026-01-01T00:00:00Z in 2 s buckets; a multiple of 6, so its slot is the first of the six. */
    private static final long I0 = 883_612_800L;

    /** 10 s in five buckets of 2 s; the state holds six slots. */
    private final SlidingWindowCounter tenPerTenSeconds = new SlidingWindowCounter(10, Duration.ofSeconds(10), 5);

    private final SlidingWindowCounter threePerTenSeconds = new SlidingWindowCounter(3, Duration.ofSeconds(10), 5);

    private static long[] takeAt(SlidingWindowCounter counter, long[] state, long atMicros, long permits) {
        assertThat(Outcome.isAdmitted(counter.evaluate(state, atMicros, permits)))
                .isTrue();
        return counter.commit(state, atMicros, permits);
    }

    @Test
    void commit_firstRequest_writesBucketIndexAndOneSlotPerBucketPlusOne() {
        long[] state = takeAt(tenPerTenSeconds, null, t0 + 1_000_000, 10);
        assertThat(state).containsExactly(I0, 10, 0, 0, 0, 0, 0);
        assertThat(tenPerTenSeconds.bucketMicros()).isEqualTo(2_000_000);
    }

    @Test
    void evaluate_withinLimit_admitsWithWhatRemains() {
        long[] state = takeAt(tenPerTenSeconds, null, t0, 4);
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 9_000_000, 6)).isEqualTo(0);
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 9_000_000, 1)).isEqualTo(5);
    }

    @Test
    void evaluate_fullWindow_rejectsUntilTheBucketLeavesTheCountedSpan() {
        long[] state = takeAt(tenPerTenSeconds, null, t0 + 1_000_000, 10);
        // An exact log would admit at 11 s; the counter still counts bucket I0 until bucket I0 + 6 begins at 12 s.
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 11_000_000, 1)).isEqualTo(Outcome.rejected(1_000_000));
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 11_999_999, 1)).isEqualTo(Outcome.rejected(1));
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 12_000_000, 1)).isEqualTo(9);
    }

    @Test
    void evaluate_permitAtTheStartOfABucket_isRejectedAtMostOneBucketEarly() {
        SlidingWindowCounter onePerTenSeconds = new SlidingWindowCounter(1, Duration.ofSeconds(10), 5);
        long[] early = takeAt(onePerTenSeconds, null, t0, 1);
        assertThat(onePerTenSeconds.evaluate(early, t0 + 10_000_000, 1)).isEqualTo(Outcome.rejected(2_000_000));
        assertThat(onePerTenSeconds.evaluate(early, t0 + 12_000_000, 1)).isEqualTo(0);
        long[] late = takeAt(onePerTenSeconds, null, t0 + 1_999_999, 1);
        assertThat(onePerTenSeconds.evaluate(late, t0 + 11_999_999, 1)).isEqualTo(Outcome.rejected(1));
        assertThat(onePerTenSeconds.evaluate(late, t0 + 12_000_000, 1)).isEqualTo(0);
    }

    @Test
    void evaluate_excessSpreadOverBuckets_waitsUntilEnoughBucketsLeave() {
        long[] state = takeAt(threePerTenSeconds, null, t0 + 500_000, 1);
        state = takeAt(threePerTenSeconds, state, t0 + 2_500_000, 1);
        state = takeAt(threePerTenSeconds, state, t0 + 4_500_000, 1);
        assertThat(state).containsExactly(I0 + 2, 1, 1, 1, 0, 0, 0);
        // Buckets I0 and I0 + 1 must both leave: the span stops covering I0 + 1 when bucket I0 + 7 begins at 14 s.
        assertThat(threePerTenSeconds.evaluate(state, t0 + 9_000_000, 2)).isEqualTo(Outcome.rejected(5_000_000));
        assertThat(threePerTenSeconds.evaluate(state, t0 + 9_000_000, 1)).isEqualTo(Outcome.rejected(3_000_000));
    }

    @Test
    void commit_afterAGap_clearsSlotsOfBucketsThatLeft() {
        long[] state = takeAt(tenPerTenSeconds, null, t0 + 1_000_000, 4);
        state = takeAt(tenPerTenSeconds, state, t0 + 7_000_000, 3);
        assertThat(state).containsExactly(I0 + 3, 4, 0, 0, 3, 0, 0);
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 13_000_000, 8)).isEqualTo(Outcome.rejected(5_000_000));
        state = takeAt(tenPerTenSeconds, state, t0 + 13_000_000, 7);
        // Bucket I0 + 6 reuses the slot of I0, whose 4 permits must not come back.
        assertThat(state).containsExactly(I0 + 6, 7, 0, 0, 3, 0, 0);
    }

    @Test
    void commit_afterAGapLongerThanTheWindow_clearsEverySlot() {
        long[] state = takeAt(tenPerTenSeconds, null, t0 + 3_000_000, 9);
        state = takeAt(tenPerTenSeconds, state, t0 + 3_600_000_000L, 1);
        assertThat(state).containsExactly(I0 + 1_800, 1, 0, 0, 0, 0, 0);
    }

    @Test
    void evaluate_clockGoneBackwards_countsFromTheNewestBucketSeen() {
        long[] state = takeAt(threePerTenSeconds, null, t0 + 7_000_000, 3);
        assertThat(threePerTenSeconds.evaluate(state, t0 + 1_000_000, 1)).isEqualTo(Outcome.rejected(17_000_000));
        state = takeAt(threePerTenSeconds, state, t0 + 19_000_000, 1);
        assertThat(threePerTenSeconds.commit(state, t0 + 1_000_000, 1)).containsExactly(I0 + 9, 0, 0, 0, 2, 0, 0);
    }

    @Test
    void evaluate_morePermitsThanLimit_isNever() {
        assertThat(tenPerTenSeconds.evaluate(null, t0, 11)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void ttl_isUntilTheNewestBucketLeavesTheCountedSpan() {
        long[] state = takeAt(tenPerTenSeconds, null, t0 + 1_000_000, 1);
        assertThat(tenPerTenSeconds.ttlMicros(state, t0 + 1_000_000)).isEqualTo(11_000_000);
        assertThat(tenPerTenSeconds.ttlMicros(state, t0 + 12_000_000)).isZero();
        assertThat(tenPerTenSeconds.evaluate(state, t0 + 12_000_000, 10))
                .isEqualTo(tenPerTenSeconds.evaluate(null, t0 + 12_000_000, 10));
        assertThat(tenPerTenSeconds.ttlMicros(null, t0)).isZero();
        assertThat(tenPerTenSeconds.maxTtlMicros()).isEqualTo(12_000_000);
        assertThat(tenPerTenSeconds.ttlMicros(takeAt(tenPerTenSeconds, null, t0, 1), t0))
                .isEqualTo(12_000_000);
    }

    @Test
    void constructor_badValues_nameTheFieldAndTheValue() {
        assertThatThrownBy(() -> new SlidingWindowCounter(0, Duration.ofSeconds(1), 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit must be positive but was 0");
        assertThatThrownBy(() -> new SlidingWindowCounter(1L << 53, Duration.ofSeconds(1), 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("limit exceeds 2^53 and cannot be evaluated exactly: 9007199254740992");
        assertThatThrownBy(() -> new SlidingWindowCounter(1, Duration.ofSeconds(1), 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("buckets must be between 1 and 1000 but was 0");
        assertThatThrownBy(() -> new SlidingWindowCounter(1, Duration.ofSeconds(1), 1_001))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("buckets must be between 1 and 1000 but was 1001");
        assertThatThrownBy(() -> new SlidingWindowCounter(1, Duration.ofSeconds(1), 7))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window PT1S must be a whole number of microseconds per bucket but does not divide into"
                        + " 7 buckets");
        assertThatThrownBy(() -> new SlidingWindowCounter(1, Duration.ofSeconds(-1), 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be positive but was PT-1S");
        assertThat(new SlidingWindowCounter(1, Duration.ofSeconds(1), SlidingWindowCounter.MAX_BUCKETS).buckets())
                .isEqualTo(1_000);
    }

    @Test
    void constructor_windowWithAPartFinerThanAMicrosecond_isRefused_ratherThanCutToAShorterWindow() {
        // 10.5 us was read as 10 us, which divides into 10 buckets of 1 us: a 10 us window reported as 10.5 us.
        assertThatThrownBy(() -> new SlidingWindowCounter(10, Duration.ofNanos(10_500), 10))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be a whole number of microseconds but was PT0.0000105S");
        assertThatThrownBy(
                        () -> new SlidingWindowCounter(10, Duration.ofSeconds(1).plusNanos(1), 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be a whole number of microseconds but was PT1.000000001S");
        SlidingWindowCounter whole = new SlidingWindowCounter(10, Duration.ofNanos(10_000), 10);
        assertThat(whole.bucketMicros()).isEqualTo(1);
        assertThat(whole.window()).isEqualTo(Duration.ofNanos(10_000));
    }

    @Test
    void equals_sameLimitWindowAndBuckets_isEqual() {
        assertThat(tenPerTenSeconds)
                .isEqualTo(new SlidingWindowCounter(10, Duration.ofMillis(10_000), 5))
                .hasSameHashCodeAs(new SlidingWindowCounter(10, Duration.ofMillis(10_000), 5))
                .isNotEqualTo(new SlidingWindowCounter(10, Duration.ofSeconds(10), 10))
                .hasToString("SlidingWindowCounter[limit=10, window=PT10S, buckets=5]");
        assertThat(tenPerTenSeconds.kind()).isEqualTo("sliding_counter");
    }
}
