package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.guard.route.GroupComparison.Metric;
import org.junit.jupiter.api.Test;

class GroupComparisonTest {

    @Test
    void test_fivePercentAgainstThreePercentOfAThousand_isSignificantAtFivePercent() {
        // pooled p = 0.04, se = sqrt(0.04 * 0.96 * 0.002) = 0.0087636, z = 0.02 / se = 2.2822, p = 0.02248
        GroupComparison c = GroupComparison.test("a", "b", Metric.BLOCK_RATE, 50, 1000, 30, 1000);

        assertThat(c.z()).isCloseTo(2.2822, within(1e-4));
        assertThat(c.pValue()).isCloseTo(0.02248, within(1e-4));
        assertThat(c.rateA()).isEqualTo(0.05);
        assertThat(c.reliable()).isTrue();
        assertThat(c.significant(0.05)).isTrue();
        assertThat(c.significant(0.01)).isFalse();
    }

    @Test
    void test_equalRates_haveZeroStatisticAndPValueOne() {
        GroupComparison c = GroupComparison.test("a", "b", Metric.FAILURE_RATE, 10, 100, 20, 200);

        assertThat(c.z()).isZero();
        assertThat(c.pValue()).isCloseTo(1.0, within(1e-6));
    }

    @Test
    void test_withoutTrialsOrEvents_isNoEvidenceAndNotReliable() {
        assertThat(GroupComparison.test("a", "b", Metric.BLOCK_RATE, 0, 0, 3, 10)
                        .pValue())
                .isEqualTo(1);
        GroupComparison none = GroupComparison.test("a", "b", Metric.BLOCK_RATE, 0, 500, 0, 500);
        assertThat(none.pValue()).isEqualTo(1);
        assertThat(none.reliable()).isFalse();
        assertThat(none.significant(0.05)).isFalse();
    }

    @Test
    void erfc_matchesKnownValues() {
        assertThat(GroupComparison.erfc(0)).isCloseTo(1.0, within(2e-7));
        assertThat(GroupComparison.erfc(1)).isCloseTo(0.1572992, within(2e-7));
        assertThat(GroupComparison.erfc(1.959964 / Math.sqrt(2))).isCloseTo(0.05, within(2e-7));
    }

    @Test
    void test_rejectsImpossibleCounts() {
        assertThatThrownBy(() -> GroupComparison.test("a", "b", Metric.BLOCK_RATE, 5, 4, 0, 1))
                .hasMessage("eventsA must not exceed trialsA but was 5 events in 4 trials (group 'a', BLOCK_RATE)");
        assertThatThrownBy(() -> GroupComparison.test("a", "b", Metric.BLOCK_RATE, 0, 4, -1, 1))
                .hasMessage("eventsB and trialsB must not be negative but were -1 events in 1 trials"
                        + " (group 'b', BLOCK_RATE)");
        assertThatThrownBy(() -> GroupComparison.test("a", "b", Metric.BLOCK_RATE, 0, 4, 0, 1)
                        .significant(1.5))
                .hasMessage("alpha must be between 0 and 1 but was 1.5");
    }

    @Test
    void test_eventsWithoutTrials_isRejectedNamingTheGroupMetricAndCounts() {
        // Feedback for messages a group sent without counting them (1 block, 0 sends) is not a rate.
        assertThatThrownBy(() -> GroupComparison.test("control", "new-copy", Metric.FAILURE_RATE, 0, 10, 1, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("eventsB must not exceed trialsB but was 1 events in 0 trials"
                        + " (group 'new-copy', FAILURE_RATE)");
    }

    @Test
    void test_countsWhoseSumOverflowsALong_stillFindTheDifference() {
        // Half of 2^62 against none of 2^62: the pooled rate is 1/4, and the difference is as plain as can be. Summed
        // as longs, the trials (2^63) wrap negative and the test answered "no evidence": z = 0, p = 1.
        long trials = 1L << 62;
        GroupComparison c = GroupComparison.test("a", "b", Metric.FAILURE_RATE, trials / 2, trials, 0, trials);

        assertThat(c.z()).isGreaterThan(1e6);
        assertThat(c.pValue()).isLessThan(1e-9);
        assertThat(c.reliable()).isTrue();
        assertThat(c.significant(0.001)).isTrue();
    }

    @Test
    void test_nullGroup_isRejectedNamingTheParameter() {
        assertThatThrownBy(() -> GroupComparison.test(null, "b", Metric.BLOCK_RATE, 1, 10, 2, 10))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("groupA must not be null");
        assertThatThrownBy(() -> GroupComparison.test("a", null, Metric.BLOCK_RATE, 1, 10, 2, 10))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("groupB must not be null");
    }

    @Test
    void test_eventsEqualToTrials_isAccepted() {
        GroupComparison c = GroupComparison.test("a", "b", Metric.FAILURE_RATE, 4, 4, 0, 4);

        assertThat(c.rateA()).isEqualTo(1.0);
        assertThat(c.rateB()).isZero();
    }
}
