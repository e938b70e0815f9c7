package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DuplicateWindowTest {
    private static final long T = 1_767_225_600_000_000L;
    private final DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 2);

    @Test
    void construction_badArguments_nameTheFieldAndValue() {
        assertThatThrownBy(() -> new DuplicateWindow(Duration.ZERO, 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("window")
                .hasMessageContaining("PT0S");
        assertThatThrownBy(() -> new DuplicateWindow(Duration.ofSeconds(1).plusNanos(1), 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("window must be a whole number of microseconds but was PT1.000000001S");
        assertThatThrownBy(() -> new DuplicateWindow(Duration.ofSeconds(1), 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("capacity must be between 1 and 1000 but was 0");
        assertThatThrownBy(() -> new DuplicateWindow(Duration.ofSeconds(1), 1001))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("1001");
    }

    @Test
    void evaluate_itemOutOfRange_isRefusedNamingTheValue() {
        assertThatThrownBy(() -> window.evaluate(null, T, -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-1");
        assertThatThrownBy(() -> window.commit(null, T, 1L << 53))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(1L << 53));
    }

    @Test
    void commit_keepsPairsOldestFirst_andForgetsTheOldestWhenFull() {
        long[] state = window.commit(null, T, 5);
        assertThat(state).containsExactly(5, T);
        state = window.commit(state, T + 1, 6);
        assertThat(state).containsExactly(5, T, 6, T + 1);
        state = window.commit(state, T + 2, 7);
        assertThat(state).containsExactly(6, T + 1, 7, T + 2);
        assertThat(window.evaluate(state, T + 3, 5)).isEqualTo(Outcome.admitted(0));
        assertThat(window.evaluate(state, T + 3, 6)).isEqualTo(Outcome.rejected(10_000_000 - 2));
        assertThat(window.ttlMicros(state, T + 3)).isEqualTo(10_000_000 - 1);
    }

    @Test
    void commit_expiredPairs_areDropped_andAClockBehindKeepsTheOrder() {
        long[] state = window.commit(null, T, 5);
        state = window.commit(state, T + 10_000_000, 6);
        assertThat(state).containsExactly(6, T + 10_000_000);
        state = window.commit(state, T + 5, 7);
        assertThat(state).containsExactly(6, T + 10_000_000, 7, T + 10_000_000);
    }

    @Test
    void commit_asManyPairsLeavingAsComing_shiftsTheSameArray() {
        long[] state = window.commit(window.commit(null, T, 5), T + 1, 6);
        long[] full = window.commit(state, T + 2, 7);
        assertThat(full).isSameAs(state).containsExactly(6, T + 1, 7, T + 2);
        long[] expiredOne = window.commit(full, T + 10_000_001, 8);
        assertThat(expiredOne).isSameAs(full).containsExactly(7, T + 2, 8, T + 10_000_001);
        // One pair left behind: a smaller array, not a shift with stale pairs at the end.
        assertThat(window.commit(expiredOne, T + 20_000_001, 9)).containsExactly(9, T + 20_000_001);
    }

    @Test
    void evaluate_stateOfAnotherShape_readsAsAbsent() {
        assertThat(window.evaluate(new long[] {5}, T, 5)).isEqualTo(Outcome.admitted(0));
        assertThat(window.evaluate(new long[] {5, T, 6, T, 7, T}, T, 5)).isEqualTo(Outcome.admitted(0));
        assertThat(window.ttlMicros(new long[] {5, T, 6, T, 7, T}, T)).isZero();
        assertThat(window.commit(new long[] {5}, T, 9)).containsExactly(9, T);
    }
}
