package dev.guard.spi;

import dev.guard.limit.LimitSpec;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * A {@link Storage} that hands every call to another: extend it and override only what a wrapper changes (counting
 * calls, failing on demand, holding an answer back in a test). Every method forwards, those with a default in {@link
 * Storage} too ({@link #evaluateInPlace}, {@link #evaluateAsync}, {@link #acquire}), so that the wrapped storage's own
 * versions run; {@link #close()} closes it.
 */
public abstract class ForwardingStorage implements Storage {
    private final Storage delegate;

    /**
     * Forwards to {@code delegate}.
     *
     * @throws NullPointerException if {@code delegate} is null
     */
    protected ForwardingStorage(Storage delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate must not be null");
    }

    /** The storage every call goes to. */
    protected final Storage delegate() {
        return delegate;
    }

    @Override
    public BatchResult evaluate(Batch batch, long nowMicros) {
        return delegate.evaluate(batch, nowMicros);
    }

    @Override
    public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
        return delegate.evaluateInPlace(buffer, nowMicros);
    }

    @Override
    public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
        return delegate.evaluateAsync(batch, nowMicros);
    }

    @Override
    public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        return delegate.acquire(key, spec, permits, nowMicros);
    }

    @Override
    public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        return delegate.raiseGate(key, untilMicros, nowMicros);
    }

    @Override
    public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        delegate.addMember(key, expiresAtMicros, nowMicros);
    }

    @Override
    public boolean removeMember(StateKey key) {
        return delegate.removeMember(key);
    }

    @Override
    public boolean isMember(StateKey key, long nowMicros) {
        return delegate.isMember(key, nowMicros);
    }

    @Override
    public Optional<VersionedRecord> getRecord(StateKey key) {
        return delegate.getRecord(key);
    }

    @Override
    public long putRecord(StateKey key, byte[] value, long expectedVersion) {
        return delegate.putRecord(key, value, expectedVersion);
    }

    @Override
    public long forget(String subject) {
        return delegate.forget(subject);
    }

    @Override
    public StorageHealth health() {
        return delegate.health();
    }

    @Override
    public void close() {
        delegate.close();
    }
}
