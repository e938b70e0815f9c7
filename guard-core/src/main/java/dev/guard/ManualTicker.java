package dev.guard;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link Ticker} that moves only when told to: the clock for tests (Guard's and yours). Thread-safe.
 *
 * <pre>{@code
 * ManualTicker ticker = ManualTicker.at(Instant.parse("2026-01-01T00:00:00Z"));
 * ticker.advance(Duration.ofSeconds(1));
 * }</pre>
 */
public final class ManualTicker implements Ticker {
    private final AtomicLong micros;

    private ManualTicker(long micros) {
        this.micros = new AtomicLong(micros);
    }

    /** A ticker that reads {@code instant} until moved. */
    public static ManualTicker at(Instant instant) {
        return new ManualTicker(toMicros("instant", instant));
    }

    /** A ticker at 2026-01-01T00:00:00Z. */
    public static ManualTicker create() {
        return at(Instant.parse("2026-01-01T00:00:00Z"));
    }

    @Override
    public long epochMicros() {
        return micros.get();
    }

    /** The current time as an {@link Instant}. */
    public Instant now() {
        long m = micros.get();
        return Instant.ofEpochSecond(Math.floorDiv(m, 1_000_000L), Math.floorMod(m, 1_000_000L) * 1_000L);
    }

    /**
     * Moves the clock forward by {@code duration}.
     *
     * @throws IllegalArgumentException if {@code duration} is negative (use {@link #set} to go back on purpose)
     * @throws ArithmeticException if the clock would pass {@link Long#MAX_VALUE} microseconds; it stays where it was
     */
    public ManualTicker advance(Duration duration) {
        if (duration == null || duration.isNegative()) {
            throw new IllegalArgumentException("duration must not be negative but was " + duration);
        }
        return add(toMicros(duration));
    }

    /**
     * Moves the clock forward by {@code delta} microseconds.
     *
     * @throws IllegalArgumentException if {@code delta} is negative
     * @throws ArithmeticException if the clock would pass {@link Long#MAX_VALUE} microseconds; it stays where it was
     */
    public ManualTicker advanceMicros(long delta) {
        if (delta < 0) {
            throw new IllegalArgumentException("delta must not be negative but was " + delta);
        }
        return add(delta);
    }

    /** Adds {@code delta} (not negative) exactly: a sum that wrapped would move the clock back to before 1970. */
    private ManualTicker add(long delta) {
        micros.accumulateAndGet(delta, Math::addExact);
        return this;
    }

    /** Sets the clock to {@code instant}, backwards too: for tests of clock skew. */
    public ManualTicker set(Instant instant) {
        micros.set(toMicros("instant", instant));
        return this;
    }

    private static long toMicros(String field, Instant instant) {
        if (instant == null) {
            throw new IllegalArgumentException(field + " must not be null");
        }
        return Math.addExact(Math.multiplyExact(instant.getEpochSecond(), 1_000_000L), instant.getNano() / 1_000);
    }

    private static long toMicros(Duration d) {
        return Math.addExact(Math.multiplyExact(d.getSeconds(), 1_000_000L), d.getNano() / 1_000);
    }
}
