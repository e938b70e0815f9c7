package dev.guard;

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

    /**
     * The system clock read from a cached value that a shared daemon thread ({@code guard-clock}) refreshes about
     * every millisecond: one memory read per call instead of a call into the operating system's clock, which costs
     * more than a whole in-memory decision. The default of every builder that takes a ticker.
     *
     * <ul>
     *   <li><b>Resolution</b> about one millisecond; coarser when the machine is overloaded and the thread runs late.
     *   <li><b>Lateness only makes limits stricter.</b> A value behind the true time means buckets refill later and
     *       windows roll later for that moment, never earlier: no limit admits more than it would with an exact
     *       clock. Between processes that share a storage it behaves like clock skew, which the limits tolerate.
     *   <li><b>Monotonic</b>: successive reads never go backwards, even when the wall clock is set back (the value
     *       then holds still until the wall clock catches up).
     *   <li><b>Idle cost</b>: when no one has read the clock for about a second the thread stops ticking and parks;
     *       the next read computes the time itself (exactly, as {@link #precise()} does) and wakes the thread.
     * </ul>
     *
     * <p>The thread starts on the first read, is a daemon and never keeps the JVM alive.
     */
    static Ticker system() {
        return CoarseTicker.SYSTEM;
    }

    /**
     * The system clock read on every call ({@link System#nanoTime()} plus an offset to the epoch refreshed from
     * {@link System#currentTimeMillis()} once a second): microsecond resolution where the platform has it, at the
     * cost of one operating-system clock read per decision (tens of nanoseconds). Pick it over {@link #system()}
     * for limits where one millisecond matters: refill periods or windows below a millisecond, or rates above about
     * 1000 per second per key, where a 1 ms step admits a visible burst at once instead of one token at a time.
     * Between its once-a-second recalibrations it is as monotonic as {@code nanoTime}; a recalibration may move it
     * by the wall clock's adjustment, which the limits treat like clock skew.
     */
    static Ticker precise() {
        return PreciseTicker.SYSTEM;
    }
}
