package dev.guard.limit;

import java.time.Duration;
import java.util.Arrays;

/**
 * An exact sliding window: at most {@code limit} permits in <em>any</em> interval of length {@code window}. It
 * keeps one timestamp per admitted permit, so its state grows with {@code limit}; {@code limit} is capped at
 * {@value #MAX_LIMIT}. For larger limits use {@link SlidingWindowCounter}.
 *
 * <p>A permit admitted at {@code t} counts while {@code now < t + window}. State: the timestamps of the counted
 * permits, ascending; numbers out of that order are another limit's state (under the same key), read as absent.
 */
public final class SlidingWindowLog implements LimitSpec {
    /** The largest limit a log accepts; its state holds one timestamp per permit. */
    public static final long MAX_LIMIT = 10_000;

    private final long limit;
    private final Duration window;
    private final long windowMicros;

    /**
     * Creates an exact sliding window of {@code limit} permits per {@code window}.
     *
     * @throws IllegalArgumentException if {@code limit} is not in 1..{@value #MAX_LIMIT}, or {@code window} is not
     *     positive or not a whole number of microseconds
     */
    public SlidingWindowLog(long limit, Duration window) {
        this.limit = Checks.positive("limit", limit);
        if (limit > MAX_LIMIT) {
            throw new IllegalArgumentException("limit must be at most " + MAX_LIMIT + " for an exact sliding window log"
                    + " but was " + limit + "; use SlidingWindowCounter for larger limits");
        }
        this.windowMicros = Checks.positiveMicros("window", window);
        this.window = window;
    }

    /** The most permits in any interval of length {@link #window()}. */
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
        return "sliding_log";
    }

    /**
     * {@code state} unless another limit wrote it: timestamps out of ascending order (a duplicate window's item beside
     * its admission time), or a timestamp more than {@link LimitSpec#MAX_LEAD_MICROS} after now at either end (the
     * log is ascending, so the ends bound it; a deadline that never ends, read as a log, is one).
     */
    private static long[] live(long[] state, long nowMicros) {
        state = Checks.undatedEnds(state, 0, nowMicros);
        return state == null || ascending(state) ? state : null;
    }

    /** Whether {@code state} is in ascending order, in one pass without a branch per number. */
    private static boolean ascending(long[] state) {
        boolean descends = false;
        for (int i = 1; i < state.length; i++) {
            descends |= state[i] < state[i - 1];
        }
        return !descends;
    }

    /** Index of the first timestamp still counted at {@code nowMicros}. */
    private int firstLive(long[] state, long nowMicros) {
        long start = Checks.windowStart(nowMicros, windowMicros);
        int i = 0;
        while (i < state.length && state[i] < start) {
            i++;
        }
        return i;
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        Checks.permits(permits);
        if (permits > limit) {
            return Outcome.NEVER;
        }
        int first = state == null ? 0 : firstLive(state, nowMicros);
        long count = state == null ? 0 : state.length - first;
        long excess = count + permits - limit;
        if (excess <= 0) {
            return Outcome.admitted(-excess);
        }
        // The excess-th oldest live permit must leave the window first.
        return Outcome.rejected(state[first + (int) excess - 1] + windowMicros - nowMicros);
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        int first = state == null ? 0 : firstLive(state, nowMicros);
        int live = state == null ? 0 : state.length - first;
        // As many permits leave as come (a steady rate): the same array, shifted, rather than a new one.
        long[] next = state != null && live + permits == state.length ? state : new long[live + (int) permits];
        if (live > 0) {
            System.arraycopy(state, first, next, 0, live);
        }
        // A clock that went backwards must not break the ascending order.
        long stamp = live > 0 ? Math.max(nowMicros, next[live - 1]) : nowMicros;
        Arrays.fill(next, live, next.length, stamp);
        return next;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = live(state, nowMicros);
        if (state == null || state.length == 0) {
            return 0;
        }
        return Math.max(0, state[state.length - 1] + windowMicros - nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return windowMicros;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SlidingWindowLog w && w.limit == limit && w.windowMicros == windowMicros;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(limit) * 31 + Long.hashCode(windowMicros) + 7;
    }

    @Override
    public String toString() {
        return "SlidingWindowLog[limit=" + limit + ", window=" + window + "]";
    }
}
