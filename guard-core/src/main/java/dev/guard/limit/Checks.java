package dev.guard.limit;

import dev.guard.internal.WholeMicros;
import java.time.Duration;

/** Argument checks whose messages name the field and the value. */
final class Checks {
    private Checks() {}

    static long positive(String field, long value) {
        if (value <= 0) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
        return value;
    }

    /**
     * {@code value} in microseconds, naming {@code field} and the value unless it is positive, a whole number of
     * microseconds and below {@link LimitSpec#EXACT_LIMIT} of them.
     */
    static long positiveMicros(String field, Duration value) {
        if (value == null) {
            throw new IllegalArgumentException(field + " must not be null");
        }
        if (value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
        long micros;
        try {
            micros = Math.addExact(Math.multiplyExact(value.getSeconds(), 1_000_000L), value.getNano() / 1_000);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(field + " is too long: " + value, e);
        }
        if (micros <= 0) {
            throw new IllegalArgumentException(field + " must be at least 1 microsecond but was " + value);
        }
        WholeMicros.check(field, value);
        if (micros >= LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException(field + " is too long: " + value);
        }
        return micros;
    }

    static void exact(String what, long value) {
        if (value >= LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException(what + " exceeds 2^53 and cannot be evaluated exactly: " + value);
        }
    }

    static long permits(long permits) {
        if (permits < 0) {
            throw new IllegalArgumentException("permits must not be negative but was " + permits);
        }
        return permits;
    }

    /** Whether {@code stampMicros} lies more than {@link LimitSpec#MAX_LEAD_MICROS} after {@code nowMicros}. */
    static boolean dated(long stampMicros, long nowMicros) {
        return stampMicros > latest(nowMicros);
    }

    /**
     * {@code state} unless its first value, the index of a window of {@code unitMicros}, is a window that begins more
     * than {@link LimitSpec#MAX_LEAD_MICROS} after {@code nowMicros}; null (absent) then, or when {@code state} is.
     */
    static long[] undatedIndex(long[] state, long unitMicros, long nowMicros) {
        return state != null && state[0] > Math.floorDiv(latest(nowMicros), unitMicros) ? null : state;
    }

    /**
     * {@code state} unless the timestamp at {@code first} or its last value, the ends of an ascending run of times,
     * lies more than {@link LimitSpec#MAX_LEAD_MICROS} after {@code nowMicros}; null (absent) then, or when {@code
     * state} is. An empty state stays.
     */
    static long[] undatedEnds(long[] state, int first, long nowMicros) {
        int n = state == null ? 0 : state.length;
        return n > first && (dated(state[first], nowMicros) || dated(state[n - 1], nowMicros)) ? null : state;
    }

    /**
     * The earliest time still inside a window of {@code windowMicros} at {@code nowMicros}: an entry of time {@code t}
     * has left it once {@code t + window <= now}, that is {@code t} below this. Computed without overflow: within a
     * window of {@link Long#MIN_VALUE}, {@code Long.MIN_VALUE} (nothing has left it yet).
     */
    static long windowStart(long nowMicros, long windowMicros) {
        return nowMicros < Long.MIN_VALUE + windowMicros ? Long.MIN_VALUE : nowMicros - windowMicros + 1;
    }

    /** The latest time a state may carry at {@code nowMicros}: one lead after it, saturated. */
    static long latest(long nowMicros) {
        return nowMicros > Long.MAX_VALUE - LimitSpec.MAX_LEAD_MICROS
                ? Long.MAX_VALUE
                : nowMicros + LimitSpec.MAX_LEAD_MICROS;
    }

    /**
     * {@code state} if it has {@code size} values, else null: state that another limit wrote at the same key (a
     * filter whose parameters or kind changed under the same name) reads as absent, as the Redis scripts read it.
     */
    static long[] shaped(long[] state, int size) {
        return state == null || state.length == size ? state : null;
    }
}
