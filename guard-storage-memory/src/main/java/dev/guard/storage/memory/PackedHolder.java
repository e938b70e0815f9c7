package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import dev.guard.limit.LimitSpec;

/**
 * A holder whose whole state is its word, in an encoding of one spec's own: {@link BucketHolder}'s theoretical arrival
 * time, {@link WindowHolder}'s window and count. It runs steps of that spec at times in the fast range; any other
 * step converts the key to an {@link ArrayHolder} first. The cache keeps it two intervals after each extension, or
 * four (see {@link Holder#lifetimeNanos}).
 *
 * @param <S> the kind of limit it encodes
 */
abstract class PackedHolder<S extends LimitSpec> extends Holder {
    /** The spec whose state the word encodes. */
    final S spec;

    PackedHolder(String scope, S spec) {
        super(scope, ABSENT);
        this.spec = spec;
    }

    @Override
    final LimitSpec writer() {
        return spec;
    }

    /** Whether {@code other} is this holder's spec. */
    final boolean own(LimitSpec other) {
        return other == spec || spec.equals(other);
    }

    @Override
    final boolean accepts(LimitSpec other, long nowMicros) {
        return own(other) && fastTime(nowMicros);
    }

    /**
     * The reference outcome of a step of this holder's spec at a fast time on {@code word} (owned, or read by a
     * lock-free caller); changes nothing.
     */
    abstract long outcome(long word, long permits, long nowMicros);

    @Override
    final long peek(long word, LimitSpec other, long permits, long nowMicros) {
        if (accepts(other, nowMicros)) {
            return outcome(word, permits, nowMicros);
        }
        // Another kind reading this key, or a time outside the fast range: the reference functions themselves.
        long[] state = expiresAtMicros(word) <= nowMicros ? null : raw(word);
        return other.evaluate(state, nowMicros, permits);
    }

    @Override
    final long settle(long word, long nowMicros) {
        return expiresAtMicros(word) <= nowMicros ? ABSENT : word;
    }

    @Override
    final long stateLifetimeNanos(long currentNanos, long intervals) {
        return Saturated.times(microsToNanos(intervalMicros()), intervals);
    }
}
