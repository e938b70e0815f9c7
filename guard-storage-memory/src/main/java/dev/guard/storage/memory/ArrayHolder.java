package dev.guard.storage.memory;

import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;

/**
 * State in the reference's own form, a {@code long[]} and its expiry, changed only under the holder's monitor by
 * the reference functions themselves: fixed and sliding windows, token buckets whose arithmetic could overflow the
 * GCRA encoding, and any key whose state was written by one kind of limit and is then used by another (which the
 * reference allows, and which this holder reproduces exactly).
 *
 * <p>{@code horizonMicros} bounds how long after the newest time the storage has seen a state committed here can
 * live; a step whose spec could outlive it converts the key to a new holder first, so that the cache's expiry,
 * computed from the horizon, can never drop live state.
 */
final class ArrayHolder extends Holder {
    private final long horizonMicros;
    private LimitSpec writer;
    private long[] state;
    private volatile long expiresAtMicros;
    private boolean dead;

    ArrayHolder(LimitSpec writer, long horizonMicros, long[] state, long expiresAtMicros) {
        this.writer = writer;
        this.horizonMicros = horizonMicros;
        this.state = state;
        this.expiresAtMicros = expiresAtMicros;
    }

    /** The horizon a spec needs: its largest ttl after the newest time seen. */
    static long horizonOf(LimitSpec spec) {
        return spec.maxTtlMicros();
    }

    @Override
    LimitSpec writer() {
        return writer;
    }

    @Override
    boolean accepts(LimitSpec spec, long nowMicros) {
        return horizonOf(spec) <= horizonMicros;
    }

    @Override
    long[] enter(long nowMicros) {
        if (state != null && expiresAtMicros <= nowMicros) {
            state = null;
        }
        return state;
    }

    @Override
    void exit(long[] next, LimitSpec committer, long nowMicros) {
        if (committer == null) {
            state = next;
            if (next == null) {
                expiresAtMicros = 0;
            }
            return;
        }
        // Exactly ReferenceStorage's store(): a state whose ttl is over is absent.
        writer = committer;
        long ttl = next == null ? 0 : committer.ttlMicros(next, nowMicros);
        if (ttl <= 0) {
            state = null;
            expiresAtMicros = 0;
        } else {
            state = next;
            expiresAtMicros = ttl == Long.MAX_VALUE ? Long.MAX_VALUE : nowMicros + ttl;
        }
    }

    @Override
    long[] raw() {
        return state;
    }

    @Override
    long rawExpiresAtMicros() {
        return expiresAtMicros;
    }

    @Override
    void kill() {
        dead = true;
    }

    @Override
    boolean isDead() {
        return dead;
    }

    /** The deadline of a gate for {@link MemoryStorage#raiseGate}: present state written by a gate, else MIN. */
    long gateDeadline() {
        return writer instanceof Gate && state != null ? state[0] : Long.MIN_VALUE;
    }

    @Override
    long lifetimeNanos(long currentNanos) {
        long expiresAt = expiresAtMicros;
        if (expiresAt == Long.MAX_VALUE) {
            return Long.MAX_VALUE;
        }
        long untilExpiry = Math.max(0, microsToNanos(Math.max(0, expiresAt)) - currentNanos);
        return saturatedAdd(saturatedAdd(untilExpiry, microsToNanos(horizonMicros)), CallerClock.SLACK_NANOS);
    }
}
