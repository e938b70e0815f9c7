package dev.guard.limit;

import java.time.Duration;

/**
 * An approximate sliding window in constant space: the window is cut into {@code buckets} sub-buckets of
 * {@code window / buckets}, each counting the permits admitted in it, and a request is admitted when the current
 * sub-bucket and the {@code buckets} before it hold at most {@code limit} permits with it.
 *
 * <p><b>Error bound.</b> Because the counted span (between {@code window} and {@code window + window/buckets}
 * long) always covers the last {@code window}, the counter <em>never</em> admits more than {@code limit} permits
 * in any interval of length {@code window}: it errs only on the safe side. A permit stops counting between
 * {@code window} and {@code window + window/buckets} after it was admitted, so compared with the exact
 * {@link SlidingWindowLog} it may reject a request up to {@code window/buckets} early. More buckets, less error:
 * with 10 buckets the window behaves like one between 1.0 and 1.1 times its length.
 *
 * <p>State: {@code [newestBucketIndex, count of bucket i mod (buckets+1) ...]}, {@code buckets + 2} longs.
 */
public final class SlidingWindowCounter implements LimitSpec {
    /** The most sub-buckets a counter accepts. */
    public static final int MAX_BUCKETS = 1_000;

    private final long limit;
    private final Duration window;
    private final int buckets;
    private final long bucketMicros;

    /**
     * Creates a counter of {@code limit} permits per {@code window} with {@code buckets} sub-buckets.
     *
     * @throws IllegalArgumentException if a value is not positive, {@code buckets} exceeds {@value #MAX_BUCKETS},
     *     or the window is not a whole number of microseconds per sub-bucket
     */
    public SlidingWindowCounter(long limit, Duration window, int buckets) {
        this.limit = Checks.positive("limit", limit);
        Checks.exact("limit", limit);
        long windowMicros = Checks.positiveMicros("window", window);
        if (buckets <= 0 || buckets > MAX_BUCKETS) {
            throw new IllegalArgumentException("buckets must be between 1 and " + MAX_BUCKETS + " but was " + buckets);
        }
        if (windowMicros % buckets != 0) {
            throw new IllegalArgumentException("window " + window + " must be a whole number of microseconds per"
                    + " bucket but does not divide into " + buckets + " buckets");
        }
        this.window = window;
        this.buckets = buckets;
        this.bucketMicros = windowMicros / buckets;
    }

    /** The most permits in any interval of length {@link #window()}. */
    public long limit() {
        return limit;
    }

    /** The window's length. */
    public Duration window() {
        return window;
    }

    /** The number of sub-buckets the window is cut into. */
    public int buckets() {
        return buckets;
    }

    /** The length of one sub-bucket in microseconds. */
    public long bucketMicros() {
        return bucketMicros;
    }

    @Override
    public String kind() {
        return "sliding_counter";
    }

    private int slots() {
        return buckets + 1;
    }

    /**
     * {@code state} unless another limit wrote it: of another shape, or whose newest bucket begins more than {@link
     * LimitSpec#MAX_LEAD_MICROS} after now.
     */
    private long[] live(long[] state, long nowMicros) {
        return Checks.undatedIndex(Checks.shaped(state, 1 + slots()), bucketMicros, nowMicros);
    }

    private long current(long[] state, long nowMicros) {
        long index = Math.floorDiv(nowMicros, bucketMicros);
        return state == null ? index : Math.max(index, state[0]);
    }

    /** The count of bucket {@code index} in {@code state}, zero if it is not held. */
    private long countOf(long[] state, long index) {
        long newest = state[0];
        if (index > newest || index <= newest - slots()) {
            return 0;
        }
        return state[1 + (int) Math.floorMod(index, (long) slots())];
    }

    private long counted(long[] state, long current) {
        if (state == null) {
            return 0;
        }
        long sum = 0;
        for (long i = current - buckets; i <= current; i++) {
            sum += countOf(state, i);
        }
        return sum;
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        Checks.permits(permits);
        if (permits > limit) {
            return Outcome.NEVER;
        }
        long current = current(state, nowMicros);
        long counted = counted(state, current);
        long excess = counted + permits - limit;
        if (excess <= 0) {
            return Outcome.admitted(-excess);
        }
        // Step forward bucket by bucket until enough old counts have left the counted span.
        long dropped = 0;
        for (long m = 1; m <= slots(); m++) {
            dropped += countOf(state, current - buckets + m - 1);
            if (dropped >= excess) {
                return Outcome.rejected((current + m) * bucketMicros - nowMicros);
            }
        }
        throw new IllegalStateException("unreachable: permits " + permits + " within limit " + limit);
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = live(state, nowMicros);
        long current = current(state, nowMicros);
        long[] next = state == null ? new long[slots() + 1] : state;
        if (state != null) {
            // Clear the slots of buckets that fell out between the newest held bucket and the current one.
            long from = Math.max(state[0] + 1, current - buckets);
            for (long i = from; i <= current; i++) {
                next[1 + (int) Math.floorMod(i, (long) slots())] = 0;
            }
        }
        next[0] = current;
        next[1 + (int) Math.floorMod(current, (long) slots())] += permits;
        return next;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = live(state, nowMicros);
        if (state == null) {
            return 0;
        }
        // The newest bucket stops counting once bucket newest + buckets + 1 begins.
        return Math.max(0, (state[0] + slots()) * bucketMicros - nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return slots() * bucketMicros;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SlidingWindowCounter c
                && c.limit == limit
                && c.bucketMicros == bucketMicros
                && c.buckets == buckets;
    }

    @Override
    public int hashCode() {
        return (Long.hashCode(limit) * 31 + Long.hashCode(bucketMicros)) * 31 + buckets;
    }

    @Override
    public String toString() {
        return "SlidingWindowCounter[limit=" + limit + ", window=" + window + ", buckets=" + buckets + "]";
    }
}
