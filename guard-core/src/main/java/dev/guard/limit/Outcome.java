package dev.guard.limit;

/**
 * The outcome of evaluating one limit step, packed into a {@code long} so that the hot path allocates nothing.
 *
 * <p>A non-negative value means <em>admitted</em> and is the number of permits that remain after this step.
 * A negative value means <em>rejected</em> and encodes the wait, in microseconds, after which the same request
 * could be admitted if nothing else happens: {@code -(retryAfterMicros + 1)}. {@link #NEVER} means the request can
 * never be admitted (more permits than the limit allows). A rejection waits at least a microsecond, so {@code -1} is
 * not an outcome {@link #rejected} makes; it reads as a wait of one microsecond, as {@code -2} does.
 *
 * <p>Backends return these values from {@link dev.guard.spi.Storage}; everything else should use the accessors.
 */
public final class Outcome {
    /** A rejection that no amount of waiting cures: the request asks for more than the limit's capacity. */
    public static final long NEVER = Long.MIN_VALUE;

    private Outcome() {}

    /** An admitted outcome with {@code remaining} permits left (clamped at zero). */
    public static long admitted(long remaining) {
        return Math.max(0, remaining);
    }

    /** A rejected outcome that can be retried after {@code retryAfterMicros} (at least 1). */
    public static long rejected(long retryAfterMicros) {
        if (retryAfterMicros >= Long.MAX_VALUE) {
            return NEVER;
        }
        return -Math.max(1, retryAfterMicros) - 1;
    }

    /** Whether the outcome admits the request. */
    public static boolean isAdmitted(long outcome) {
        return outcome >= 0;
    }

    /** The permits that remain after an admitted outcome; zero for a rejection. */
    public static long remaining(long outcome) {
        return outcome >= 0 ? outcome : 0;
    }

    /**
     * The wait in microseconds after which a rejected request could pass; zero for an admitted outcome and
     * {@link Long#MAX_VALUE} for {@link #NEVER}.
     */
    public static long retryAfterMicros(long outcome) {
        if (outcome >= 0) {
            return 0;
        }
        if (outcome == NEVER) {
            return Long.MAX_VALUE;
        }
        return Math.max(1, -outcome - 1);
    }

    /** A readable form for logs and test failures. */
    public static String toString(long outcome) {
        if (isAdmitted(outcome)) {
            return "admitted(remaining=" + outcome + ")";
        }
        return outcome == NEVER ? "rejected(never)" : "rejected(retryAfterMicros=" + retryAfterMicros(outcome) + ")";
    }
}
