package dev.guard.limit;

import java.time.Duration;

/**
 * Leading-edge duplicate suppression on one key: the key remembers the items (content fingerprints) admitted in the
 * last {@code window}, and an item it remembers is rejected until the window of its first copy ends; copies do
 * <em>not</em> extend it. One key per conversation (a user in a chat) holds every recent message's fingerprint, so a
 * message costs an update of that key rather than a key of its own.
 *
 * <p>The step's {@code permits} carry the item: a number in {@code [0, 2^53)} (exact in every backend, Lua's
 * doubles included), such as 53 bits of a content hash. A key remembers at most {@code capacity} items: when a
 * further item is admitted while all of them are still in their window, the oldest is forgotten early, so a copy of
 * it would pass. That bounds the state of a key however fast distinct messages come; a conversation that sends more
 * than {@code capacity} distinct messages per {@code window} is rare, and the other limits of a chain usually stop
 * it first (a rejected message is not remembered).
 *
 * <p>State: pairs {@code [item, admittedAtMicros]}, oldest first, at most {@code capacity} of them. A state of
 * another shape (an odd length, more pairs than the capacity: another limit wrote the key) reads as absent.
 */
public final class DuplicateWindow implements LimitSpec {
    /** The largest capacity a window accepts; its state holds two numbers per item. */
    public static final int MAX_CAPACITY = 1_000;

    private final Duration window;
    private final long windowMicros;
    private final int capacity;

    /**
     * Creates a window that remembers up to {@code capacity} items for {@code window} each.
     *
     * @throws IllegalArgumentException if {@code window} is not positive or not a whole number of microseconds, or
     *     {@code capacity} is not in 1..{@value #MAX_CAPACITY}
     */
    public DuplicateWindow(Duration window, int capacity) {
        this.windowMicros = Checks.positiveMicros("window", window);
        this.window = window;
        if (capacity < 1 || capacity > MAX_CAPACITY) {
            throw new IllegalArgumentException(
                    "capacity must be between 1 and " + MAX_CAPACITY + " but was " + capacity);
        }
        this.capacity = capacity;
    }

    /** How long an admitted item is remembered. */
    public Duration window() {
        return window;
    }

    /** The window in microseconds. */
    public long windowMicros() {
        return windowMicros;
    }

    /** The most items a key remembers at once. */
    public int capacity() {
        return capacity;
    }

    @Override
    public String kind() {
        return "duplicate_window";
    }

    /**
     * Checks that {@code item} is one this spec can carry: in {@code [0, 2^53)}.
     *
     * @throws IllegalArgumentException naming the value otherwise
     */
    public static long item(long item) {
        if (item < 0 || item >= EXACT_LIMIT) {
            throw new IllegalArgumentException(
                    "a duplicate window's item (the step's permits) must be in [0, 2^53)" + " but was " + item);
        }
        return item;
    }

    /**
     * {@code state} if it is pairs, at most {@link #capacity} of them, admitted no later than {@link
     * LimitSpec#MAX_LEAD_MICROS} after now (the oldest and the newest, which bound the others); else null (another
     * limit's state).
     */
    private long[] live(long[] state, long nowMicros) {
        if (state == null || (state.length & 1) != 0 || state.length > 2 * capacity) {
            return null;
        }
        return Checks.undatedEnds(state, 1, nowMicros);
    }

    /** Index of the first pair still in its window at {@code nowMicros}: the pairs are oldest first. */
    private int firstLive(long[] state, long nowMicros) {
        long start = Checks.windowStart(nowMicros, windowMicros);
        int i = 0;
        while (i < state.length && state[i + 1] < start) {
            i += 2;
        }
        return i;
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        item(permits);
        state = live(state, nowMicros);
        if (state != null) {
            for (int i = firstLive(state, nowMicros); i < state.length; i += 2) {
                if (state[i] == permits) {
                    return Outcome.rejected(state[i + 1] + windowMicros - nowMicros);
                }
            }
        }
        return Outcome.admitted(0);
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        item(permits);
        state = live(state, nowMicros);
        int first = state == null ? 0 : firstLive(state, nowMicros);
        int live = state == null ? 0 : state.length - first;
        if (live == 2 * capacity) {
            first += 2; // full: the oldest item is forgotten early
            live -= 2;
        }
        // As many items leave as come (a steady conversation): the same array, shifted, rather than a new one.
        long[] next = state != null && live + 2 == state.length ? state : new long[live + 2];
        if (live > 0) {
            System.arraycopy(state, first, next, 0, live);
        }
        next[live] = permits;
        // A clock that went backwards must not break the oldest-first order.
        next[live + 1] = live > 0 ? Math.max(nowMicros, next[live - 1]) : nowMicros;
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
        return o instanceof DuplicateWindow w && w.windowMicros == windowMicros && w.capacity == capacity;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(windowMicros) * 31 + capacity + 13;
    }

    @Override
    public String toString() {
        return "DuplicateWindow[window=" + window + ", capacity=" + capacity + "]";
    }
}
