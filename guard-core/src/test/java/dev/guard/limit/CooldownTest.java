package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class CooldownTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();
    private final Cooldown thirtySeconds = new Cooldown(Duration.ofSeconds(30));

    private long now() {
        return clock.epochMicros();
    }

    @Test
    void evaluate_keyNotCooling_admitsAndCommitStartsTheCooldown() {
        assertThat(thirtySeconds.evaluate(null, now(), 1)).isEqualTo(0);
        assertThat(thirtySeconds.commit(null, now(), 1)).containsExactly(t0 + 30_000_000);
    }

    @Test
    void evaluate_coolingKey_rejectsUntilTheCooldownEnds() {
        long[] state = thirtySeconds.commit(null, now(), 1);
        clock.advance(Duration.ofSeconds(10));
        assertThat(thirtySeconds.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(20_000_000));
        clock.advanceMicros(19_999_999);
        assertThat(thirtySeconds.evaluate(state, now(), 1)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(thirtySeconds.evaluate(state, now(), 1)).isEqualTo(0);
    }

    @Test
    void evaluate_rejectedCopies_doNotExtendTheCooldown() {
        // A storage commits only admitted steps, so a rejected copy leaves the deadline where the first one set it.
        long[] state = thirtySeconds.commit(null, now(), 1);
        for (int copy = 0; copy < 5; copy++) {
            clock.advance(Duration.ofSeconds(5));
            assertThat(Outcome.isAdmitted(thirtySeconds.evaluate(state, now(), 1)))
                    .isFalse();
        }
        assertThat(state).containsExactly(t0 + 30_000_000);
        clock.advance(Duration.ofSeconds(5));
        assertThat(thirtySeconds.evaluate(state, now(), 1)).isEqualTo(0);
    }

    @Test
    void commit_afterTheCooldown_startsANewOneFromNow() {
        long[] state = thirtySeconds.commit(null, now(), 1);
        clock.advance(Duration.ofSeconds(45));
        assertThat(thirtySeconds.commit(state, now(), 1)).containsExactly(t0 + 75_000_000);
    }

    @Test
    void evaluate_zeroPermits_looksWithoutStartingACooldown() {
        assertThat(thirtySeconds.evaluate(null, now(), 0)).isEqualTo(1);
        assertThat(thirtySeconds.commit(null, now(), 0)).isNull();
        long[] state = thirtySeconds.commit(null, now(), 1);
        assertThat(thirtySeconds.evaluate(state, now(), 0)).isEqualTo(Outcome.rejected(30_000_000));
    }

    @Test
    void evaluate_manyPermits_countAsOne() {
        assertThat(thirtySeconds.evaluate(null, now(), 5)).isEqualTo(0);
        assertThat(thirtySeconds.commit(null, now(), 5)).containsExactly(t0 + 30_000_000);
    }

    @Test
    void evaluate_negativePermits_isRefused() {
        assertThatThrownBy(() -> thirtySeconds.evaluate(null, now(), -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -1");
    }

    @Test
    void ttl_isUntilTheCooldownEnds() {
        long[] state = thirtySeconds.commit(null, now(), 1);
        assertThat(thirtySeconds.ttlMicros(state, now())).isEqualTo(30_000_000);
        assertThat(thirtySeconds.maxTtlMicros()).isEqualTo(30_000_000);
        clock.advance(Duration.ofSeconds(31));
        assertThat(thirtySeconds.ttlMicros(state, now())).isZero();
        assertThat(thirtySeconds.ttlMicros(null, now())).isZero();
    }

    @Test
    void constructor_badPeriod_namesTheFieldAndTheValue() {
        assertThatThrownBy(() -> new Cooldown(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("period must be positive but was PT0S");
        assertThatThrownBy(() -> new Cooldown(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("period must not be null");
        assertThatThrownBy(() -> new Cooldown(Duration.ofNanos(1_001)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("period must be a whole number of microseconds but was PT0.000001001S");
    }

    @Test
    void equals_samePeriod_isEqual() {
        assertThat(thirtySeconds)
                .isEqualTo(new Cooldown(Duration.ofMillis(30_000)))
                .hasSameHashCodeAs(new Cooldown(Duration.ofMillis(30_000)))
                .isNotEqualTo(new Cooldown(Duration.ofSeconds(31)))
                .hasToString("Cooldown[period=PT30S]");
        assertThat(thirtySeconds.kind()).isEqualTo("cooldown");
        assertThat(thirtySeconds.periodMicros()).isEqualTo(30_000_000);
    }
}
