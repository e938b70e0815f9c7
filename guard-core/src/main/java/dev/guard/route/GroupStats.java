package dev.guard.route;

import java.util.Objects;

/**
 * The counters of one A/B group: the sums over its senders.
 *
 * @param group the group
 * @param senders how many senders it holds
 * @param sent permits granted
 * @param delivered sends reported delivered
 * @param failed sends reported failed
 * @param pushbacks platform pushbacks reported
 * @param recipientBlocks recipients who blocked one of its senders
 * @param blocks times the platform blocked one of its senders
 * @param risk the highest risk among its senders
 * @param failuresByHour failures and pushbacks by hour of the week
 * @param blocksByHour blocks by hour of the week
 * @param failureTrials the trials of {@link #failureRate}: over its senders, the sum of the greater of each one's
 *     {@code sent} and {@code failed} (a failure reported for a send another process granted is a send too)
 * @param blockTrials the trials of {@link #blockRate}: over its senders, the sum of the greater of each one's {@code
 *     sent} and its blocks (recipients' and the platform's)
 */
public record GroupStats(
        String group,
        int senders,
        long sent,
        long delivered,
        long failed,
        long pushbacks,
        long recipientBlocks,
        long blocks,
        double risk,
        HeatMap failuresByHour,
        HeatMap blocksByHour,
        long failureTrials,
        long blockTrials) {

    /**
     * Creates the counters.
     *
     * @throws NullPointerException if a component of a reference type is null; the message names it
     * @throws IllegalArgumentException if {@code failureTrials} is below {@code failed} or {@code sent}, or {@code
     *     blockTrials} below the blocks or {@code sent} (every event and every send is a trial); the message names
     *     the counts
     */
    public GroupStats {
        Objects.requireNonNull(group, "group must not be null");
        Objects.requireNonNull(failuresByHour, "failuresByHour must not be null");
        Objects.requireNonNull(blocksByHour, "blocksByHour must not be null");
        if (failureTrials < Math.max(sent, failed)) {
            throw new IllegalArgumentException("failureTrials must be at least sent (" + sent + ") and failed ("
                    + failed + ") but was " + failureTrials);
        }
        if (blockTrials < Math.max(sent, recipientBlocks + blocks)) {
            throw new IllegalArgumentException("blockTrials must be at least sent (" + sent + ") and the blocks ("
                    + (recipientBlocks + blocks) + ") but was " + blockTrials);
        }
    }

    /**
     * Failures per trial, in [0, 1]; zero before the first failure. A failure reported for a send that this process
     * did not grant (another process's) is a send too, as in {@link SenderPool#compare}: each sender counts the
     * greater of its sends and its failures ({@link #failureTrials}), so the rate is never above one, and one, not
     * zero, for a group that only ever heard of failures.
     */
    public double failureRate() {
        return rate(failed, failureTrials);
    }

    /**
     * Blocks (platform and recipients) per trial, in [0, 1]; zero before the first block. Counted as {@link
     * #failureRate} is, over {@link #blockTrials}: a block of a send granted elsewhere is a send too.
     */
    public double blockRate() {
        return rate(recipientBlocks + blocks, blockTrials);
    }

    /**
     * {@code events} per trial, where every event is a trial ({@link GroupComparison}'s precondition): the trials are
     * the greater of {@code sent} and {@code events}. Feedback for sends granted by another process has no local
     * grant; dividing by the grants alone would answer rates above one, or zero for a sender that only failed here.
     */
    static double rate(long events, long sent) {
        return events == 0 ? 0 : (double) events / Math.max(sent, events);
    }

    /** The trials of {@code metric}: {@link #failureTrials} or {@link #blockTrials}. */
    long trials(GroupComparison.Metric metric) {
        return metric == GroupComparison.Metric.FAILURE_RATE ? failureTrials : blockTrials;
    }

    /** The number of events the {@code metric} counts. */
    long events(GroupComparison.Metric metric) {
        return metric == GroupComparison.Metric.FAILURE_RATE ? failed : recipientBlocks + blocks;
    }
}
