package dev.guard.route;

import java.util.Arrays;
import java.util.Objects;
import java.util.Set;

/**
 * What the pool needs to know to route one outgoing message: the recipient chat, whether it is a group, what the
 * content carries (tags such as {@code links} or {@code media} that not every sender may carry) and whether it must
 * stay with one sender. The text itself never reaches the pool.
 *
 * <p>Immutable and thread-safe; {@link #inGroup}, {@link #carrying}, {@link #stickyBy} and {@link #pinnedTo} return
 * copies.
 *
 * <pre>{@code
 * OutboundMessage.to("12345").carrying("links").stickyBy("12345");
 * }</pre>
 */
public final class OutboundMessage {
    private static final String[] NO_TAGS = new String[0];

    private final String chat;
    private final ChatKind kind;
    private final String[] tags;
    private final String affinity;
    private final String pinnedSender;

    private OutboundMessage(String chat, ChatKind kind, String[] tags, String affinity, String pinnedSender) {
        this.chat = chat;
        this.kind = kind;
        this.tags = tags;
        this.affinity = affinity;
        this.pinnedSender = pinnedSender;
    }

    /**
     * A message to the private chat {@code chat}.
     *
     * <p>The chat's limits, gates and recipient block are kept under this text as given: give one chat one spelling.
     * Telegram's {@code @username}s are case-insensitive and WhatsApp takes a number with or without its {@code +},
     * but {@code "@News"} and {@code "@news"}, or {@code "+491701234567"} and {@code "491701234567"}, are two chats
     * to the pool, each with limits of its own (a WhatsApp webhook's {@code wa_id} has no {@code +}).
     *
     * @throws IllegalArgumentException if {@code chat} is null or empty
     */
    public static OutboundMessage to(String chat) {
        if (chat == null || chat.isEmpty()) {
            throw new IllegalArgumentException("chat must not be empty but was " + (chat == null ? "null" : "''"));
        }
        return new OutboundMessage(chat, ChatKind.PRIVATE, NO_TAGS, null, null);
    }

    /**
     * A message to the chat of the numeric id {@code chat}, as Telegram's are: {@link #to(String)} of its decimal text,
     * so that {@code to(-1001234567890L)} and {@code to("-1001234567890")} are one chat (and, with the Telegram presets,
     * a negative id is a group's).
     */
    public static OutboundMessage to(long chat) {
        return to(Long.toString(chat));
    }

    /**
     * This message, to a group (group chat limits apply instead of private chat limits). With the Telegram presets a
     * chat whose id is negative or an {@code @username} is a group's without it (see {@link PlatformPreset#telegram}).
     */
    public OutboundMessage inGroup() {
        return new OutboundMessage(chat, ChatKind.GROUP, tags, affinity, pinnedSender);
    }

    /**
     * This message, carrying content with {@code tags}: only senders allowed (and warmed up enough) to carry every
     * one of them may take it.
     *
     * @throws IllegalArgumentException if {@code tags} or a tag is null, or a tag is empty
     */
    public OutboundMessage carrying(String... tags) {
        if (tags == null) {
            throw new IllegalArgumentException("tags must not be null");
        }
        String[] all = Arrays.copyOf(this.tags, this.tags.length + tags.length);
        for (int i = 0; i < tags.length; i++) {
            all[this.tags.length + i] = Sender.checkTag(tags[i]);
        }
        return new OutboundMessage(chat, kind, all, affinity, pinnedSender);
    }

    /**
     * This message, preferring the sender that {@code key} maps to (rendezvous hashing over the pool's senders, so
     * every process agrees without shared state). When that sender cannot take it now, the pool routes it as usual.
     *
     * <p>A preference, not a promise: outlier ejection is each process's own, from the failures it saw, so while one
     * process has ejected the key's sender it prefers the next sender by the same hashing for the key, and a
     * process that has not goes on using the first. Use {@link #pinnedTo} when the sender must not change.
     *
     * @throws IllegalArgumentException if {@code key} is null or empty
     */
    public OutboundMessage stickyBy(String key) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("key must not be empty but was " + (key == null ? "null" : "''"));
        }
        return new OutboundMessage(chat, kind, tags, key, pinnedSender);
    }

    /**
     * This message, only for {@code sender} (for instance because it reuses a Telegram file id that belongs to that
     * bot). The pool never moves it to another sender: it is delayed while that sender is busy, and rejected while it
     * is blocked or retired or may not carry the message's tags (not at all, or not before a later warm-up stage).
     *
     * @throws IllegalArgumentException if {@code sender} is null or empty
     */
    public OutboundMessage pinnedTo(String sender) {
        return new OutboundMessage(chat, kind, tags, affinity, Sender.checkId(sender));
    }

    /** The recipient chat's id. */
    public String chat() {
        return chat;
    }

    /** Private chat or group. */
    public ChatKind kind() {
        return kind;
    }

    /** The content's tags. */
    public Set<String> tags() {
        return Set.of(Arrays.stream(tags).distinct().toArray(String[]::new));
    }

    String[] tagArray() {
        return tags;
    }

    /** The affinity key, or null. */
    public String affinity() {
        return affinity;
    }

    /** The only sender allowed to take this message, or null. */
    public String pinnedSender() {
        return pinnedSender;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof OutboundMessage m
                && m.chat.equals(chat)
                && m.kind == kind
                && m.tags().equals(tags())
                && Objects.equals(m.affinity, affinity)
                && Objects.equals(m.pinnedSender, pinnedSender);
    }

    @Override
    public int hashCode() {
        return Objects.hash(chat, kind, tags(), affinity, pinnedSender);
    }

    @Override
    public String toString() {
        return "OutboundMessage[chat=" + chat + ", kind=" + kind + ", tags=" + Arrays.toString(tags)
                + (affinity == null ? "" : ", stickyBy=" + affinity)
                + (pinnedSender == null ? "" : ", pinnedTo=" + pinnedSender) + "]";
    }
}
