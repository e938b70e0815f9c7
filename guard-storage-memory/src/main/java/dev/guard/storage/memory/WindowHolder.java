package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;

/**
 * A fixed window in one long, so that {@link #tryAcquire} is one compare-and-set and allocates nothing: the common
 * throttle of a bot decided as cheaply as a token bucket.
 *
 * <p>The reference state {@code [index, count]} is held as {@code index << shift | count}, where {@code 2^shift} is
 * the least power of two above the limit, so that reading it takes no division. It expires at the end of its window,
 * {@code (index + 1) * window}; while it lives the current window is its own (a clock that went back stays in the
 * newest window seen), and once it has expired a step sees an empty window, now's. A commit in a live window adds the
 * permits to the count; a commit after it divides now by the window (once per window and key) and starts a new one. A
 * look (zero permits) on an absent key writes an empty window, as the reference does.
 *
 * <p>Only windows whose encoding cannot overflow for times in [0, 2^53) get this holder ({@link #eligible}): every
 * index of such a time, shifted, stays below 2^63, which holds for any window of a millisecond or more with a limit
 * below 2^19 (524,288), and for a window of a microsecond with a limit below 1,024. Other windows and times use {@link
 * ArrayHolder}.
 */
final class WindowHolder extends PackedHolder<FixedWindow> {
    private final long limit;
    private final long windowMicros;
    private final int shift;
    private final long countMask;

    /** An absent window; its state word is the encoded {@code [index, count]}. */
    WindowHolder(String scope, FixedWindow spec, long clockMicros) {
        super(scope, spec);
        this.limit = spec.limit();
        this.windowMicros = spec.windowMicros();
        this.shift = shift(limit);
        this.countMask = (1L << shift) - 1;
        made(clockMicros);
    }

    @Override
    Holder copy() {
        return new WindowHolder(scope, spec, 0);
    }

    /** The bits a count up to {@code limit} takes. */
    private static int shift(long limit) {
        return 64 - Long.numberOfLeadingZeros(limit);
    }

    /** Whether {@code spec} may use this representation: every index of a fast time, shifted, fits. */
    static boolean eligible(FixedWindow spec) {
        long indexes = (FAST_TIME_LIMIT - 1) / spec.windowMicros() + 1;
        int shift = shift(spec.limit());
        return shift < 63 && indexes <= 1L << (63 - shift);
    }

    /**
     * Whether {@code word} holds a window that lives at {@code nowMicros}: not yet ended, and begun no more than
     * {@link LimitSpec#MAX_LEAD_MICROS} after now (a later one reads as absent, as the reference reads it).
     */
    private boolean live(long word, long nowMicros) {
        if (word < 0) {
            return false;
        }
        long end = end(word);
        return nowMicros < end && end - windowMicros <= nowMicros + LimitSpec.MAX_LEAD_MICROS;
    }

    /** The end of the window that {@code word} (present) holds: when it expires. */
    private long end(long word) {
        return ((word >>> shift) + 1) * windowMicros;
    }

    @Override
    long outcome(long word, long permits, long nowMicros) {
        if (permits > limit) {
            return Outcome.NEVER;
        }
        if (!live(word, nowMicros)) {
            return Outcome.admitted(limit - permits);
        }
        long count = word & countMask;
        if (count + permits <= limit) {
            return Outcome.admitted(limit - count - permits);
        }
        return Outcome.rejected(end(word) - nowMicros);
    }

    /** The word after an admitted step: more in the live window, or a new window at now's. */
    private long next(long word, long permits, long nowMicros) {
        return live(word, nowMicros) ? word + permits : (nowMicros / windowMicros) << shift | permits;
    }

    @Override
    long tryAcquire(LimitSpec other, long permits, long nowMicros) {
        if (!accepts(other, nowMicros)) {
            return SLOW;
        }
        while (true) {
            long word = word();
            if (word == DEAD || word == BUSY) {
                return SLOW;
            }
            long outcome = outcome(word, permits, nowMicros);
            long next = Outcome.isAdmitted(outcome) ? next(word, permits, nowMicros) : settle(word, nowMicros);
            if (next == word || casWord(word, next)) {
                return outcome;
            }
        }
    }

    @Override
    long commit(long word, LimitSpec other, long permits, long nowMicros) {
        return next(word, permits, nowMicros);
    }

    @Override
    long[] raw(long word) {
        return word < 0 ? null : new long[] {word >>> shift, word & countMask};
    }

    @Override
    long expiresAtMicros(long word) {
        return word < 0 ? Long.MIN_VALUE : end(word);
    }

    @Override
    long intervalMicros() {
        return Saturated.plus(windowMicros, CallerClock.SLACK_MICROS);
    }
}
