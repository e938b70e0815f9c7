package dev.guard;

/** Why a {@link Decision} came out as it did. */
public enum Reason {
    /** Every filter let the message through. */
    ALLOWED,
    /** The user is on the blocklist. */
    BLOCKED,
    /** Registration is required and the user is not registered. */
    UNREGISTERED,
    /** The same content was seen within the duplicate window (leading edge: the first copy passed). */
    DUPLICATE,
    /** A fixed-window throttle is exhausted until the window ends. */
    THROTTLED,
    /** A token bucket or sliding window has no permits left. */
    RATE_LIMITED,
    /** A cooldown or gate holds the key until a deadline. */
    COOLDOWN,
    /** A custom filter rejected the message. */
    CUSTOM,
    /**
     * The message has no id for a key a filter needs, and the guard rejects such messages ({@link
     * MissingKeyPolicy#REJECT}); or its tenant could not be read (filter {@code "tenant"}, whatever the policy: see
     * {@link Guard.Builder#tenant}).
     */
    MISSING_KEY,
    /**
     * The storage failed or its breaker is open. With {@link FailurePolicy#failOpen()} the decision allows and says
     * so with this reason; with {@link FailurePolicy#failClosed()} it rejects.
     */
    STORAGE_UNAVAILABLE
}
