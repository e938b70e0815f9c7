package dev.guard;

/** What a filter does with a message that lacks the id its key needs (a user id, a chat id, a custom key). */
public enum MissingKeyPolicy {
    /** The filter does not apply to the message; the other filters still do. The default. */
    SKIP_FILTER,
    /** The message is rejected with {@link Reason#MISSING_KEY}. */
    REJECT
}
