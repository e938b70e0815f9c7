package dev.guard;

import dev.guard.internal.WholeMicros;
import java.time.Duration;

/** Conversions between {@link Duration} and the microseconds of the storage SPI. */
final class Durations {
    private Durations() {}

    /** {@code duration} in microseconds, {@link Long#MAX_VALUE} when it does not fit. */
    static long toMicrosSaturated(Duration duration) {
        if (duration.getSeconds() >= Long.MAX_VALUE / 1_000_000L - 1) {
            return Long.MAX_VALUE;
        }
        return duration.getSeconds() * 1_000_000L + duration.getNano() / 1_000;
    }

    /**
     * The deadline {@code duration} after {@code nowMicros}, {@link Long#MAX_VALUE} (never) when it does not fit. A
     * clock before 1970 (a negative now) gets its exact deadline too, unless the duration itself does not fit in
     * microseconds: that one ends after every deadline, whatever the clock.
     */
    static long deadline(long nowMicros, Duration duration) {
        long micros = toMicrosSaturated(duration);
        return micros == Long.MAX_VALUE || (nowMicros > 0 && micros >= Long.MAX_VALUE - nowMicros)
                ? Long.MAX_VALUE
                : nowMicros + micros;
    }

    /** {@code micros} as a duration; {@link Long#MAX_VALUE} means {@link Decision#NEVER}. */
    static Duration ofMicros(long micros) {
        if (micros == Long.MAX_VALUE) {
            return Decision.NEVER;
        }
        return micros == 0 ? Duration.ZERO : Duration.ofSeconds(micros / 1_000_000L, (micros % 1_000_000L) * 1_000L);
    }

    /**
     * {@code value}, checked as {@link #positive} and as a limit's period: a whole number of microseconds, which is
     * all a limit counts (checked here too, so that the error names {@code field} rather than the limit's own name for
     * the value, a cooldown's {@code period}), below 2^53 of them, which every storage evaluates exactly.
     */
    static Duration positivePeriod(String field, Duration value) {
        positive(field, value);
        WholeMicros.check(field, value);
        if (toMicrosSaturated(value) >= dev.guard.limit.LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException(field + " is too long: " + value);
        }
        return value;
    }

    /**
     * Checks that {@code value} is at least one microsecond (the storage's unit: a shorter one would be 0 there),
     * naming {@code field} otherwise.
     */
    static Duration positive(String field, Duration value) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
        if (toMicrosSaturated(value) < 1) {
            throw new IllegalArgumentException(field + " must be at least 1 microsecond but was " + value);
        }
        return value;
    }
}
