package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class OutcomeTest {

    @Test
    void admitted_remaining_isTheValueItself() {
        assertThat(Outcome.admitted(0)).isZero();
        assertThat(Outcome.admitted(7)).isEqualTo(7);
        assertThat(Outcome.admitted(Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void admitted_negativeRemaining_isClampedAtZero() {
        assertThat(Outcome.admitted(-3)).isZero();
        assertThat(Outcome.isAdmitted(Outcome.admitted(Long.MIN_VALUE))).isTrue();
    }

    @Test
    void rejected_retryAfter_isEncodedAsMinusRetryMinusOne() {
        assertThat(Outcome.rejected(1)).isEqualTo(-2);
        assertThat(Outcome.rejected(1_000_000)).isEqualTo(-1_000_001);
        assertThat(Outcome.rejected(Long.MAX_VALUE - 1)).isEqualTo(Long.MIN_VALUE + 1);
    }

    @Test
    void rejected_zeroOrNegativeWait_isRaisedToOneMicrosecond() {
        assertThat(Outcome.retryAfterMicros(Outcome.rejected(0))).isEqualTo(1);
        assertThat(Outcome.retryAfterMicros(Outcome.rejected(-5))).isEqualTo(1);
        assertThat(Outcome.retryAfterMicros(Outcome.rejected(Long.MIN_VALUE))).isEqualTo(1);
    }

    @Test
    void minusOne_isNoOutcomeRejectedMakes_andReadsAsAOneMicrosecondWait() {
        assertThat(Outcome.isAdmitted(-1)).isFalse();
        assertThat(Outcome.retryAfterMicros(-1)).isEqualTo(1).isEqualTo(Outcome.retryAfterMicros(-2));
        assertThat(Outcome.rejected(Outcome.retryAfterMicros(-1))).isEqualTo(-2);
    }

    @Test
    void rejected_maxValueWait_isNever() {
        assertThat(Outcome.rejected(Long.MAX_VALUE)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void never_readsAsRejectedForever() {
        assertThat(Outcome.isAdmitted(Outcome.NEVER)).isFalse();
        assertThat(Outcome.remaining(Outcome.NEVER)).isZero();
        assertThat(Outcome.retryAfterMicros(Outcome.NEVER)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void accessors_admittedOutcome_haveNoWait() {
        long outcome = Outcome.admitted(5);
        assertThat(Outcome.isAdmitted(outcome)).isTrue();
        assertThat(Outcome.remaining(outcome)).isEqualTo(5);
        assertThat(Outcome.retryAfterMicros(outcome)).isZero();
    }

    @Test
    void accessors_rejectedOutcome_haveNoRemaining() {
        long outcome = Outcome.rejected(250);
        assertThat(Outcome.isAdmitted(outcome)).isFalse();
        assertThat(Outcome.remaining(outcome)).isZero();
        assertThat(Outcome.retryAfterMicros(outcome)).isEqualTo(250);
    }

    @Test
    void toString_eachForm_isReadable() {
        assertThat(Outcome.toString(Outcome.admitted(3))).isEqualTo("admitted(remaining=3)");
        assertThat(Outcome.toString(Outcome.rejected(42))).isEqualTo("rejected(retryAfterMicros=42)");
        assertThat(Outcome.toString(Outcome.NEVER)).isEqualTo("rejected(never)");
    }
}
