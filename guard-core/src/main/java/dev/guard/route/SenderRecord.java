package dev.guard.route;

import dev.guard.spi.GuardStorageException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The slowly changing state of one sender that every pool over a storage shares, kept as a versioned record: its
 * status, its warm-up stage and when the stage began, when it was last set active again, and the limits and tags an
 * operator set at run time (zero and null: the configured ones). Encoded as one line of text, {@code 2|status|stage|
 * stageStartMicros|activatedMicros|perSecond|perDay|tags}, where tags is {@code -} for "as configured" or a
 * comma-separated list (tags cannot hold '|' or ',').
 *
 * <p>{@code activatedMicros} is when a pool last set the sender active again (its status from blocked or retired to
 * active), by that pool's clock; 0 when none has since the record began. A pool whose block of the sender never
 * reached the storage ends it when this is later than the block, and only then: the start of a warm-up stage, which
 * another pool's end of a stage moves too, is no activation. The first format, {@code 1|status|stage|
 * stageStartMicros|perSecond|perDay|tags}, had no such mark: such a record still reads, its stage's start as its
 * activation, as the pools that wrote it took it.
 *
 * <p>The encoding is injective: {@link #encode()} refuses the tag sets it could not read back, an empty tag, a tag
 * holding ',' or '|', and the set of the one tag {@code "-"}; {@link Sender#checkTag} keeps them out of every record.
 */
record SenderRecord(
        SenderStatus status,
        int stage,
        long stageStartMicros,
        long activatedMicros,
        long perSecond,
        long perDay,
        Set<String> tags) {

    /** A new sender's record: active (from the start, not set active again), at stage 0 since {@code nowMicros}. */
    static SenderRecord initial(long nowMicros) {
        return new SenderRecord(SenderStatus.ACTIVE, 0, nowMicros, 0, 0, 0, null);
    }

    SenderRecord withStatus(SenderStatus status) {
        return new SenderRecord(status, stage, stageStartMicros, activatedMicros, perSecond, perDay, tags);
    }

    SenderRecord withStage(int stage, long stageStartMicros) {
        return new SenderRecord(status, stage, stageStartMicros, activatedMicros, perSecond, perDay, tags);
    }

    /** This record set active again at {@code nowMicros}: status active, the stage begun again then. */
    SenderRecord activated(long nowMicros) {
        return new SenderRecord(SenderStatus.ACTIVE, stage, nowMicros, nowMicros, perSecond, perDay, tags);
    }

    SenderRecord withLimits(long perSecond, long perDay) {
        return new SenderRecord(status, stage, stageStartMicros, activatedMicros, perSecond, perDay, tags);
    }

    SenderRecord withTags(Set<String> tags) {
        return new SenderRecord(status, stage, stageStartMicros, activatedMicros, perSecond, perDay, tags);
    }

    /**
     * This record as one line of text.
     *
     * @throws IllegalArgumentException if a tag is empty or holds ',' or '|', or the tags are exactly {@code ["-"]}
     */
    byte[] encode() {
        if (tags != null) {
            for (String tag : tags) {
                if (tag == null || tag.isEmpty() || tag.indexOf(',') >= 0 || tag.indexOf('|') >= 0) {
                    throw new IllegalArgumentException("tag must not be empty or hold ',' or '|' but was "
                            + (tag == null ? "null" : "'" + tag + "'"));
                }
            }
            if (tags.size() == 1 && tags.contains("-")) {
                throw new IllegalArgumentException("tags must not be exactly ['-'], which a sender record reads as the"
                        + " configured tags, but were " + tags);
            }
        }
        String t = tags == null ? "-" : String.join(",", tags);
        return ("2|" + status + "|" + stage + "|" + stageStartMicros + "|" + activatedMicros + "|" + perSecond + "|"
                        + perDay + "|" + t)
                .getBytes(StandardCharsets.UTF_8);
    }

    static SenderRecord decode(String sender, byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        String[] f = text.split("\\|", -1);
        try {
            // The first format has no activation mark (the second has it after the stage's start): its stage's start
            // stands in for it, as it did for the pools that wrote it.
            boolean first = f.length == 7 && f[0].equals("1");
            if (!first && (f.length != 8 || !f[0].equals("2"))) {
                throw new IllegalArgumentException("unknown format");
            }
            int from = first ? 4 : 5; // where the limits begin
            SenderStatus status = SenderStatus.valueOf(f[1]);
            if (status == SenderStatus.COOLING) {
                throw new IllegalArgumentException("status COOLING is never stored");
            }
            Set<String> tags = null;
            if (!f[from + 2].equals("-")) {
                tags = new LinkedHashSet<>();
                if (!f[from + 2].isEmpty()) {
                    tags.addAll(Arrays.asList(f[from + 2].split(",")));
                }
            }
            // Zero: as configured. Anything else is what setGroupLimits accepts, so that no record, whoever wrote it,
            // can give a pool a limit it cannot evaluate.
            long perSecond = Sender.checkCountOrZero("perSecond", Long.parseLong(f[from]));
            long perDay = Sender.checkCountOrZero("perDay", Long.parseLong(f[from + 1]));
            int stage = Integer.parseInt(f[2]);
            if (stage < 0) {
                throw new IllegalArgumentException("stage must not be negative but was " + stage);
            }
            long stageStart = Long.parseLong(f[3]);
            long activated = first ? stageStart : Long.parseLong(f[4]);
            return new SenderRecord(status, stage, stageStart, activated, perSecond, perDay, tags);
        } catch (IllegalArgumentException e) {
            throw new GuardStorageException(
                    "route", "getRecord", "the record of sender '" + sender + "' is not a sender record: " + text, e);
        }
    }
}
