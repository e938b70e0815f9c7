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
     *   <li><b>Lateness acts like clock skew.</b> A read may be behind the true time by up to the lag (about a
     *       millisecond, more on an overloaded machine), and the lag differs from read to read. A limit therefore may
     *       grant up to one lag's worth of extra refill, or count a message in the window before the one it arrived
     *       in, exactly as with processes whose clocks differ by that much; nothing worse. Use {@link #precise()}
     *       where a millisecond matters.
     *   <li><b>Monotonic</b>: successive reads never go backwards, even when the wall clock is set back (the value
     *       then holds still until the wall clock catches up).
     *   <li><b>Idle cost</b>: when no one has read the clock for about a second the thread ends; the next read
     *       computes the time itself (exactly, as {@link #precise()} does) and starts a new one.
     * </ul>
     *
     * <p>The thread starts on the first read, is a daemon, never keeps the JVM alive, inherits no thread-locals,
     * and, having ended while idle, keeps no class loader reachable after an application is undeployed.
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
