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
        HeatMap blocksByHour) {

    /**
     * Creates the counters.
     *
     * @throws NullPointerException if a component of a reference type is null; the message names it
     */
    public GroupStats {
        Objects.requireNonNull(group, "group must not be null");
        Objects.requireNonNull(failuresByHour, "failuresByHour must not be null");
        Objects.requireNonNull(blocksByHour, "blocksByHour must not be null");
    }

    /**
     * Failures per message sent, in [0, 1]; zero before the first failure. A failure reported for a send that this
     * process did not grant (another process's) is a send too, as in {@link SenderPool#compare}: the rate is the
     * failures over the greater of {@code sent} and {@code failed}, never above one, and one, not zero, for a group
     * that only ever heard of failures.
     */
    public double failureRate() {
        return rate(failed, sent);
    }

    /**
     * Blocks (platform and recipients) per message sent, in [0, 1]; zero before the first block. Counted as {@link
     * #failureRate} is: a block of a send granted elsewhere is a send too.
     */
    public double blockRate() {
        return rate(recipientBlocks + blocks, sent);
    }

    /**
     * {@code events} per trial, where every event is a trial ({@link GroupComparison}'s precondition): the trials are
     * the greater of {@code sent} and {@code events}. Feedback for sends granted by another process has no local
     * grant; dividing by the grants alone would answer rates above one, or zero for a sender that only failed here.
     */
    static double rate(long events, long sent) {
        return events == 0 ? 0 : (double) events / Math.max(sent, events);
    }

    /** The number of events the {@code metric} counts. */
    long events(GroupComparison.Metric metric) {
        return metric == GroupComparison.Metric.FAILURE_RATE ? failed : recipientBlocks + blocks;
    }
}
