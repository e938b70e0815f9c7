package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;

/**
 * A versioned record: immutable, replaced as a whole by {@link MemoryStorage#putRecord}; never expires. A limit step
 * that reads a record's key sees no state; one that may commit there converts the key to an {@link ArrayHolder} that
 * keeps the record until a limit commits (a step or batch that then rejects leaves it).
 */
final class RecordHolder extends Holder {
    final byte[] value;
    final long version;

    /** A record of {@code value} (not copied: the caller hands over a private copy) at {@code version}. */
    RecordHolder(String scope, byte[] value, long version) {
        super(scope, 0);
        this.value = value;
        this.version = version;
    }

    @Override
    Holder copy() {
        return new RecordHolder(scope, value, version);
    }

    @Override
    RecordHolder record() {
        return this;
    }

    @Override
    LimitSpec writer() {
        return null;
    }

    @Override
    boolean accepts(LimitSpec spec, long nowMicros) {
        return false;
    }

    @Override
    long peek(long word, LimitSpec spec, long permits, long nowMicros) {
        return spec.evaluate(null, nowMicros, permits);
    }

    @Override
    long commit(long word, LimitSpec spec, long permits, long nowMicros) {
        throw new IllegalStateException("a record's key is converted before a limit commits to it");
    }

    @Override
    long settle(long word, long nowMicros) {
        return 0;
    }

    @Override
    long[] raw(long word) {
        return null;
    }

    @Override
    long expiresAtMicros(long word) {
        return Long.MIN_VALUE;
    }

    @Override
    long prunableFromMicros(long word) {
        return Long.MAX_VALUE;
    }

    @Override
    long intervalMicros() {
        return Long.MAX_VALUE;
    }

    @Override
    long stateLifetimeNanos(long currentNanos, long intervals) {
        return Long.MAX_VALUE;
    }
}
