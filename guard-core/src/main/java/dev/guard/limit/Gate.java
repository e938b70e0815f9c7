package dev.guard.limit;

import dev.guard.internal.Saturated;

/**
 * A gate: nothing passes for the key until a deadline that somebody else sets with
 * {@link dev.guard.spi.Storage#raiseGate}; passing never changes it. Deadlines only move forward: raising a gate to an
 * earlier deadline than it already has changes nothing, so concurrent pushbacks merge by maximum.
 *
 * <p>Set from a platform's 429 {@code retry_after}, a ban, or a sender's cooldown. State: {@code [untilMicros]}.
 */
public final class Gate implements LimitSpec {
    /** The one gate spec; a gate has no parameters. */
    public static final Gate INSTANCE = new Gate();

    private Gate() {}

    @Override
    public String kind() {
        return "gate";
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        Checks.permits(permits);
        if (state == null || nowMicros >= state[0]) {
            return Outcome.admitted(Long.MAX_VALUE);
        }
        return Outcome.rejected(Saturated.until(state[0], nowMicros));
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        return state;
    }

    /**
     * The state after raising the gate to {@code untilMicros}: the later of the two deadlines. It merges with any
     * one-value state it is given, so a backend that implements {@link dev.guard.spi.Storage#raiseGate} with it passes
     * only a gate's deadline still in force (after {@code now}), and null for anything else at the key: a cooldown's
     * or a membership's deadline, a log's one timestamp, a gate's that has passed. {@code raiseGate} merges with none
     * of them.
     */
    public long[] raise(long[] state, long untilMicros) {
        state = Checks.shaped(state, 1);
        if (state == null) {
            return new long[] {untilMicros};
        }
        state[0] = Math.max(state[0], untilMicros);
        return state;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = Checks.shaped(state, 1);
        return state == null || state[0] <= nowMicros ? 0 : Saturated.until(state[0], nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return Long.MAX_VALUE;
    }

    @Override
    public String toString() {
        return "Gate";
    }
}
