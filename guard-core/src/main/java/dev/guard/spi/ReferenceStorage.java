package dev.guard.spi;

import dev.guard.internal.Saturated;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import java.time.Duration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The reference model of {@link Storage}: a map under one lock that runs the reference semantics of each {@link
 * LimitSpec} literally. Simple, obviously correct and slow; the contract suite's differential test compares every
 * backend with it, and unit tests may use it. Production code wants {@code MemoryStorage} from
 * guard-storage-memory instead.
 *
 * <p>Expired state is treated as absent and dropped when the key is next read or written; nothing here runs in the
 * background. Thread-safe.
 */
public final class ReferenceStorage implements Storage {
    private static final class Entry {
        final LimitSpec spec;
        long[] state;
        long expiresAtMicros;
        byte[] record;
        long version;

        Entry(LimitSpec spec) {
            this.spec = spec;
        }
    }

    private final Map<StateKey, Entry> entries = new HashMap<>();

    private ReferenceStorage() {}

    /** An empty reference storage. */
    public static ReferenceStorage create() {
        return new ReferenceStorage();
    }

    private long[] live(StateKey key, long nowMicros) {
        Entry e = entries.get(key);
        if (e == null || e.state == null) {
            return null;
        }
        if (e.expiresAtMicros <= nowMicros) {
            entries.remove(key);
            return null;
        }
        return e.state.clone();
    }

    private void store(StateKey key, LimitSpec spec, long[] state, long nowMicros) {
        long ttl = state == null ? 0 : spec.ttlMicros(state, nowMicros);
        if (ttl <= 0) {
            entries.remove(key);
            return;
        }
        Entry e = new Entry(spec);
        e.state = state;
        e.expiresAtMicros = Saturated.plus(nowMicros, ttl);
        entries.put(key, e);
    }

    @Override
    public synchronized BatchResult evaluate(Batch batch, long nowMicros) {
        Objects.requireNonNull(batch, "batch must not be null");
        int n = batch.size();
        long[] outcomes = new long[n];
        long[][] states = new long[n][];
        boolean admitted = true;
        for (int i = 0; i < n; i++) {
            Step step = batch.step(i);
            states[i] = live(step.key(), nowMicros);
            outcomes[i] = step.spec().evaluate(states[i], nowMicros, step.permits());
            admitted &= Outcome.isAdmitted(outcomes[i]);
        }
        if (admitted) {
            for (int i = 0; i < n; i++) {
                Step step = batch.step(i);
                if (step.spec() instanceof Membership || step.spec() instanceof Gate) {
                    continue; // checks only; their state belongs to addMember and raiseGate
                }
                long[] next = step.spec().commit(states[i], nowMicros, step.permits());
                store(step.key(), step.spec(), next, nowMicros);
            }
        }
        return BatchResult.of(outcomes);
    }

    @Override
    public synchronized long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        Entry old = entries.get(key);
        // A deadline that has passed is in force no more: it merges with nothing.
        long current = old != null && old.state != null && old.spec instanceof Gate && old.state[0] > nowMicros
                ? old.state[0]
                : Long.MIN_VALUE;
        long until = Math.max(current, untilMicros);
        Entry e = new Entry(Gate.INSTANCE);
        e.state = new long[] {until};
        e.expiresAtMicros = until;
        entries.put(key, e);
        return until;
    }

    @Override
    public synchronized void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        Entry e = new Entry(Membership.MUST_BE_ABSENT);
        e.state = Membership.member(expiresAtMicros);
        e.expiresAtMicros = expiresAtMicros;
        entries.put(key, e);
    }

    @Override
    public synchronized boolean removeMember(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        Entry e = entries.remove(key);
        return e != null && e.state != null;
    }

    @Override
    public synchronized boolean isMember(StateKey key, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        return Membership.isMember(live(key, nowMicros), nowMicros);
    }

    @Override
    public synchronized Optional<VersionedRecord> getRecord(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        Entry e = entries.get(key);
        return e == null || e.record == null ? Optional.empty() : Optional.of(new VersionedRecord(e.record, e.version));
    }

    @Override
    public synchronized long putRecord(StateKey key, byte[] value, long expectedVersion) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(value, "value must not be null");
        if (expectedVersion < 0) {
            throw new IllegalArgumentException("expectedVersion must not be negative but was " + expectedVersion);
        }
        Entry e = entries.get(key);
        long version = e == null || e.record == null ? 0 : e.version;
        if (version != expectedVersion) {
            return -1;
        }
        Entry next = new Entry(null);
        next.record = value.clone();
        next.version = version + 1;
        entries.put(key, next);
        return next.version;
    }

    @Override
    public synchronized long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        long removed = 0;
        for (Iterator<StateKey> it = entries.keySet().iterator(); it.hasNext(); ) {
            if (it.next().subject().equals(subject)) {
                it.remove();
                removed++;
            }
        }
        return removed;
    }

    @Override
    public StorageHealth health() {
        return StorageHealth.up(Duration.ZERO, "reference");
    }

    @Override
    public void close() {}
}
