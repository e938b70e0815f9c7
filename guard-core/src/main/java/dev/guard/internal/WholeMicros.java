package dev.guard.internal;

import java.time.Duration;

/**
 * The check that a configured duration is a whole number of microseconds, Guard's unit of time: shared by the limits,
 * the guard's builder and the sender pool's, so that each refuses a finer part by the same words rather than cutting
 * it off (a limit would then enforce a shorter duration than the one it reports).
 */
public final class WholeMicros {
    private WholeMicros() {}

    /**
     * Throws, naming {@code field} and {@code value}, unless {@code value} (not null) is a whole number of
     * microseconds.
     *
     * @throws IllegalArgumentException if {@code value} has a part finer than a microsecond
     */
    public static void check(String field, Duration value) {
        if (value.getNano() % 1_000 != 0) {
            throw new IllegalArgumentException(field + " must be a whole number of microseconds but was " + value);
        }
    }
}
