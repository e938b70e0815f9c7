package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import org.junit.jupiter.api.Test;

class GateTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();
    private final Gate gate = Gate.INSTANCE;

    private long now() {
        return clock.epochMicros();
    }

    @Test
    void aDeadlineThatNeverEnds_readOnAClockBefore1970_neverEnds() {
        // Long.MAX_VALUE - now overflows for a negative now: the wait was 1 us and the ttl 0 (the state dropped).
        long before1970 = -3_600_000_000L;
        long[] forever = {Long.MAX_VALUE};
        assertThat(gate.evaluate(forever, before1970, 1)).isEqualTo(Outcome.NEVER);
        assertThat(gate.ttlMicros(forever, before1970)).isEqualTo(Long.MAX_VALUE);
        assertThat(new Cooldown(java.time.Duration.ofSeconds(1)).evaluate(forever, before1970, 1))
                .isEqualTo(Outcome.NEVER);
        assertThat(new Cooldown(java.time.Duration.ofSeconds(1)).ttlMicros(forever, before1970))
                .isEqualTo(Long.MAX_VALUE);
        // A deadline that fits is read exactly, before 1970 as after.
        long[] inAnHour = {before1970 + 3_600_000_000L};
        assertThat(gate.evaluate(inAnHour, before1970, 1)).isEqualTo(Outcome.rejected(3_600_000_000L));
        assertThat(gate.ttlMicros(inAnHour, before1970)).isEqualTo(3_600_000_000L);
    }

    @Test
    void evaluate_noDeadline_admitsWithoutLimit() {
        assertThat(gate.evaluate(null, now(), 1_000)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void evaluate_raisedGate_rejectsUntilTheDeadline() {
        long[] state = gate.raise(null, t0 + 10_000_000);
        assertThat(state).containsExactly(t0 + 10_000_000);
        assertThat(gate.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(gate.evaluate(state, now(), 0)).isEqualTo(Outcome.rejected(10_000_000));
        clock.advanceMicros(9_999_999);
        assertThat(gate.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(gate.evaluate(state, now(), 1)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void raise_earlierDeadline_changesNothing() {
        long[] state = gate.raise(null, t0 + 10_000_000);
        assertThat(gate.raise(state, t0 + 5_000_000)).containsExactly(t0 + 10_000_000);
    }

    @Test
    void raise_laterDeadline_movesItForward() {
        long[] state = gate.raise(null, t0 + 10_000_000);
        assertThat(gate.raise(state, t0 + 15_000_000)).containsExactly(t0 + 15_000_000);
    }

    @Test
    void raise_concurrentPushbacksInAnyOrder_mergeByMaximum() {
        long[] deadlines = {7, 3, 9, 1, 9, 4};
        long[] state = null;
        for (long d : deadlines) {
            state = gate.raise(state, t0 + d);
        }
        assertThat(state).containsExactly(t0 + 9);
    }

    @Test
    void commit_passingTheGate_neverChangesIt() {
        long[] state = gate.raise(null, t0 - 1);
        assertThat(gate.commit(state, now(), 5)).containsExactly(t0 - 1);
        assertThat(gate.commit(null, now(), 5)).isNull();
    }

    @Test
    void ttl_isUntilTheDeadline() {
        long[] state = gate.raise(null, t0 + 10_000_000);
        assertThat(gate.ttlMicros(state, now())).isEqualTo(10_000_000);
        assertThat(gate.ttlMicros(state, t0 + 11_000_000)).isZero();
        assertThat(gate.ttlMicros(null, now())).isZero();
        assertThat(gate.maxTtlMicros()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void evaluate_negativePermits_isRefused() {
        assertThatThrownBy(() -> gate.evaluate(null, now(), -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -1");
    }

    @Test
    void kind_isGate() {
        assertThat(gate.kind()).isEqualTo("gate");
        assertThat(gate).hasToString("Gate");
    }
}
