package dev.guard;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link Ticker} that moves only when told to: the clock for tests (Guard's and yours). Thread-safe.
 *
 * <p>It reads whole microseconds, the storage's unit, and keeps the nanoseconds below them that an instant or a
 * step carried: a thousand steps of 1.5 microseconds move it by 1,500, not by 1,000.
 *
 * <pre>{@code
 * ManualTicker ticker = ManualTicker.at(Instant.parse("2026-01-01T00:00:00Z"));
 * ticker.advance(Duration.ofSeconds(1));
 * }</pre>
 */
public final class ManualTicker implements Ticker {
    private final AtomicLong micros;

    /** The nanoseconds past {@link #micros} (0 to 999) that instants and steps carried; guarded by this. */
    private int nanos;

    private ManualTicker(long micros, int nanos) {
        this.micros = new AtomicLong(micros);
        this.nanos = nanos;
    }

    /** A ticker that reads {@code instant} until moved. */
    public static ManualTicker at(Instant instant) {
        return new ManualTicker(toMicros("instant", instant), instant.getNano() % 1_000);
    }

    /** A ticker at 2026-01-01T00:00:00Z. */
    public static ManualTicker create() {
        return at(Instant.parse("2026-01-01T00:00:00Z"));
    }

    @Override
    public long epochMicros() {
        return micros.get();
    }

    /** The current time as an {@link Instant}, in whole microseconds as {@link #epochMicros()} reads it. */
    public Instant now() {
        long m = micros.get();
        return Instant.ofEpochSecond(Math.floorDiv(m, 1_000_000L), Math.floorMod(m, 1_000_000L) * 1_000L);
    }

    /**
     * Moves the clock forward by {@code duration}.
     *
     * @throws IllegalArgumentException if {@code duration} is null or negative (use {@link #set} to go back on purpose)
     * @throws ArithmeticException if the clock would pass {@link Long#MAX_VALUE} microseconds; it stays where it was
     */
    public synchronized ManualTicker advance(Duration duration) {
        if (duration == null) {
            throw new IllegalArgumentException("duration must not be null");
        }
        if (duration.isNegative()) {
            throw new IllegalArgumentException("duration must not be negative but was " + duration);
        }
        // The nanoseconds below a microsecond add up with those kept from before, so that no part of a step is lost.
        int rest = nanos + duration.getNano() % 1_000;
        add(Math.addExact(toMicros(duration), rest / 1_000));
        nanos = rest % 1_000;
        return this;
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
    public synchronized ManualTicker set(Instant instant) {
        micros.set(toMicros("instant", instant));
        nanos = instant.getNano() % 1_000;
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
