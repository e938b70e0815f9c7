package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;

/**
 * A holder whose whole state is its word, in an encoding of one spec's own: {@link BucketHolder}'s theoretical arrival
 * time, {@link WindowHolder}'s window and count. It runs steps of that spec at times in the fast range; any other
 * step converts the key to an {@link ArrayHolder} first. The cache keeps it two intervals after each extension.
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

    @Override
    final long lifetimeNanos(long currentNanos) {
        return microsToNanos(saturatedAdd(intervalMicros(), intervalMicros()));
    }
}
