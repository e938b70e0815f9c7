package dev.guard.route;

import java.time.Duration;
import java.util.Objects;

/**
 * A snapshot of one sender's counters, health and warm-up, as seen by this pool (counters and health are local to
 * the process; status and warm-up stage come from the storage).
 *
 * @param sender the sender's id
 * @param group its A/B group
 * @param status its status now
 * @param warmUpStage its warm-up stage, or -1 when it has no schedule
 * @param allowance messages allowed per warm-up window now, or {@link Long#MAX_VALUE} when warm
 * @param sent permits granted
 * @param delivered sends reported delivered
 * @param failed sends reported failed
 * @param pushbacks platform pushbacks ({@code retry_after}) reported
 * @param recipientBlocks recipients who blocked the sender
 * @param blocks times the platform blocked the sender
 * @param latency the moving average of delivery latency, unfaded (what it takes off the routing score fades as the
 *     marks of failures do)
 * @param success the moving average of success (1 delivered, 0 failed or pushed back); what failures took off it
 *     fades linearly to nothing over the 10 minutes after the last report, as routing sees it
 * @param pacing the AIMD factor applied to its per-second limit, in (0, 1]; earned back by sending, not with time
 * @param risk an estimate in [0, 1] that rises with recent pushback, failures and blocks and their trend, before
 *     a platform blocks the sender; a heuristic, not a probability. It fades with {@code success}: its exponent
 *     falls linearly to zero over the 10 minutes after the last report. One after a block reported here, until the
 *     sender is set active again: then health and risk start afresh
 * @param sentByHour permits granted by hour of the week
 * @param failuresByHour failures and pushbacks by hour of the week
 * @param blocksByHour blocks (platform and recipients) by hour of the week
 */
public record SenderStats(
        String sender,
        String group,
        SenderStatus status,
        int warmUpStage,
        long allowance,
        long sent,
        long delivered,
        long failed,
        long pushbacks,
        long recipientBlocks,
        long blocks,
        Duration latency,
        double success,
        double pacing,
        double risk,
        HeatMap sentByHour,
        HeatMap failuresByHour,
        HeatMap blocksByHour) {

    /**
     * Creates a snapshot.
     *
     * @throws NullPointerException if a component of a reference type is null; the message names it
     */
    public SenderStats {
        Objects.requireNonNull(sender, "sender must not be null");
        Objects.requireNonNull(group, "group must not be null");
        Objects.requireNonNull(status, "status must not be null");
        Objects.requireNonNull(latency, "latency must not be null");
        Objects.requireNonNull(sentByHour, "sentByHour must not be null");
        Objects.requireNonNull(failuresByHour, "failuresByHour must not be null");
        Objects.requireNonNull(blocksByHour, "blocksByHour must not be null");
    }

    /**
     * Failures per message sent, in [0, 1]; zero before the first failure. A failure reported for a send that this
     * process did not grant (another process's) is a send too, as in {@link SenderPool#compare}: the rate is the
     * failures over the greater of {@code sent} and {@code failed}.
     */
    public double failureRate() {
        return GroupStats.rate(failed, sent);
    }

    /**
     * Blocks (platform and recipients) per message sent, in [0, 1]; zero before the first block. Counted as {@link
     * #failureRate} is: a block of a send granted elsewhere is a send too.
     */
    public double blockRate() {
        return GroupStats.rate(recipientBlocks + blocks, sent);
    }
}
