package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class WarmUpScheduleTest {

    @Test
    void sendGrid_startsAt20PerHourAndGrowsAbout1point4PerDay() {
        WarmUpSchedule s = WarmUpSchedule.sendGrid();

        assertThat(s.allowance(0)).isEqualTo(20);
        assertThat(s.allowance(1)).isEqualTo(28);
        assertThat(s.allowance(2)).isEqualTo(39);
        for (int k = 1; k < s.stages(); k++) {
            assertThat((double) s.allowance(k) / s.allowance(k - 1)).isBetween(1.3, 1.5);
        }
        assertThat(s.allowance(s.stages() - 1)).isLessThan(100_000);
        assertThat(s.allowance(s.stages())).isEqualTo(Long.MAX_VALUE);
        assertThat(s.window()).isEqualTo(Duration.ofHours(1));
        assertThat(s.stageLength()).isEqualTo(Duration.ofDays(1));
    }

    @Test
    void linear_addsTheStepPerStageUntilTheCeiling() {
        WarmUpSchedule s = WarmUpSchedule.linear(100, 50, 300);

        assertThat(s.stages()).isEqualTo(4);
        assertThat(s.allowance(0)).isEqualTo(100);
        assertThat(s.allowance(3)).isEqualTo(250);
        assertThat(s.allowance(4)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void table_isUsedAsGiven_andWithersKeepIt() {
        WarmUpSchedule s = WarmUpSchedule.table(5, 7, 9).withWindow(Duration.ofMinutes(1));

        assertThat(s.stages()).isEqualTo(3);
        assertThat(s.allowance(1)).isEqualTo(7);
        assertThat(s.window()).isEqualTo(Duration.ofMinutes(1));
        assertThat(s).isEqualTo(WarmUpSchedule.table(5, 7, 9).withWindow(Duration.ofSeconds(60)));
    }

    @Test
    void factories_rejectBadValues_namingTheField() {
        assertThatThrownBy(() -> WarmUpSchedule.geometric(0, 1.4, 100)).hasMessage("start must be positive but was 0");
        assertThatThrownBy(() -> WarmUpSchedule.geometric(20, 1.0, 100))
                .hasMessage("factor must be above 1 but was 1.0");
        assertThatThrownBy(() -> WarmUpSchedule.geometric(20, 1.4, 10))
                .hasMessage("ceiling must be at least start 20 but was 10");
        assertThatThrownBy(() -> WarmUpSchedule.linear(1, 1, 5_000)).hasMessageContaining("more than 1000");
        assertThatThrownBy(() -> WarmUpSchedule.table()).hasMessage("allowances must not be empty");
        assertThatThrownBy(() -> WarmUpSchedule.table(5, -1)).hasMessage("allowances[1] must be positive but was -1");
        assertThatThrownBy(() -> WarmUpSchedule.sendGrid().withWindow(Duration.ofSeconds(-1)))
                .hasMessage("window must be positive but was PT-1S");
        assertThatThrownBy(() -> WarmUpSchedule.sendGrid().withStageLength(Duration.ofNanos(1_500_000)))
                .hasMessage("stageLength must be a whole number of milliseconds but was PT0.0015S");
        assertThatThrownBy(() -> WarmUpSchedule.sendGrid().allowance(-1))
                .hasMessage("stage must not be negative but was -1");
    }

    @Test
    void geometric_ceilingEqualToStart_isOneStageAllowingStart() {
        WarmUpSchedule s = WarmUpSchedule.geometric(50, 1.4, 50);

        assertThat(s.stages()).isEqualTo(1);
        assertThat(s.allowance(0)).isEqualTo(50);
        assertThat(s.allowance(1)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void geometric_ceilingReachedAtTheSecondStage_keepsTheFirstOnly() {
        WarmUpSchedule s = WarmUpSchedule.geometric(50, 2.0, 100);

        assertThat(s.stages()).isEqualTo(1);
        assertThat(s.allowance(0)).isEqualTo(50);
    }

    @Test
    void linear_ceilingEqualToStart_isOneStageAllowingStart() {
        WarmUpSchedule s = WarmUpSchedule.linear(50, 10, 50);

        assertThat(s.stages()).isEqualTo(1);
        assertThat(s.allowance(0)).isEqualTo(50);
    }

    @Test
    void linear_nearLongMaxValue_countsStagesWithoutOverflow_andStopsBelow2pow53() {
        long step = 1L << 62;
        WarmUpSchedule s = WarmUpSchedule.linear(1, step, Long.MAX_VALUE);

        // 1 + 2^62 would be a stage no limit can evaluate: warm from there.
        assertThat(s.stages()).isEqualTo(1);
        assertThat(s.allowance(0)).isEqualTo(1);

        long half = 1L << 51;
        WarmUpSchedule exact = WarmUpSchedule.linear(half, half, Long.MAX_VALUE);
        assertThat(exact.stages()).isEqualTo(3);
        assertThat(exact.allowance(2)).isEqualTo(3 * half);

        WarmUpSchedule top = WarmUpSchedule.linear((1L << 53) - 1, Long.MAX_VALUE, Long.MAX_VALUE);
        assertThat(top.stages()).isEqualTo(1);
        assertThat(top.allowance(0)).isEqualTo((1L << 53) - 1);
        assertThatThrownBy(() -> WarmUpSchedule.linear(1L << 53, 1, Long.MAX_VALUE))
                .hasMessage("start must be below 2^53 but was 9007199254740992");
    }

    @Test
    void geometric_towardsLongMaxValue_stopsBelow2pow53() {
        WarmUpSchedule s = WarmUpSchedule.geometric(1, 2.0, Long.MAX_VALUE);

        assertThat(s.stages()).isEqualTo(53);
        assertThat(s.allowance(52)).isEqualTo(1L << 52);
        assertThatThrownBy(() -> WarmUpSchedule.geometric(Long.MAX_VALUE, 2.0, Long.MAX_VALUE))
                .hasMessage("start must be below 2^53 but was 9223372036854775807");
    }

    @Test
    void everyFactory_givesOnlyPositiveAllowances() {
        WarmUpSchedule[] schedules = {
            WarmUpSchedule.geometric(1, 1.0001, 1),
            WarmUpSchedule.geometric(1, 1e300, Long.MAX_VALUE),
            WarmUpSchedule.geometric((1L << 53) - 1, 2.0, Long.MAX_VALUE),
            WarmUpSchedule.linear(1, 1, 1),
            WarmUpSchedule.linear((1L << 53) - 1, 1, Long.MAX_VALUE),
            WarmUpSchedule.linear(1, Long.MAX_VALUE, Long.MAX_VALUE),
            WarmUpSchedule.table(1),
            WarmUpSchedule.sendGrid()
        };
        for (WarmUpSchedule s : schedules) {
            assertThat(s.stages()).as("%s", s).isPositive();
            for (int k = 0; k < s.stages(); k++) {
                assertThat(s.allowance(k)).as("%s stage %d", s, k).isPositive();
            }
        }
    }
}
