package dev.guard.route;

/**
 * Where a sender stands. {@link #ACTIVE}, {@link #BLOCKED} and {@link #RETIRED} are kept in the storage and shared
 * by every pool over it; {@link #COOLING} is derived: an active sender behind a gate (a platform's {@code
 * retry_after}) that this pool knows of.
 */
public enum SenderStatus {
    /** Takes traffic. */
    ACTIVE,
    /** Active, but behind a gate until a deadline; takes traffic again afterwards on its own. */
    COOLING,
    /** The platform blocked it: takes no traffic until set {@link #ACTIVE} again by an operator. */
    BLOCKED,
    /** Taken out of service on purpose: takes no traffic until set {@link #ACTIVE} again. */
    RETIRED
}
