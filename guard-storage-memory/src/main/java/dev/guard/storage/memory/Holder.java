package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;

/**
 * The value the cache keeps for one key: limit state in the representation that suits its kind, or a record.
 *
 * <p>Two regimes guard a holder. The lock-free ones ({@link BucketHolder}, {@link DeadlineHolder}) keep their state
 * in one {@code long} changed by compare-and-set; a thread that needs the state exclusively (a multi-step batch)
 * takes the holder's monitor and then swaps that long for {@link #BUSY}, which sends lock-free callers to the
 * monitor. Everything else happens under the monitor. A holder that left the cache (evicted, forgotten, replaced
 * by a different representation) is marked dead under its monitor, inside the cache's atomic removal; callers that
 * meet a dead holder look the key up again, so no update is ever applied to a holder the cache no longer has.
 *
 * <p>Lock order: the cache's per-key lock, then one holder monitor; or holder monitors in key order and never the
 * cache while holding one.
 */
abstract class Holder {
    /** No state: the key is absent. */
    static final long ABSENT = Long.MIN_VALUE;

    /** The holder left the cache: look the key up again. */
    static final long DEAD = Long.MIN_VALUE + 1;

    /** A thread holding the monitor owns the state: wait for the monitor. */
    static final long BUSY = Long.MIN_VALUE + 2;

    /** Not an {@link dev.guard.limit.Outcome} (those are >= 0, <= -2 or MIN): "take the slow path". */
    static final long SLOW = -1;

    /** Fast paths accept times in [0, 2^53): the range where every encoding below stays exact. */
    static final long FAST_TIME_LIMIT = LimitSpec.EXACT_LIMIT;

    /** The spec that last wrote the state (or that the holder was made for); never null for limit holders. */
    abstract LimitSpec writer();

    /**
     * The lock-free path for one step: the outcome, or {@link #SLOW} when this holder cannot answer without its
     * monitor (wrong spec, dead, busy, time out of range).
     */
    long tryAcquire(LimitSpec spec, long permits, long nowMicros) {
        return SLOW;
    }

    /**
     * Whether a step of {@code spec} that may commit can run on this holder at {@code nowMicros}; otherwise the key
     * is converted to an {@link ArrayHolder} first.
     */
    abstract boolean accepts(LimitSpec spec, long nowMicros);

    /**
     * Takes the state exclusively (caller holds the monitor) and answers it in reference form as {@code
     * ReferenceStorage} would read it at {@code nowMicros}: null when absent or expired. Must be followed by {@link
     * #exit}.
     */
    abstract long[] enter(long nowMicros);

    /**
     * Writes the state back and releases exclusivity (caller holds the monitor).
     *
     * @param state the reference-form state, null for absent
     * @param writer the spec that committed it, or null when nothing was committed (the state is as entered)
     * @param nowMicros the time of the batch
     */
    abstract void exit(long[] state, LimitSpec writer, long nowMicros);

    /** The raw state for conversion, expired or not, null when absent (caller holds the monitor). */
    abstract long[] raw();

    /** When the raw state expires: the reference's {@code expiresAtMicros} (caller holds the monitor). */
    abstract long rawExpiresAtMicros();

    /** Marks the holder dead (caller holds the monitor, inside the cache's removal of the key). */
    abstract void kill();

    /** Whether the holder is dead. */
    abstract boolean isDead();

    /** Whether it holds limit or set state, expired or not (caller holds the monitor). */
    boolean hasState() {
        return raw() != null;
    }

    /**
     * How long, in cache nanoseconds after {@code currentNanos}, the cache must keep this holder so that no state it
     * holds, or that a caller may commit to it before the cache's clock moves, expires in the cache before it
     * expires by the reference semantics. {@link Long#MAX_VALUE}: for good.
     */
    abstract long lifetimeNanos(long currentNanos);

    /** Whether reading the holder must push its expiry (state changed in place by lock-free callers). */
    boolean extendsOnRead() {
        return true;
    }

    static long saturatedAdd(long a, long b) {
        long r = a + b;
        return ((a ^ r) & (b ^ r)) < 0 ? Long.MAX_VALUE : r;
    }

    static long microsToNanos(long micros) {
        return micros >= Long.MAX_VALUE / 1_000 ? Long.MAX_VALUE : micros * 1_000;
    }
}
