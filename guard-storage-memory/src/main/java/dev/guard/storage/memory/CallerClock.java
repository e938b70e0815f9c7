package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Ticker;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The cache's clock: the newest {@code nowMicros} that callers have passed, never the wall clock (storage never reads
 * one). It moves forward only, in steps of at least {@link #SLACK_MICROS} so that a hot key does not write one
 * shared field on every call; it therefore lags callers by less than that, which only makes eviction later, never
 * earlier (every holder's lifetime adds {@link #SLACK_NANOS}).
 *
 * <p>Clamped to [0, 2^62] nanoseconds (until about the year 2116) so that the cache's own arithmetic cannot
 * overflow; a clock beyond that stops moving the cache's expiry, which again only makes eviction later.
 */
final class CallerClock implements Ticker {
    /** How far callers may be ahead of the clock before they move it. */
    static final long SLACK_MICROS = 1_000;

    /** {@link #SLACK_MICROS} in nanoseconds: what every holder's lifetime adds for the clock's lag. */
    static final long SLACK_NANOS = SLACK_MICROS * 1_000;

    private static final long MAX_MICROS = (1L << 62) / 1_000;

    private static final VarHandle NEWEST;

    static {
        try {
            NEWEST = MethodHandles.lookup().findVarHandle(CallerClock.class, "newestMicros", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The newest time seen, in microseconds; accessed through {@link #NEWEST}. */
    private volatile long newestMicros;

    /** Notes a caller's time: cheap (one read) unless it is {@link #SLACK_MICROS} ahead of the clock. */
    void observe(long nowMicros) {
        if (nowMicros - SLACK_MICROS > newestMicros) {
            advanceTo(nowMicros);
        }
    }

    /** Moves the clock to {@code nowMicros} exactly, unless it is already there or beyond. */
    void advanceTo(long nowMicros) {
        long target = Math.min(nowMicros, MAX_MICROS);
        long current;
        do {
            current = newestMicros;
            if (current >= target) {
                return;
            }
        } while (!NEWEST.compareAndSet(this, current, target));
    }

    /** The newest time seen, in microseconds. */
    long newestMicros() {
        return newestMicros;
    }

    @Override
    public long read() {
        return newestMicros * 1_000;
    }
}
