package dev.guard.internal;

/** Time arithmetic that saturates instead of overflowing; shared by the reference functions and the storages. */
public final class Saturated {
    private Saturated() {}

    /**
     * The wait from {@code nowMicros} until {@code deadlineMicros}, a deadline after it; {@link Long#MAX_VALUE} when
     * the difference overflows (a deadline that never ends read on a clock before 1970).
     */
    public static long until(long deadlineMicros, long nowMicros) {
        long wait = deadlineMicros - nowMicros;
        return wait < 0 ? Long.MAX_VALUE : wait;
    }
}
