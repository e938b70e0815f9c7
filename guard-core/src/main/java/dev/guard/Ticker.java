package dev.guard;

import java.time.Instant;

/**
 * Guard's source of time: microseconds since the epoch. Every decision reads it once and passes it to the storage,
 * which never reads a clock of its own, so tests drive time with a {@link ManualTicker} and never sleep.
 *
 * <p>Wall-clock time rather than {@link System#nanoTime()}: processes that share a storage must agree on it.
 * Implementations are thread-safe and cheap.
 */
@FunctionalInterface
public interface Ticker {

    /** Microseconds since 1970-01-01T00:00:00Z. */
    long epochMicros();

    /** The system clock, with microsecond precision where the platform has it. */
    static Ticker system() {
        return SystemTicker.INSTANCE;
    }
}

/** The system clock read through {@link Instant}'s precise source without allocating on the common path. */
enum SystemTicker implements Ticker {
    INSTANCE;

    @Override
    public long epochMicros() {
        // currentTimeMillis is allocation-free; Instant.now() gives microseconds but allocates. Combine them: the
        // millisecond part from the former keeps the value monotonic enough for rate limits.
        return System.currentTimeMillis() * 1_000L + (System.nanoTime() / 1_000L) % 1_000L;
    }
}
