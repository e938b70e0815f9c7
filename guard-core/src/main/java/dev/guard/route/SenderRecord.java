package dev.guard.route;

import dev.guard.spi.GuardStorageException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The slowly changing state of one sender that every pool over a storage shares, kept as a versioned record: its
 * status, its warm-up stage and when the stage began, and the limits and tags an operator set at run time (zero and
 * null: the configured ones). Encoded as one line of text, {@code 1|status|stage|stageStartMicros|perSecond|perDay|
 * tags}, where tags is {@code -} for "as configured" or a comma-separated list (tags cannot hold '|' or ',').
 *
 * <p>The encoding is injective: {@link #encode()} refuses the tag sets it could not read back, an empty tag, a tag
 * holding ',' or '|', and the set of the one tag {@code "-"}; {@link Sender#checkTag} keeps them out of every record.
 */
record SenderRecord(
        SenderStatus status, int stage, long stageStartMicros, long perSecond, long perDay, Set<String> tags) {

    static SenderRecord initial(long nowMicros) {
        return new SenderRecord(SenderStatus.ACTIVE, 0, nowMicros, 0, 0, null);
    }

    SenderRecord withStatus(SenderStatus status) {
        return new SenderRecord(status, stage, stageStartMicros, perSecond, perDay, tags);
    }

    SenderRecord withStage(int stage, long stageStartMicros) {
        return new SenderRecord(status, stage, stageStartMicros, perSecond, perDay, tags);
    }

    SenderRecord withLimits(long perSecond, long perDay) {
        return new SenderRecord(status, stage, stageStartMicros, perSecond, perDay, tags);
    }

    SenderRecord withTags(Set<String> tags) {
        return new SenderRecord(status, stage, stageStartMicros, perSecond, perDay, tags);
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
        return ("1|" + status + "|" + stage + "|" + stageStartMicros + "|" + perSecond + "|" + perDay + "|" + t)
                .getBytes(StandardCharsets.UTF_8);
    }

    static SenderRecord decode(String sender, byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        String[] f = text.split("\\|", -1);
        try {
            if (f.length != 7 || !f[0].equals("1")) {
                throw new IllegalArgumentException("unknown format");
            }
            SenderStatus status = SenderStatus.valueOf(f[1]);
            if (status == SenderStatus.COOLING) {
                throw new IllegalArgumentException("status COOLING is never stored");
            }
            Set<String> tags = null;
            if (!f[6].equals("-")) {
                tags = new LinkedHashSet<>();
                if (!f[6].isEmpty()) {
                    tags.addAll(Arrays.asList(f[6].split(",")));
                }
            }
            // Zero: as configured. Anything else is what setGroupLimits accepts, so that no record, whoever wrote it,
            // can give a pool a limit it cannot evaluate.
            long perSecond = Sender.checkCountOrZero("perSecond", Long.parseLong(f[4]));
            long perDay = Sender.checkCountOrZero("perDay", Long.parseLong(f[5]));
            int stage = Integer.parseInt(f[2]);
            if (stage < 0) {
                throw new IllegalArgumentException("stage must not be negative but was " + stage);
            }
            return new SenderRecord(status, stage, Long.parseLong(f[3]), perSecond, perDay, tags);
        } catch (IllegalArgumentException e) {
            throw new GuardStorageException(
                    "route", "getRecord", "the record of sender '" + sender + "' is not a sender record: " + text, e);
        }
    }
}
