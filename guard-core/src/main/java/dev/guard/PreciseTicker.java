package dev.guard;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;

/**
 * The system clock from one nanoTime read per call: an offset to the epoch, taken from the wall clock in
 * milliseconds, is refreshed once a second so the value follows the wall clock (and its adjustments) without paying
 * two clock reads on every decision. Between refreshes it is as monotonic as nanoTime; a refresh may move it by the
 * wall clock's adjustment, which the limits treat like any clock skew.
 */
final class PreciseTicker implements Ticker {
    static final PreciseTicker SYSTEM = new PreciseTicker(System::nanoTime, System::currentTimeMillis);

    /** How long an epoch offset is used before it is taken again. */
    static final long CALIBRATION_NANOS = 1_000_000_000L;

    /**
     * The widest pair of nanoTime reads around a wall-clock read that a calibration takes: a thread held up between
     * them (a GC pause, an overloaded machine) would put the offset off by the delay, and a clock whose next
     * calibration took it back would go backwards. A wider pair is read again, a few times at most.
     */
    static final long TIGHT_PAIR_NANOS = 200_000L;

    /** An epoch offset and the nanoTime it was taken at; replaced whole, so readers never see half of one. */
    private record Calibration(long nanos, long offsetMicros) {}

    private final LongSupplier nanoTime;
    private final LongSupplier epochMillis;
    private final AtomicReference<Calibration> calibration = new AtomicReference<>();

    /** A clock over these sources: nanoTime's and currentTimeMillis's contracts (tests pass manual ones). */
    PreciseTicker(LongSupplier nanoTime, LongSupplier epochMillis) {
        this.nanoTime = nanoTime;
        this.epochMillis = epochMillis;
        this.calibration.set(calibrate());
    }

    /**
     * A new offset: the wall clock read between two nanoTime reads, paired with their midpoint (not with a nanoTime
     * the caller read earlier, which a pause since would make stale).
     */
    private Calibration calibrate() {
        long before = 0;
        long millis = 0;
        long after = 0;
        for (int attempt = 0; attempt < 4; attempt++) {
            before = nanoTime.getAsLong();
            millis = epochMillis.getAsLong();
            after = nanoTime.getAsLong();
            if (after - before <= TIGHT_PAIR_NANOS) {
                break;
            }
        }
        long nanos = before + (after - before) / 2;
        return new Calibration(nanos, millis * 1_000L - nanos / 1_000L);
    }

    @Override
    public long epochMicros() {
        return at(nanoTime.getAsLong());
    }

    /** The epoch time at the source's {@code nanos}, taking a new offset if the last one is a second old. */
    long at(long nanos) {
        Calibration c = calibration.get();
        if (nanos - c.nanos >= CALIBRATION_NANOS) {
            // One new offset per second: threads that find the same old one race to replace it, and all but the one
            // that wins take its offset, so that no two offsets taken a moment apart (a millisecond's difference in the
            // wall clock's resolution) alternate.
            Calibration fresh = calibrate();
            c = calibration.compareAndSet(c, fresh) ? fresh : calibration.get();
        }
        return c.offsetMicros + nanos / 1_000L;
    }

    /** The source of nanoTime. */
    long nanoTime() {
        return nanoTime.getAsLong();
    }
}
