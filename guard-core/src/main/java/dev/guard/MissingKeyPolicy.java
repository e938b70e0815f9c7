package dev.guard;

/** What a filter does with a message that lacks the id its key needs (a user id, a chat id, a custom key). */
public enum MissingKeyPolicy {
    /** The filter does not apply to the message; the other filters still do. The default. */
    SKIP_FILTER,
    /**
     * The message is rejected with {@link Reason#MISSING_KEY} by the first filter that lacks its id, before any
     * storage call: that rejection is the decision even where a stateful filter ahead of it in the chain would also
     * have rejected (a blocked user writing without a chat id is told {@code MISSING_KEY}, not {@code BLOCKED}).
     * Local filters ({@code filter(...)}) run before and still reject first.
     */
    REJECT
}
