package dev.guard;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Objects;

/**
 * The answer of a {@link Guard} for one message: a value, never an exception.
 *
 * <p>Its components agree, and the constructor refuses ones that do not: an allowed decision has the reason {@link
 * Reason#ALLOWED}, or {@link Reason#STORAGE_UNAVAILABLE} under {@link FailurePolicy#failOpen()}, and a {@code
 * retryAfter} of zero; a rejection has any reason but {@link Reason#ALLOWED} and a {@code remaining} of 0; {@code
 * filter} is null exactly when the reason is {@link Reason#ALLOWED}; neither {@code retryAfter} nor {@code remaining}
 * is negative.
 *
 * @param allowed whether the handler should run
 * @param filter the name of the filter that rejected, {@code "storage"} for a storage failure, {@code "tenant"} for a
 *     message whose tenant could not be read (see {@link Guard.Builder#tenant}), or {@code null} when every filter
 *     allowed (the reason {@link Reason#ALLOWED})
 * @param reason why
 * @param retryAfter when the same message could pass if nothing else happens: {@link Duration#ZERO} when allowed,
 *     {@link #NEVER} when waiting does not help (blocked for good, unregistered, custom, a missing key); for a
 *     blocklist entry with an expiry, the time until it expires; for a storage failure under {@link
 *     FailurePolicy#failClosed()}, the time until the breaker lets a call try the storage again (zero while it is
 *     closed)
 * @param remaining the fewest permits left across the quota filters (buckets, windows, throttles) after this message
 *     when allowed, {@link Long#MAX_VALUE} when no quota applied, 0 when rejected
 * @param degraded whether the decision was made without the configured storage (a fallback storage, or the
 *     fail-open or fail-closed policy)
 */
public record Decision(
        boolean allowed, String filter, Reason reason, Duration retryAfter, long remaining, boolean degraded) {

    /** The retry-after of rejections that no wait cures. */
    public static final Duration NEVER = ChronoUnit.FOREVER.getDuration();

    private static final Decision ALLOWED_UNLIMITED =
            new Decision(true, null, Reason.ALLOWED, Duration.ZERO, Long.MAX_VALUE, false);

    /** Allowed decisions with few permits left, the common case of small per-user quotas, shared. */
    private static final Decision[] ALLOWED_SMALL = new Decision[256];

    static {
        for (int i = 0; i < ALLOWED_SMALL.length; i++) {
            ALLOWED_SMALL[i] = new Decision(true, null, Reason.ALLOWED, Duration.ZERO, i, false);
        }
    }

    /**
     * Creates a decision; prefer the factories.
     *
     * @throws NullPointerException if {@code reason} or {@code retryAfter} is null
     * @throws IllegalArgumentException if {@code retryAfter} or {@code remaining} is negative, or the components
     *     contradict each other: {@code reason} is {@link Reason#ALLOWED} for a rejection or another reason than it or
     *     {@link Reason#STORAGE_UNAVAILABLE} for an allowed decision; {@code filter} is set with {@link
     *     Reason#ALLOWED} or null with any other reason; {@code retryAfter} is not zero when allowed; {@code
     *     remaining} is not 0 when rejected
     */
    public Decision {
        Objects.requireNonNull(reason, "reason must not be null");
        Objects.requireNonNull(retryAfter, "retryAfter must not be null");
        // A few compares on the hot path: the message is made elsewhere, and only to throw.
        if (retryAfter.isNegative()
                || remaining < 0
                || (allowed != (reason == Reason.ALLOWED) && reason != Reason.STORAGE_UNAVAILABLE)
                || (filter == null) != (reason == Reason.ALLOWED)
                || (allowed ? !retryAfter.isZero() : remaining != 0)) {
            throw invalid(allowed, filter, reason, retryAfter, remaining);
        }
    }

    /** The error for components that the canonical constructor refused, naming the first it found wrong. */
    private static IllegalArgumentException invalid(
            boolean allowed, String filter, Reason reason, Duration retryAfter, long remaining) {
        String message;
        if (retryAfter.isNegative()) {
            message = "retryAfter must not be negative but was " + retryAfter;
        } else if (remaining < 0) {
            message = "remaining must not be negative but was " + remaining;
        } else if (allowed != (reason == Reason.ALLOWED) && reason != Reason.STORAGE_UNAVAILABLE) {
            message = "reason " + reason + " contradicts allowed=" + allowed;
        } else if (filter == null && reason != Reason.ALLOWED) {
            message = "filter must not be null with reason " + reason;
        } else if (filter != null && reason == Reason.ALLOWED) {
            message = "filter must be null with reason ALLOWED but was \"" + filter + "\"";
        } else if (allowed) {
            message = "retryAfter must be zero when allowed but was " + retryAfter;
        } else {
            message = "remaining must be 0 when rejected but was " + remaining;
        }
        return new IllegalArgumentException(message);
    }

    /**
     * An allowed decision with {@code remaining} permits left ({@link Long#MAX_VALUE}: no quota applied).
     *
     * @throws IllegalArgumentException if {@code remaining} is negative
     */
    public static Decision allowed(long remaining) {
        if (remaining == Long.MAX_VALUE) {
            return ALLOWED_UNLIMITED;
        }
        return remaining >= 0 && remaining < ALLOWED_SMALL.length
                ? ALLOWED_SMALL[(int) remaining]
                : new Decision(true, null, Reason.ALLOWED, Duration.ZERO, remaining, false);
    }

    /**
     * A rejection by {@code filter} for {@code reason}, retryable after {@code retryAfter}.
     *
     * @throws NullPointerException if {@code reason} or {@code retryAfter} is null
     * @throws IllegalArgumentException if {@code filter} is null, {@code reason} is {@link Reason#ALLOWED} or {@code
     *     retryAfter} is negative
     */
    public static Decision rejected(String filter, Reason reason, Duration retryAfter) {
        return new Decision(false, filter, reason, retryAfter, 0, false);
    }

    /** Whether waiting {@link #retryAfter()} can make the message pass. */
    public boolean retryable() {
        return allowed || !retryAfter.equals(NEVER);
    }

    /**
     * {@link #retryAfter()} in whole seconds, rounded up: what to tell a user ("try again in 7 s"), where a wait of
     * 200 ms reads as 1 s rather than 0. Zero when allowed or no wait is needed; {@link Long#MAX_VALUE} for {@link
     * #NEVER}.
     */
    public long retryAfterSeconds() {
        if (retryAfter.equals(NEVER)) {
            return Long.MAX_VALUE;
        }
        long seconds = retryAfter.getSeconds();
        // Saturated: the longest finite waits round up past Long.MAX_VALUE seconds, which would read as negative.
        return retryAfter.getNano() > 0 && seconds < Long.MAX_VALUE ? seconds + 1 : seconds;
    }

    /** Whether the message was rejected. */
    public boolean rejected() {
        return !allowed;
    }

    /** This decision marked as made without the configured storage. */
    Decision asDegraded() {
        return degraded ? this : new Decision(allowed, filter, reason, retryAfter, remaining, true);
    }
}
