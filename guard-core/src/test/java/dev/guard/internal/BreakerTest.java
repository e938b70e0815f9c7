package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BreakerTest {
    private static final long NOW = 1_700_000_000_000_000L;

    @Test
    void opensAfterTheThreshold_thenLetsOneProbeThrough_andClosesOnItsSuccess() {
        Breaker breaker = new Breaker(2, 1_000);

        breaker.failure(NOW);
        assertThat(breaker.allows(NOW)).isTrue();
        breaker.failure(NOW);

        assertThat(breaker.isOpen(NOW)).isTrue();
        assertThat(breaker.allows(NOW + 999)).isFalse();
        assertThat(breaker.allows(NOW + 1_000)).as("the probe").isTrue();
        assertThat(breaker.allows(NOW + 1_000)).as("one probe only").isFalse();
        breaker.success();
        assertThat(breaker.isOpen(NOW + 1_000)).isFalse();
        assertThat(breaker.allows(NOW + 1_000)).isTrue();
    }

    @Test
    void aHugeOpenDuration_keepsTheBreakerOpen_ratherThanOverflowingIntoThePast() {
        Breaker breaker = new Breaker(1, Long.MAX_VALUE);

        breaker.failure(NOW);

        assertThat(breaker.isOpen(NOW)).isTrue();
        assertThat(breaker.allows(NOW)).isFalse();
        assertThat(breaker.allows(Long.MAX_VALUE - 1)).isFalse();
    }

    @Test
    void aProbeAtTheEndOfTime_doesNotOverflowEither() {
        Breaker breaker = new Breaker(1, 10);
        breaker.failure(Long.MAX_VALUE - 20);

        assertThat(breaker.allows(Long.MAX_VALUE - 5)).as("the probe").isTrue();
        assertThat(breaker.isOpen(Long.MAX_VALUE - 5)).isTrue();
        assertThat(breaker.allows(Long.MAX_VALUE - 1)).isFalse();
    }

    @Test
    void badArguments_nameTheValue() {
        assertThatThrownBy(() -> new Breaker(0, 1))
                .hasMessageContaining("threshold")
                .hasMessageContaining("0");
        assertThatThrownBy(() -> new Breaker(1, 0)).hasMessageContaining("0");
    }
}
