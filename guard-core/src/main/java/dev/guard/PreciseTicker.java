package dev.guard;

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

    /** An epoch offset and the nanoTime it was taken at; replaced whole, so readers never see half of one. */
    private record Calibration(long nanos, long offsetMicros) {}

    private final LongSupplier nanoTime;
    private final LongSupplier epochMillis;
    private volatile Calibration calibration;

    /** A clock over these sources: nanoTime's and currentTimeMillis's contracts (tests pass manual ones). */
    PreciseTicker(LongSupplier nanoTime, LongSupplier epochMillis) {
        this.nanoTime = nanoTime;
        this.epochMillis = epochMillis;
        this.calibration = calibrate(nanoTime.getAsLong());
    }

    private Calibration calibrate(long nanos) {
        return new Calibration(nanos, epochMillis.getAsLong() * 1_000L - nanos / 1_000L);
    }

    @Override
    public long epochMicros() {
        return at(nanoTime.getAsLong());
    }

    /** The epoch time at the source's {@code nanos}, taking a new offset if the last one is a second old. */
    long at(long nanos) {
        Calibration c = calibration;
        if (nanos - c.nanos >= CALIBRATION_NANOS) {
            c = calibrate(nanos);
            calibration = c;
        }
        return c.offsetMicros + nanos / 1_000L;
    }

    /** The source of nanoTime. */
    long nanoTime() {
        return nanoTime.getAsLong();
    }
}
