package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class TokenBucketTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();

    /** 7 tokens per 3 s: gcd(7, 3_000_000) = 1, so a microsecond adds 7 ticks and a token costs 3_000_000. */
    private final TokenBucket sevenPerThree = new TokenBucket(10, 7, Duration.ofSeconds(3));

    /** 30 per second: gcd(30, 1_000_000) = 10, so a microsecond adds 3 ticks and a token costs 100_000. */
    private final TokenBucket thirtyPerSecond = TokenBucket.of(30, Duration.ofSeconds(1));

    private long now() {
        return clock.epochMicros();
    }

    private long[] take(TokenBucket bucket, long[] state, long permits) {
        assertThat(Outcome.isAdmitted(bucket.evaluate(state, now(), permits))).isTrue();
        return bucket.commit(state, now(), permits);
    }

    @Test
    void constructor_awkwardRates_reduceToExactTicks() {
        assertThat(sevenPerThree.ticksPerMicro()).isEqualTo(7);
        assertThat(sevenPerThree.ticksPerToken()).isEqualTo(3_000_000);
        assertThat(sevenPerThree.capacityTicks()).isEqualTo(30_000_000);
        assertThat(thirtyPerSecond.ticksPerMicro()).isEqualTo(3);
        assertThat(thirtyPerSecond.ticksPerToken()).isEqualTo(100_000);
        assertThat(thirtyPerSecond.capacityTicks()).isEqualTo(3_000_000);
    }

    @Test
    void evaluate_newBucket_isFullSoABurstUpToCapacityPasses() {
        long[] state = null;
        for (long remaining = 29; remaining >= 0; remaining--) {
            assertThat(thirtyPerSecond.evaluate(state, now(), 1)).isEqualTo(remaining);
            state = thirtyPerSecond.commit(state, now(), 1);
        }
        assertThat(thirtyPerSecond.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(33_334));
    }

    @Test
    void evaluate_wholeCapacityAtOnce_isAdmittedWithNothingLeft() {
        assertThat(thirtyPerSecond.evaluate(null, now(), 30)).isEqualTo(0);
    }

    @Test
    void evaluate_morePermitsThanCapacity_isNever() {
        assertThat(thirtyPerSecond.evaluate(null, now(), 31)).isEqualTo(Outcome.NEVER);
        assertThat(sevenPerThree.evaluate(null, now(), Long.MAX_VALUE)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void evaluate_emptyBucket_rejectsWithRetryAfter() {
        long[] state = take(sevenPerThree, null, 10);
        // One token costs 3_000_000 ticks at 7 ticks a microsecond: ceil(3_000_000 / 7) = 428_572.
        assertThat(sevenPerThree.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(428_572));
        clock.advanceMicros(428_571);
        assertThat(sevenPerThree.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        // 428_572 * 7 = 3_000_004 ticks: one token and 4 ticks, so nothing whole remains.
        assertThat(sevenPerThree.evaluate(state, now(), 1)).isEqualTo(0);
    }

    @Test
    void refill_sevenPerThreeSeconds_addsExactlySevenTokensEveryThreeSecondsWithoutDrift() {
        long[] state = take(sevenPerThree, null, 10);
        for (int round = 0; round < 100; round++) {
            clock.advance(Duration.ofSeconds(3));
            assertThat(sevenPerThree.evaluate(state, now(), 8)).isEqualTo(Outcome.rejected(428_572));
            state = take(sevenPerThree, state, 7);
            assertThat(state).containsExactly(0, now());
        }
    }

    @Test
    void refill_thirtyPerSecond_admitsTheKthTokenAtCeilingOfKThirtiethsOfASecond() {
        long[] state = take(thirtyPerSecond, null, 30);
        long[] expectedAt = {33_334, 66_667, 100_000, 133_334, 166_667, 200_000};
        for (long at : expectedAt) {
            clock.set(Instant.parse("2026-01-01T00:00:00Z").plusNanos((at - 1) * 1_000));
            assertThat(Outcome.isAdmitted(thirtyPerSecond.evaluate(state, now(), 1)))
                    .isFalse();
            clock.advanceMicros(1);
            state = take(thirtyPerSecond, state, 1);
        }
    }

    @Test
    void refill_retryingAtEachRetryAfter_admitsExactlyThirtyInTheNextSecond() {
        long[] state = take(thirtyPerSecond, null, 30);
        int admitted = 0;
        while (true) {
            long outcome = thirtyPerSecond.evaluate(state, now(), 1);
            if (Outcome.isAdmitted(outcome)) {
                state = thirtyPerSecond.commit(state, now(), 1);
                admitted++;
                continue;
            }
            if (now() + Outcome.retryAfterMicros(outcome) > t0 + 1_000_000) {
                break;
            }
            clock.advanceMicros(Outcome.retryAfterMicros(outcome));
        }
        assertThat(admitted).isEqualTo(30);
        assertThat(now()).isEqualTo(t0 + 1_000_000);
        assertThat(state).containsExactly(0, t0 + 1_000_000);
    }

    @Test
    void refill_isGreedy_halfAPeriodRefillsHalfTheTokens() {
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        long[] state = take(bucket, null, 10);
        clock.advance(Duration.ofMillis(500));
        assertThat(bucket.evaluate(state, now(), 5)).isEqualTo(0);
        assertThat(bucket.evaluate(state, now(), 6)).isEqualTo(Outcome.rejected(100_000));
    }

    @Test
    void refill_longIdleGap_capsAtCapacity() {
        long[] state = take(thirtyPerSecond, null, 30);
        clock.advance(Duration.ofDays(365 * 100));
        assertThat(thirtyPerSecond.evaluate(state, now(), 0)).isEqualTo(30);
        assertThat(thirtyPerSecond.level(state, now())).isEqualTo(3_000_000);
    }

    @Test
    void evaluate_zeroPermits_looksWithoutTaking() {
        long[] state = take(thirtyPerSecond, null, 12);
        assertThat(thirtyPerSecond.evaluate(state, now(), 0)).isEqualTo(18);
        assertThat(thirtyPerSecond.commit(state.clone(), now(), 0)).containsExactly(state);
    }

    @Test
    void evaluate_negativePermits_isRefused() {
        assertThatThrownBy(() -> thirtyPerSecond.evaluate(null, now(), -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -1");
    }

    @Test
    void commit_firstRequest_writesLevelInTicksAndTime() {
        assertThat(thirtyPerSecond.commit(null, now(), 1)).containsExactly(2_900_000, t0);
    }

    @Test
    void commit_partialTokens_keepsTheFractionInTicks() {
        long[] state = take(thirtyPerSecond, null, 30);
        clock.advanceMicros(50_000);
        // 150_000 ticks: one token and half of the next.
        state = take(thirtyPerSecond, state, 1);
        assertThat(state).containsExactly(50_000, t0 + 50_000);
        assertThat(thirtyPerSecond.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(16_667));
    }

    @Test
    void evaluate_clockGoneBackwards_grantsNoRefillForTheGap() {
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        clock.advance(Duration.ofSeconds(10));
        long[] state = take(bucket, null, 10);
        clock.set(Instant.parse("2026-01-01T00:00:00Z"));
        assertThat(bucket.level(state, now())).isZero();
        // Refill resumes only once the clock is back at the newest write: 10 s away, plus 100 ms for one token.
        assertThat(bucket.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(10_100_000));
    }

    @Test
    void commit_clockGoneBackwards_neverMovesTheRefillTimeBack() {
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        clock.advance(Duration.ofSeconds(10));
        long[] state = take(bucket, null, 5);
        clock.set(Instant.parse("2026-01-01T00:00:05Z"));
        assertThat(bucket.evaluate(state, now(), 5)).isEqualTo(0);
        assertThat(bucket.evaluate(state, now(), 6)).isEqualTo(Outcome.rejected(5_100_000));
        state = take(bucket, state, 5);
        assertThat(state).containsExactly(0, t0 + 10_000_000);
        clock.set(Instant.parse("2026-01-01T00:00:10.100Z"));
        assertThat(bucket.evaluate(state, now(), 1)).isEqualTo(0);
        assertThat(bucket.evaluate(state, now(), 2)).isEqualTo(Outcome.rejected(100_000));
    }

    @Test
    void ttl_isTheTimeUntilTheBucketIsFull() {
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        long[] state = take(bucket, null, 3);
        assertThat(bucket.ttlMicros(state, now())).isEqualTo(300_000);
        clock.advanceMicros(299_999);
        assertThat(bucket.ttlMicros(state, now())).isEqualTo(1);
        assertThat(bucket.evaluate(state, now(), 10)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(bucket.ttlMicros(state, now())).isZero();
        assertThat(bucket.evaluate(state, now(), 10)).isEqualTo(bucket.evaluate(null, now(), 10));
    }

    @Test
    void ttl_awkwardRate_roundsUpToAWholeMicrosecond() {
        long[] state = take(sevenPerThree, null, 1);
        // 3_000_000 ticks missing at 7 a microsecond.
        assertThat(sevenPerThree.ttlMicros(state, now())).isEqualTo(428_572);
        assertThat(sevenPerThree.maxTtlMicros()).isEqualTo(4_285_715);
    }

    @Test
    void ttl_absentOrFull_isZero() {
        assertThat(thirtyPerSecond.ttlMicros(null, now())).isZero();
        assertThat(thirtyPerSecond.ttlMicros(thirtyPerSecond.commit(null, now(), 0), now()))
                .isZero();
    }

    @Test
    void ttl_clockGoneBackwards_keepsTheStateUntilTheNewestWriteAndThenUntilFull() {
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        clock.advance(Duration.ofSeconds(10));
        long[] state = take(bucket, null, 1);
        clock.set(Instant.parse("2026-01-01T00:00:04Z"));
        assertThat(bucket.ttlMicros(state, now())).isEqualTo(6_100_000);
    }

    @Test
    void maxTtl_isTheTimeFromEmptyToFull() {
        assertThat(thirtyPerSecond.maxTtlMicros()).isEqualTo(1_000_000);
        assertThat(thirtyPerSecond.ttlMicros(take(thirtyPerSecond, null, 30), now()))
                .isEqualTo(1_000_000);
    }

    @Test
    void constructor_nonPositiveValues_nameTheFieldAndTheValue() {
        assertThatThrownBy(() -> new TokenBucket(0, 1, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("capacity must be positive but was 0");
        assertThatThrownBy(() -> new TokenBucket(1, -2, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillTokens must be positive but was -2");
        assertThatThrownBy(() -> new TokenBucket(1, 1, Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must be positive but was PT0S");
        assertThatThrownBy(() -> new TokenBucket(1, 1, Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must be positive but was PT-1S");
        assertThatThrownBy(() -> new TokenBucket(1, 1, null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must not be null");
    }

    @Test
    void constructor_periodBelowOneMicrosecond_isRefused() {
        assertThatThrownBy(() -> new TokenBucket(1, 1, Duration.ofNanos(999)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must be at least 1 microsecond but was PT0.000000999S");
    }

    @Test
    void constructor_periodWithAPartFinerThanAMicrosecond_isRefused_ratherThanRefillingFaster() {
        // 1.5 us was read as 1 us: the bucket refilled half as fast again as it was told.
        assertThatThrownBy(() -> new TokenBucket(1, 1, Duration.ofNanos(1_500)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must be a whole number of microseconds but was PT0.0000015S");
        assertThatThrownBy(() -> TokenBucket.of(10, Duration.ofMinutes(1).plusNanos(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod must be a whole number of microseconds but was PT1M0.000000001S");
    }

    @Test
    void constructor_periodOfAtLeastTwoToThe53Microseconds_isTooLong() {
        Duration tooLong = Duration.ofNanos(1_000L).multipliedBy(1L << 53);
        assertThatThrownBy(() -> new TokenBucket(1, 1, tooLong))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod is too long: " + tooLong);
        Duration overflowing = Duration.ofSeconds(Long.MAX_VALUE);
        assertThatThrownBy(() -> new TokenBucket(1, 1, overflowing))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod is too long: " + overflowing);
    }

    @Test
    void constructor_periodWhoseMicrosecondsOverflowOnlyWithTheFraction_isTooLong() {
        // 9_223_372_036_854 s is 9_223_372_036_854_000_000 us, within a long; its 999_999 us more are not.
        Duration overflowing = Duration.ofSeconds(9_223_372_036_854L, 999_999_000L);
        assertThatThrownBy(() -> new TokenBucket(1, 1, overflowing))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillPeriod is too long: " + overflowing);
        assertThatThrownBy(() -> new FixedWindow(1, overflowing))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window is too long: " + overflowing);
    }

    @Test
    void constructor_capacityTicksJustBelowTwoToThe53_isAccepted() {
        TokenBucket bucket = new TokenBucket((1L << 53) - 1, 1, Duration.ofNanos(1_000));
        assertThat(bucket.capacityTicks()).isEqualTo((1L << 53) - 1);
    }

    @Test
    void constructor_capacityTicksOfTwoToThe53_isRefused() {
        assertThatThrownBy(() -> new TokenBucket(1L << 53, 1, Duration.ofNanos(1_000)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("capacity 9007199254740992 with a refill of 1 per PT0.000001S needs more than 2^53 ticks;"
                        + " lower the capacity or use a shorter period");
        // 1_000 ticks per token: capacity 2^53 / 1_000 + 1 crosses the limit only after multiplying.
        long capacity = (1L << 53) / 1_000 + 1;
        assertThatThrownBy(() -> new TokenBucket(capacity, 1, Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("capacity " + capacity + " with a refill of 1 per PT0.001S");
    }

    @Test
    void constructor_capacityTicksThatOverflowALong_isRefused() {
        // 2^40 tokens of 8_388_609 ticks: 2^63 + 2^40 wraps to a negative long whose high word is zero.
        Duration period = Duration.ofNanos(8_388_609_000L);
        assertThatThrownBy(() -> new TokenBucket(1L << 40, 1, period))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("capacity 1099511627776 with a refill of 1 per PT8.388609S needs more than 2^53 ticks;"
                        + " lower the capacity or use a shorter period");
        assertThatThrownBy(() -> new TokenBucket(Long.MAX_VALUE, 1, Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageEndingWith("needs more than 2^53 ticks; lower the capacity or use a shorter period");
    }

    @Test
    void constructor_refillOfTwoToThe53TokensPerMicrosecond_isRefused() {
        // Redis evaluates in doubles: the ttl of such a bucket rounded to 0 there, deleting the state at once.
        assertThatThrownBy(() -> new TokenBucket(1, 1L << 53, Duration.ofNanos(1_000)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("refillTokens 9007199254740992 per PT0.000001S is 2^53 tokens per microsecond or more,"
                        + " which no storage evaluates exactly; lower the refill");
        assertThatThrownBy(() -> new TokenBucket(1, Long.MAX_VALUE, Duration.ofNanos(1_000)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("refillTokens 9223372036854775807 per PT0.000001S");
        // Reduced by the period first: 2^53 tokens per second is 2^53 / 10^6 per microsecond, which is fine.
        assertThat(new TokenBucket(1, 1L << 53, Duration.ofSeconds(1)).ticksPerMicro())
                .isEqualTo((1L << 53) / 64);
        assertThat(new TokenBucket(1, (1L << 53) - 1, Duration.ofNanos(1_000)).ticksPerMicro())
                .isEqualTo((1L << 53) - 1);
    }

    @Test
    void equals_sameReducedRate_isEqual() {
        TokenBucket a = new TokenBucket(4, 2, Duration.ofSeconds(1));
        TokenBucket b = new TokenBucket(4, 1, Duration.ofMillis(500));
        assertThat(a).isEqualTo(b).hasSameHashCodeAs(b);
        assertThat(a).isNotEqualTo(new TokenBucket(5, 2, Duration.ofSeconds(1)));
        assertThat(a).isNotEqualTo(new TokenBucket(4, 3, Duration.ofSeconds(1)));
    }

    @Test
    void kind_isTokenBucket() {
        assertThat(thirtyPerSecond.kind()).isEqualTo("token_bucket");
        assertThat(thirtyPerSecond).hasToString("TokenBucket[capacity=30, refill=30/PT1S]");
    }
}
