package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;

/** A versioned record: immutable, replaced as a whole by {@link MemoryStorage#putRecord}; never expires. */
final class RecordHolder extends Holder {
    final byte[] value;
    final long version;
    private boolean dead;

    /** A record of {@code value} (not copied: the caller hands over a private copy) at {@code version}. */
    RecordHolder(byte[] value, long version) {
        this.value = value;
        this.version = version;
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
    long[] enter(long nowMicros) {
        return null;
    }

    @Override
    void exit(long[] state, LimitSpec committer, long nowMicros) {
        // Only read-only steps reach a record (a committing step converts the key first), and they change nothing.
    }

    @Override
    long[] raw() {
        return null;
    }

    @Override
    long rawExpiresAtMicros() {
        return 0;
    }

    @Override
    void kill() {
        dead = true;
    }

    @Override
    boolean isDead() {
        return dead;
    }

    @Override
    long lifetimeNanos(long currentNanos) {
        return Long.MAX_VALUE;
    }

    @Override
    boolean extendsOnRead() {
        return false;
    }
}
