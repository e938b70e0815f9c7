package dev.guard.limit;

import dev.guard.internal.Saturated;
import java.time.Duration;

/**
 * A cooldown: a request passes when the key is not cooling, and starts a cooldown of {@code period} for it; every
 * request during the cooldown is rejected and does <em>not</em> extend it.
 *
 * <p>This is leading-edge duplicate suppression when the key is a content fingerprint (the first copy passes,
 * copies within {@code period} are dropped), "one per period" per user, and the "at most one notice per window"
 * of a reject notice. State: {@code [untilMicros]}. Permits above one are treated as one; zero permits only look.
 */
public final class Cooldown implements LimitSpec {
    private final Duration period;
    private final long periodMicros;

    /**
     * Creates a cooldown of {@code period}.
     *
     * @throws IllegalArgumentException if {@code period} is not positive or not a whole number of microseconds
     */
    public Cooldown(Duration period) {
        this.periodMicros = Checks.positiveMicros("period", period);
        this.period = period;
    }

    /** How long a key cools after a request passes. */
    public Duration period() {
        return period;
    }

    /** The period in microseconds. */
    public long periodMicros() {
        return periodMicros;
    }

    @Override
    public String kind() {
        return "cooldown";
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        Checks.permits(permits);
        if (state == null || nowMicros >= state[0]) {
            return Outcome.admitted(permits == 0 ? 1 : 0);
        }
        return Outcome.rejected(Saturated.until(state[0], nowMicros));
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        if (permits == 0) {
            return state;
        }
        long until = Saturated.plus(nowMicros, periodMicros);
        if (state == null) {
            return new long[] {until};
        }
        state[0] = until;
        return state;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = Checks.shaped(state, 1);
        return state == null || state[0] <= nowMicros ? 0 : Saturated.until(state[0], nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return periodMicros;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Cooldown c && c.periodMicros == periodMicros;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(periodMicros) + 11;
    }

    @Override
    public String toString() {
        return "Cooldown[period=" + period + "]";
    }
}
