package dev.guard.internal;

/** Time arithmetic that saturates instead of overflowing; shared by the reference functions and the storages. */
public final class Saturated {
    private Saturated() {}

    /**
     * {@code a + b}, or {@link Long#MAX_VALUE} when the sum overflows a long (either way: callers add durations to
     * times, where an overflow means "never").
     */
    public static long plus(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    /**
     * {@code duration * n} for a duration and a count that are not negative, or {@link Long#MAX_VALUE} when the product
     * overflows a long ("never", as for {@link #plus}).
     */
    public static long times(long duration, long n) {
        return n != 0 && duration > Long.MAX_VALUE / n ? Long.MAX_VALUE : duration * n;
    }

    /**
     * The wait from {@code nowMicros} until {@code deadlineMicros}, a deadline after it; {@link Long#MAX_VALUE} when
     * the difference overflows (a deadline that never ends read on a clock before 1970).
     */
    public static long until(long deadlineMicros, long nowMicros) {
        long wait = deadlineMicros - nowMicros;
        return wait < 0 ? Long.MAX_VALUE : wait;
    }
}
