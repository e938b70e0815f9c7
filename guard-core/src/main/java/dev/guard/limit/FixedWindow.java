package dev.guard.limit;

import java.time.Duration;

/**
 * A fixed window ("throttle"): at most {@code limit} permits per window, windows aligned to the epoch
 * ({@code [k*window, (k+1)*window)}), so every process that shares the storage agrees on their edges. The cheapest
 * limit; its known weakness is a burst of up to {@code 2*limit} across a window edge.
 *
 * <p>State: {@code [windowIndex, count]}.
 */
public final class FixedWindow implements LimitSpec {
    private final long limit;
    private final Duration window;
    private final long windowMicros;

    /**
     * Creates a fixed window of {@code limit} permits per {@code window}.
     *
     * @throws IllegalArgumentException if {@code limit} or {@code window} is not positive, or {@code window} is not a
     *     whole number of microseconds
     */
    public FixedWindow(long limit, Duration window) {
        this.limit = Checks.positive("limit", limit);
        this.windowMicros = Checks.positiveMicros("window", window);
        this.window = window;
        Checks.exact("limit", limit);
    }

    /** The most permits per window. */
    public long limit() {
        return limit;
    }

    /** The window's length. */
    public Duration window() {
        return window;
    }

    /** The window's length in microseconds. */
    public long windowMicros() {
        return windowMicros;
    }

    @Override
    public String kind() {
        return "fixed_window";
    }

    /**
     * {@code state} unless another limit wrote it: of another shape, or of a window that begins more than {@link
     * LimitSpec#MAX_LEAD_MICROS} after now (a shorter window's index, before a deploy lengthened it).
     */
    private long[] live(long[] state, long nowMicros) {
        return Checks.undatedIndex(Checks.shaped(state, 2), windowMicros, nowMicros);
    }

    private long index(long[] state, long nowMicros) {
        long index = Math.floorDiv(nowMicros, windowMicros);
        // A clock that went backwards stays in the newest window seen.
        return state == null ? index : Math.max(index, state[0]);
    }

    private static long count(long[] state, long index) {
        return state != null && state[0] == index ? state[1] : 0;
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        Checks.permits(permits);
        if (permits > limit) {
            return Outcome.NEVER;
        }
        long index = index(state, nowMicros);
        long count = count(state, index);
        if (count + permits <= limit) {
            return Outcome.admitted(limit - count - permits);
        }
        return Outcome.rejected((index + 1) * windowMicros - nowMicros);
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        long index = index(state, nowMicros);
        long count = count(state, index) + permits;
        if (state == null) {
            return new long[] {index, count};
        }
        state[0] = index;
        state[1] = count;
        return state;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = live(state, nowMicros);
        if (state == null) {
            return 0;
        }
        return Math.max(0, (state[0] + 1) * windowMicros - nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return windowMicros;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FixedWindow w && w.limit == limit && w.windowMicros == windowMicros;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(limit) * 31 + Long.hashCode(windowMicros);
    }

    @Override
    public String toString() {
        return "FixedWindow[limit=" + limit + ", window=" + window + "]";
    }
}
