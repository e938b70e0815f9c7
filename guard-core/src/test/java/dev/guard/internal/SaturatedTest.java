package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class SaturatedTest {
    @Test
    void plus_overflow_isNever() {
        assertThat(Saturated.plus(5, 7)).isEqualTo(12);
        assertThat(Saturated.plus(Long.MAX_VALUE - 1, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(Saturated.plus(Long.MAX_VALUE - 1, 2)).isEqualTo(Long.MAX_VALUE);
        assertThat(Saturated.plus(Long.MAX_VALUE, Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void times_exactUpToTheLargestLongAndNeverBeyond() {
        assertThat(Saturated.times(3, 4)).isEqualTo(12);
        assertThat(Saturated.times(Long.MAX_VALUE, 0)).isZero();
        assertThat(Saturated.times(0, Long.MAX_VALUE)).isZero();
        assertThat(Saturated.times(Long.MAX_VALUE / 1_000, 1_000)).isEqualTo(Long.MAX_VALUE / 1_000 * 1_000);
        assertThat(Saturated.times(Long.MAX_VALUE / 1_000 + 1, 1_000)).isEqualTo(Long.MAX_VALUE);
        assertThat(Saturated.times(Long.MAX_VALUE / 2, 2)).isEqualTo(Long.MAX_VALUE - 1);
        assertThat(Saturated.times(Long.MAX_VALUE / 2 + 1, 2)).isEqualTo(Long.MAX_VALUE);
        assertThat(Saturated.times(Long.MAX_VALUE, Long.MAX_VALUE)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void until_deadlineThatNeverEnds_isNever() {
        assertThat(Saturated.until(10, 4)).isEqualTo(6);
        assertThat(Saturated.until(Long.MAX_VALUE, -1)).isEqualTo(Long.MAX_VALUE);
    }
}
