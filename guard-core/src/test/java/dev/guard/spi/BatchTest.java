package dev.guard.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.FixedWindow;
import dev.guard.limit.Outcome;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class BatchTest {
    private final Step first = new Step(new StateKey("per-user", "u:1"), new FixedWindow(3, Duration.ofMinutes(1)), 1);
    private final Step second = new Step(new StateKey("per-chat", "c:1"), new FixedWindow(9, Duration.ofMinutes(1)), 1);

    @Test
    void batch_ofNullSteps_isRefusedNamingThem() {
        assertThatThrownBy(() -> new Batch(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("steps must not be null");
        assertThatThrownBy(() -> Batch.of((Step[]) null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("steps must not be null");
    }

    @Test
    void batch_withANullStep_isRefusedNamingItsIndex() {
        assertThatThrownBy(() -> Batch.of((Step) null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("step 0 must not be null");
        assertThatThrownBy(() -> Batch.of(first, second, null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("step 2 must not be null");
        assertThatThrownBy(() -> new Batch(Arrays.asList((Step) null)))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("step 0 must not be null");
        assertThatThrownBy(() -> new Batch(Arrays.asList(first, null, second)))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("step 1 must not be null");
    }

    @Test
    void batch_copiesItsSteps_andKeepsTheirOrder() {
        List<Step> steps = new ArrayList<>(List.of(first, second));
        Batch batch = new Batch(steps);
        steps.clear();

        assertThat(batch.steps()).containsExactly(first, second);
        assertThat(batch).isEqualTo(Batch.of(first, second));
        assertThatThrownBy(() -> Batch.of()).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void batchResult_ofNullOutcomes_isRefusedNamingThem() {
        assertThatThrownBy(() -> BatchResult.of((long[]) null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("outcomes must not be null");
        assertThatThrownBy(() -> BatchResult.of())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("outcomes must not be empty");
        assertThat(BatchResult.of(Outcome.admitted(2), Outcome.rejected(5)).firstRejected())
                .isEqualTo(1);
    }
}
