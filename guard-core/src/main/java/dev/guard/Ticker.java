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

    /** The system clock, with microsecond precision where the platform has it. */
    static Ticker system() {
        return SystemTicker.INSTANCE;
    }
}

/**
 * The system clock from one {@link System#nanoTime()} read per call: an offset to the epoch, taken from {@link
 * System#currentTimeMillis()}, is refreshed once a second so the value follows the wall clock (and its adjustments)
 * without paying two clock reads on every decision. Between refreshes it is as monotonic as nanoTime; a refresh may
 * move it by the wall clock's adjustment, which the limits treat like any clock skew.
 */
final class SystemTicker implements Ticker {
    static final SystemTicker INSTANCE = new SystemTicker();
    private static final long REFRESH_NANOS = 1_000_000_000L;

    /** An epoch offset and the nanoTime it was taken at; replaced whole, so readers never see half of one. */
    private record Calibration(long nanos, long offsetMicros) {
        static Calibration now() {
            long nanos = System.nanoTime();
            return new Calibration(nanos, System.currentTimeMillis() * 1_000L - nanos / 1_000L);
        }
    }

    private volatile Calibration calibration = Calibration.now();

    private SystemTicker() {}

    @Override
    public long epochMicros() {
        long nanos = System.nanoTime();
        Calibration c = calibration;
        if (nanos - c.nanos > REFRESH_NANOS) {
            c = Calibration.now();
            calibration = c;
        }
        return c.offsetMicros + nanos / 1_000L;
    }
}
