package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Assume;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.LongRange;

/** Round trips of the {@link Outcome} encoding over its whole range. */
class OutcomePropertyTest {

    @Property(tries = 500)
    void admitted_anyRemaining_roundTrips(@ForAll @LongRange(min = 0, max = Long.MAX_VALUE) long remaining) {
        long outcome = Outcome.admitted(remaining);
        assertThat(Outcome.isAdmitted(outcome)).isTrue();
        assertThat(Outcome.remaining(outcome)).isEqualTo(remaining);
        assertThat(Outcome.retryAfterMicros(outcome)).isZero();
    }

    @Property(tries = 500)
    void rejected_anyFiniteWait_roundTripsAndIsNotNever(
            @ForAll @LongRange(min = 1, max = Long.MAX_VALUE - 1) long retryAfterMicros) {
        long outcome = Outcome.rejected(retryAfterMicros);
        assertThat(outcome).isNegative().isNotEqualTo(Outcome.NEVER);
        assertThat(Outcome.isAdmitted(outcome)).isFalse();
        assertThat(Outcome.remaining(outcome)).isZero();
        assertThat(Outcome.retryAfterMicros(outcome)).isEqualTo(retryAfterMicros);
    }

    /** Every long but -1 (a zero wait, which {@link Outcome#rejected} never produces) is a valid outcome. */
    @Property(tries = 500)
    void decode_anyValidOutcome_reencodesToItself(@ForAll long outcome) {
        Assume.that(outcome != -1);
        long again = Outcome.isAdmitted(outcome)
                ? Outcome.admitted(Outcome.remaining(outcome))
                : Outcome.rejected(Outcome.retryAfterMicros(outcome));
        assertThat(again).isEqualTo(outcome);
    }
}
