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

    /** The first instant the clock can read: {@link Long#MIN_VALUE} microseconds from the epoch. */
    private static final Instant FIRST = instantOf(Long.MIN_VALUE);

    /** The last instant the clock can read: {@link Long#MAX_VALUE} microseconds from the epoch. */
    private static final Instant LAST = instantOf(Long.MAX_VALUE);

    /**
     * A ticker that reads {@code instant} until moved.
     *
     * @throws IllegalArgumentException if {@code instant} is null, or before {@link Long#MIN_VALUE} or past {@link
     *     Long#MAX_VALUE} microseconds from the epoch (years -290308 and +294247)
     */
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
        return instantOf(micros.get());
    }

    /**
     * Moves the clock forward by {@code duration}.
     *
     * @throws IllegalArgumentException if {@code duration} is null or negative (use {@link #set} to go back on
     *     purpose), or so long that the clock would pass {@link Long#MAX_VALUE} microseconds; the clock stays where it
     *     was
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
        long delta;
        try {
            delta = Math.addExact(toMicros(duration), rest / 1_000);
        } catch (ArithmeticException e) { // a step of more than Long.MAX_VALUE microseconds: past the end from anywhere
            throw tooLong("duration", duration, micros.get());
        }
        if (!add(delta)) {
            throw tooLong("duration", duration, micros.get());
        }
        nanos = rest % 1_000;
        return this;
    }

    /**
     * Moves the clock forward by {@code delta} microseconds.
     *
     * @throws IllegalArgumentException if {@code delta} is negative, or so long that the clock would pass {@link
     *     Long#MAX_VALUE} microseconds; the clock stays where it was
     */
    public ManualTicker advanceMicros(long delta) {
        if (delta < 0) {
            throw new IllegalArgumentException("delta must not be negative but was " + delta);
        }
        if (!add(delta)) {
            throw tooLong("delta", delta, micros.get());
        }
        return this;
    }

    /**
     * Adds {@code delta} (not negative) exactly, unless the sum would pass {@link Long#MAX_VALUE} (it would wrap, and
     * move the clock back to before 1970): then changes nothing and answers false. The caller names the step only
     * then, so that a step allocates nothing (benchmarks move this clock on every operation).
     */
    private boolean add(long delta) {
        long current;
        do {
            current = micros.get();
            if (current > Long.MAX_VALUE - delta) {
                return false;
            }
        } while (!micros.compareAndSet(current, current + delta));
        return true;
    }

    private static IllegalArgumentException tooLong(String field, Object value, long current) {
        return new IllegalArgumentException(field + " is too long: " + value + " (the clock, at " + instantOf(current)
                + ", would pass " + LAST + ", Long.MAX_VALUE microseconds from the epoch)");
    }

    /**
     * Sets the clock to {@code instant}, backwards too: for tests of clock skew.
     *
     * @throws IllegalArgumentException as {@link #at} does; the clock stays where it was
     */
    public synchronized ManualTicker set(Instant instant) {
        micros.set(toMicros("instant", instant));
        nanos = instant.getNano() % 1_000;
        return this;
    }

    /** {@code instant} in whole microseconds from the epoch, rounded down; checked as the parameter {@code field}. */
    private static long toMicros(String field, Instant instant) {
        if (instant == null) {
            throw new IllegalArgumentException(field + " must not be null");
        }
        if (instant.isBefore(FIRST) || instant.isAfter(LAST.plusNanos(999))) {
            throw new IllegalArgumentException(field + " must be between Long.MIN_VALUE and Long.MAX_VALUE microseconds"
                    + " from the epoch (" + FIRST + " to " + LAST + ") but was " + instant);
        }
        long seconds = instant.getEpochSecond();
        long fraction = instant.getNano() / 1_000;
        // Near the first instant the seconds alone overflow in microseconds; borrowing one from them does not.
        return seconds < 0 && fraction > 0
                ? (seconds + 1) * 1_000_000L + (fraction - 1_000_000L)
                : seconds * 1_000_000L + fraction;
    }

    /** The instant {@code micros} microseconds from the epoch. */
    private static Instant instantOf(long micros) {
        return Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1_000L);
    }

    private static long toMicros(Duration d) {
        return Math.addExact(Math.multiplyExact(d.getSeconds(), 1_000_000L), d.getNano() / 1_000);
    }
}
