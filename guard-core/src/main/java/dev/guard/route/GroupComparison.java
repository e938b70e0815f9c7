package dev.guard.route;

/**
 * Whether two A/B groups of senders differ in a rate (failures or blocks per message sent): a two-sided
 * two-proportion z-test with a pooled proportion.
 *
 * <p>{@code z = (rateA - rateB) / sqrt(p (1 - p) (1/trialsA + 1/trialsB))} with {@code p} the pooled rate, and
 * {@code pValue = erfc(|z| / sqrt 2)}. The normal approximation needs enough events on both sides: {@link
 * #reliable()} says whether every expected count ({@code trials * p} and {@code trials * (1 - p)} on each side) is
 * at least 5. The error function is the Abramowitz and Stegun 7.1.26 approximation (absolute error below 1.5e-7),
 * ample for significance levels such as 0.05 or 0.001. When a side has no trials, or the pooled rate is 0 or 1,
 * there is no evidence of a difference: {@code z = 0}, {@code pValue = 1}.
 *
 * <p>Precondition: every event is one of the trials, so {@code 0 <= eventsA <= trialsA} and {@code 0 <= eventsB <=
 * trialsB}. A failure or block reported for a message must be counted as a message sent, even when the process that
 * counts did not send it (a sender without a local grant). {@link #test} rejects counts that break this instead of
 * clamping them: a rate above 1 means the counting is wrong, and a clamped test would hide it.
 *
 * @param groupA the first group
 * @param groupB the second group
 * @param metric the rate compared
 * @param eventsA failures or blocks in group A
 * @param trialsA messages sent by group A
 * @param eventsB failures or blocks in group B
 * @param trialsB messages sent by group B
 * @param z the test statistic, positive when A's rate is higher
 * @param pValue the two-sided p-value
 */
public record GroupComparison(
        String groupA,
        String groupB,
        Metric metric,
        long eventsA,
        long trialsA,
        long eventsB,
        long trialsB,
        double z,
        double pValue) {

    /** The rates a comparison can test. */
    public enum Metric {
        /** Failures ({@link SenderPool#failed}) per message sent. */
        FAILURE_RATE,
        /** Blocks (by the platform or by recipients) per message sent. */
        BLOCK_RATE
    }

    /**
     * Runs the test.
     *
     * @throws IllegalArgumentException if a group or {@code metric} is null, a count is negative or a group's events
     *     exceed its trials (see the precondition above); the message names the counts, the group and the metric
     */
    public static GroupComparison test(
            String groupA, String groupB, Metric metric, long eventsA, long trialsA, long eventsB, long trialsB) {
        check("A", groupA, metric, eventsA, trialsA);
        check("B", groupB, metric, eventsB, trialsB);
        double z = 0;
        double p = 1;
        if (trialsA > 0 && trialsB > 0) {
            double pooled = pooled(eventsA, trialsA, eventsB, trialsB);
            double se = Math.sqrt(pooled * (1 - pooled) * (1.0 / trialsA + 1.0 / trialsB));
            if (se > 0) {
                z = ((double) eventsA / trialsA - (double) eventsB / trialsB) / se;
                p = Math.min(1.0, erfc(Math.abs(z) / Math.sqrt(2)));
            }
        }
        return new GroupComparison(groupA, groupB, metric, eventsA, trialsA, eventsB, trialsB, z, p);
    }

    /** The pooled rate, summed as doubles: two counts of 2^62 would wrap a long negative. */
    private static double pooled(long eventsA, long trialsA, long eventsB, long trialsB) {
        return ((double) eventsA + eventsB) / ((double) trialsA + trialsB);
    }

    private static void check(String side, String group, Metric metric, long events, long trials) {
        if (group == null) {
            throw new IllegalArgumentException("group" + side + " must not be null");
        }
        if (metric == null) {
            throw new IllegalArgumentException("metric must not be null");
        }
        String where = " (group '" + group + "', " + metric + ")";
        if (events < 0 || trials < 0) {
            throw new IllegalArgumentException("events" + side + " and trials" + side
                    + " must not be negative but were " + events + " events in " + trials + " trials" + where);
        }
        if (events > trials) {
            throw new IllegalArgumentException("events" + side + " must not exceed trials" + side + " but was " + events
                    + " events in " + trials + " trials" + where);
        }
    }

    /** The complementary error function for {@code x >= 0}, Abramowitz and Stegun 7.1.26. */
    static double erfc(double x) {
        double t = 1 / (1 + 0.3275911 * x);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        return poly * Math.exp(-x * x);
    }

    /** Group A's rate. */
    public double rateA() {
        return trialsA == 0 ? 0 : (double) eventsA / trialsA;
    }

    /** Group B's rate. */
    public double rateB() {
        return trialsB == 0 ? 0 : (double) eventsB / trialsB;
    }

    /**
     * Whether the difference is significant at level {@code alpha} (such as 0.05) and the test is {@link
     * #reliable()}.
     *
     * @throws IllegalArgumentException if {@code alpha} is not between 0 and 1
     */
    public boolean significant(double alpha) {
        if (!(alpha > 0 && alpha < 1)) {
            throw new IllegalArgumentException("alpha must be between 0 and 1 but was " + alpha);
        }
        return reliable() && pValue < alpha;
    }

    /** Whether the normal approximation holds: every expected count is at least 5. */
    public boolean reliable() {
        if (trialsA == 0 || trialsB == 0) {
            return false;
        }
        double pooled = pooled(eventsA, trialsA, eventsB, trialsB);
        double min = Math.min(
                Math.min(trialsA * pooled, trialsA * (1 - pooled)), Math.min(trialsB * pooled, trialsB * (1 - pooled)));
        return min >= 5;
    }
}
