package dev.guard.route;

import dev.guard.limit.LimitSpec;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Objects;
import java.util.Set;

/**
 * One sender account of a {@link SenderPool} (a bot token, a WhatsApp business number) as configured: its id, its
 * A/B group, the content tags it may carry, its own limits where they differ from the platform preset, and its
 * warm-up schedule if it is new. The token itself never reaches Guard: the id is yours to map.
 *
 * <p>Limits and tags changed at run time ({@link SenderPool#setGroupLimits}, {@link SenderPool#addGroupTag}) are
 * kept in the storage and override these values in every pool over it.
 *
 * <p>Immutable and thread-safe.
 *
 * <pre>{@code
 * Sender.builder("bot-7")
 *         .group("b")
 *         .tags("links", "media")
 *         .warmUp(WarmUpSchedule.sendGrid())
 *         .build();
 * }</pre>
 */
public final class Sender {
    /** The group of a sender that names none. */
    public static final String DEFAULT_GROUP = "default";

    private final String id;
    private final String group;
    private final Set<String> tags;
    private final long perSecond;
    private final long perDay;
    private final WarmUpSchedule warmUp;

    private Sender(Builder b) {
        this.id = b.id;
        this.group = b.group;
        this.tags = Collections.unmodifiableSet(new LinkedHashSet<>(b.tags));
        this.perSecond = b.perSecond;
        this.perDay = b.perDay;
        this.warmUp = b.warmUp;
    }

    /** A warm sender in the default group with the preset's limits and no tags. */
    public static Sender of(String id) {
        return builder(id).build();
    }

    /**
     * A builder for sender {@code id}.
     *
     * @throws IllegalArgumentException if {@code id} is null or empty
     */
    public static Builder builder(String id) {
        return new Builder(checkId(id));
    }

    /** The sender's id, unique in its pool. */
    public String id() {
        return id;
    }

    /** Its A/B group. */
    public String group() {
        return group;
    }

    /** The content tags it may carry. */
    public Set<String> tags() {
        return tags;
    }

    /** Its messages per second, or zero for the preset's. */
    public long perSecond() {
        return perSecond;
    }

    /** Its messages per moving 24 hours, or zero for the preset's (which may be unlimited). */
    public long perDay() {
        return perDay;
    }

    /** Its warm-up schedule, or null when it is warm from the start. */
    public WarmUpSchedule warmUp() {
        return warmUp;
    }

    static String checkId(String id) {
        if (id == null || id.isEmpty()) {
            throw new IllegalArgumentException("sender must not be empty but was " + (id == null ? "null" : "''"));
        }
        return id;
    }

    /**
     * A count of messages (a rate, a daily limit, a warm-up allowance): positive and below 2^53, the largest count the
     * limits evaluate exactly (and that every storage, Redis's Lua numbers included, holds exactly).
     */
    static long checkCount(String field, long value) {
        if (value <= 0) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
        if (value >= LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException(field + " must be below 2^53 but was " + value);
        }
        return value;
    }

    /**
     * {@link #checkCount}, or zero: a limit that a record or preset leaves as configured, or unset. Zero being valid,
     * a negative value is refused as negative, not as "not positive".
     */
    static long checkCountOrZero(String field, long value) {
        if (value < 0) {
            throw new IllegalArgumentException(field + " must not be negative but was " + value);
        }
        return value == 0 ? 0 : checkCount(field, value);
    }

    static String checkTag(String tag) {
        if (tag == null || tag.isEmpty()) {
            throw new IllegalArgumentException("tag must not be empty but was " + (tag == null ? "null" : "''"));
        }
        for (int i = 0; i < tag.length(); i++) {
            char c = tag.charAt(i);
            // Tags travel in the storage's sender records, separated by commas: keep them to a safe alphabet.
            if (!(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.')) {
                throw new IllegalArgumentException(
                        "tag must hold only a-z, 0-9, '-', '_' and '.' but was '" + tag + "'");
            }
        }
        if (tag.equals("-")) {
            // A stored tag list of just "-" would read back as "the configured tags" (see SenderRecord).
            throw new IllegalArgumentException(
                    "tag must not be '-', which sender records use for the configured tags, but was '-'");
        }
        return tag;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Sender s
                && s.id.equals(id)
                && s.group.equals(group)
                && s.tags.equals(tags)
                && s.perSecond == perSecond
                && s.perDay == perDay
                && Objects.equals(s.warmUp, warmUp);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, group, tags, perSecond, perDay, warmUp);
    }

    @Override
    public String toString() {
        return "Sender[" + id + ", group=" + group + ", tags=" + tags
                + (perSecond == 0 ? "" : ", perSecond=" + perSecond)
                + (perDay == 0 ? "" : ", perDay=" + perDay)
                + (warmUp == null ? "" : ", warmUp=" + warmUp) + "]";
    }

    /** Builds a {@link Sender}; not thread-safe. */
    public static final class Builder {
        private final String id;
        private String group = DEFAULT_GROUP;
        private final Set<String> tags = new LinkedHashSet<>();
        private long perSecond;
        private long perDay;
        private WarmUpSchedule warmUp;

        private Builder(String id) {
            this.id = id;
        }

        /**
         * Its A/B group (default {@value #DEFAULT_GROUP}).
         *
         * @throws IllegalArgumentException if {@code group} is null or empty
         */
        public Builder group(String group) {
            if (group == null || group.isEmpty()) {
                throw new IllegalArgumentException(
                        "group must not be empty but was " + (group == null ? "null" : "''"));
            }
            this.group = group;
            return this;
        }

        /**
         * Adds content tags it may carry ({@code links}, {@code media}, ...): all of them, or none when one is bad.
         *
         * @throws IllegalArgumentException if {@code tags} is null, or a tag is null, empty, {@code "-"} alone, or
         *     holds characters other than a-z, 0-9, '-', '_', '.'
         */
        public Builder tags(String... tags) {
            if (tags == null) {
                throw new IllegalArgumentException("tags must not be null");
            }
            // Every tag checked before any is added: a bad one leaves the builder as it was.
            String[] checked = tags.clone();
            for (String tag : checked) {
                checkTag(tag);
            }
            this.tags.addAll(Arrays.asList(checked));
            return this;
        }

        /**
         * Its own messages per second instead of the preset's.
         *
         * @throws IllegalArgumentException if {@code perSecond} is not positive or not below 2^53
         */
        public Builder perSecond(long perSecond) {
            this.perSecond = checkCount("perSecond", perSecond);
            return this;
        }

        /**
         * Its own messages per moving 24 hours instead of the preset's: counted in one-hour steps, so a message stops
         * counting between 24 and 25 hours after it was sent, never at midnight.
         *
         * @throws IllegalArgumentException if {@code perDay} is not positive or not below 2^53
         */
        public Builder perDay(long perDay) {
            this.perDay = checkCount("perDay", perDay);
            return this;
        }

        /**
         * Warms it up on {@code schedule}, starting at stage 0 the first time a pool meets it in the storage.
         *
         * @throws IllegalArgumentException if {@code schedule} is null
         */
        public Builder warmUp(WarmUpSchedule schedule) {
            if (schedule == null) {
                throw new IllegalArgumentException("schedule must not be null");
            }
            this.warmUp = schedule;
            return this;
        }

        /** The sender. */
        public Sender build() {
            return new Sender(this);
        }
    }
}
