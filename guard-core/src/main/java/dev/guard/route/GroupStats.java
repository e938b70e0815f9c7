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

    /** Failures per message sent; zero before the first. */
    public double failureRate() {
        return sent == 0 ? 0 : (double) failed / sent;
    }

    /** Blocks (platform and recipients) per message sent; zero before the first. */
    public double blockRate() {
        return sent == 0 ? 0 : (double) (recipientBlocks + blocks) / sent;
    }

    /** The number of events the {@code metric} counts. */
    long events(GroupComparison.Metric metric) {
        return metric == GroupComparison.Metric.FAILURE_RATE ? failed : recipientBlocks + blocks;
    }
}
