package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ForkJoinPool;

/**
 * Guard's in-memory {@link Storage}, the embedded default: state in a Caffeine cache, evaluated with the reference
 * semantics of each {@link LimitSpec}, for one process.
 *
 * <pre>{@code
 * Storage storage = MemoryStorage.create();
 * }</pre>
 *
 * <p><b>Fast paths.</b> A token bucket is kept in GCRA form (one theoretical arrival time) and a cooldown, gate or
 * membership as one deadline, so {@link #acquire} on an existing key is a cache read plus one compare-and-set: lock
 * free, and allocation free. Other kinds, and batches of several steps, lock the keys' holders in one global order
 * (by scope, then subject: deadlock free), evaluate every step, and commit all or none. Every path gives the
 * decisions of {@link dev.guard.spi.ReferenceStorage}; the contract suite's differential test checks it.
 *
 * <p><b>Time and expiry.</b> The storage never reads the wall clock: the cache's clock is the newest {@code
 * nowMicros} that callers passed. Each key's state is absent for the decisions exactly when its ttl has run out, and
 * the cache evicts the key some time after that, never before: between one and two of the limit's longest ttl
 * ({@link LimitSpec#maxTtlMicros()}, a cooldown's period) plus one millisecond after its last use, and at their
 * deadline for gates and memberships. Memory is therefore bounded by the keys active in that span. Eviction happens
 * as the cache is used (its maintenance runs on the {@linkplain Builder#executor executor}); no thread is started.
 * State whose ttl ended on the newest clock seen may be gone even for a later call that carries an earlier time.
 *
 * <p><b>Concurrency.</b> Thread-safe. Calls that do not overlap behave exactly as the reference; overlapping calls
 * are linearizable, except that a token bucket read by a caller whose clock is behind a concurrent commit's may see
 * the bucket refilled up to its own time rather than the commit's (never more permissive).
 *
 * <p>A key holds either limit state or a record: a limit step on a record's key drops the record. {@link #forget}
 * scans every key. {@link #close()} drops all state; the storage stays usable, empty.
 */
public final class MemoryStorage implements Storage {
    private final CallerClock clock = new CallerClock();
    private final Cache<StateKey, Holder> cache;
    private final ConcurrentMap<StateKey, Holder> map;

    private MemoryStorage(Builder builder) {
        this.cache = Caffeine.newBuilder()
                .initialCapacity(builder.initialCapacity)
                .executor(builder.executor)
                .ticker(clock)
                .expireAfter(new HolderExpiry())
                .evictionListener(MemoryStorage::evicted)
                .build();
        this.map = cache.asMap();
    }

    /** A memory storage with the defaults. */
    public static MemoryStorage create() {
        return builder().build();
    }

    /** A builder of a memory storage. */
    public static Builder builder() {
        return new Builder();
    }

    private static void evicted(StateKey key, Holder holder, RemovalCause cause) {
        if (holder != null) {
            synchronized (holder) {
                holder.kill();
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Limits

    /**
     * {@inheritDoc}
     *
     * <p>In memory: atomic under the holders' monitors for several steps; a single step takes the path of {@link
     * #acquire}.
     *
     * @throws NullPointerException if {@code batch} is null
     */
    @Override
    public BatchResult evaluate(Batch batch, long nowMicros) {
        Objects.requireNonNull(batch, "batch must not be null");
        clock.observe(nowMicros);
        if (batch.size() == 1) {
            Step step = batch.step(0);
            return BatchResult.of(acquireObserved(step.key(), step.spec(), step.permits(), nowMicros));
        }
        return BatchResult.of(evaluateLocked(batch, nowMicros));
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: lock free and allocation free on an existing key for a token bucket, a cooldown, a gate and a
     * membership (for buckets whose refill needs at most 1021 ticks per microsecond and times in [0, 2^53)); other
     * kinds lock the key's holder.
     *
     * @throws NullPointerException if {@code key} or {@code spec} is null
     * @throws IllegalArgumentException if {@code permits} is negative
     */
    @Override
    public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(spec, "spec must not be null");
        if (permits < 0) {
            throw new IllegalArgumentException("permits must not be negative but was " + permits);
        }
        clock.observe(nowMicros);
        return acquireObserved(key, spec, permits, nowMicros);
    }

    private long acquireObserved(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        Holder holder = cache.getIfPresent(key);
        if (holder == null) {
            if (!commits(spec)) {
                return spec.evaluate(null, nowMicros, permits);
            }
            holder = cache.get(key, k -> fresh(spec, nowMicros));
        }
        long outcome = holder.tryAcquire(spec, permits, nowMicros);
        if (outcome != Holder.SLOW) {
            return outcome;
        }
        return evaluateLocked(Batch.of(new Step(key, spec, permits)), nowMicros)[0];
    }

    /** Whether steps of {@code spec} change state; gates and memberships only read theirs. */
    private static boolean commits(LimitSpec spec) {
        return !(spec instanceof Gate || spec instanceof Membership);
    }

    private static boolean fastTime(long nowMicros) {
        return nowMicros >= 0 && nowMicros < Holder.FAST_TIME_LIMIT;
    }

    /** The holder for a new key whose first committing step has {@code spec}. */
    private static Holder fresh(LimitSpec spec, long nowMicros) {
        if (spec instanceof TokenBucket b && BucketHolder.eligible(b) && fastTime(nowMicros)) {
            return new BucketHolder(b);
        }
        if (spec instanceof Cooldown && fastTime(nowMicros)) {
            return new DeadlineHolder(spec, Holder.ABSENT);
        }
        return new ArrayHolder(spec, ArrayHolder.horizonOf(spec), null, 0);
    }

    /** Evaluates a batch under the monitors of its holders, retrying when a holder left the cache meanwhile. */
    private long[] evaluateLocked(Batch batch, long nowMicros) {
        int n = batch.size();
        Holder[] holders = new Holder[n];
        long[] outcomes = new long[n];
        while (true) {
            for (int i = 0; i < n; i++) {
                holders[i] = resolve(batch.step(i), nowMicros);
            }
            if (runLocked(batch, holders, lockOrder(batch, holders), 0, outcomes, nowMicros)) {
                return outcomes;
            }
            Thread.onSpinWait();
        }
    }

    /** The holder a step runs on: created or converted for committing steps, possibly null for read-only ones. */
    private Holder resolve(Step step, long nowMicros) {
        Holder holder = cache.getIfPresent(step.key());
        if (!commits(step.spec())) {
            return holder;
        }
        while (true) {
            if (holder == null) {
                holder = cache.get(step.key(), k -> fresh(step.spec(), nowMicros));
            }
            if (holder.accepts(step.spec(), nowMicros)) {
                return holder;
            }
            holder = convert(step.key(), holder, step.spec(), nowMicros);
        }
    }

    /**
     * Replaces {@code old} at {@code key} by an {@link ArrayHolder} with the same state that {@code spec} can run
     * on, inside the cache's atomic update of the key.
     */
    private Holder convert(StateKey key, Holder old, LimitSpec spec, long nowMicros) {
        return map.compute(key, (k, current) -> {
            if (current == null) {
                return fresh(spec, nowMicros);
            }
            if (current != old && current.accepts(spec, nowMicros)) {
                return current;
            }
            synchronized (current) {
                long horizon = ArrayHolder.horizonOf(spec);
                ArrayHolder converted =
                        new ArrayHolder(current.writer(), horizon, current.raw(), current.rawExpiresAtMicros());
                current.kill();
                return converted;
            }
        });
    }

    /** The indexes of the non-null holders, sorted by key: the one order in which every batch locks. */
    private static int[] lockOrder(Batch batch, Holder[] holders) {
        int count = 0;
        for (Holder h : holders) {
            if (h != null) {
                count++;
            }
        }
        int[] order = new int[count];
        int filled = 0;
        for (int i = 0; i < holders.length; i++) {
            if (holders[i] == null) {
                continue;
            }
            int j = filled++;
            while (j > 0
                    && compare(batch.step(order[j - 1]).key(), batch.step(i).key()) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
        return order;
    }

    private static int compare(StateKey a, StateKey b) {
        int c = a.scope().compareTo(b.scope());
        return c != 0 ? c : a.subject().compareTo(b.subject());
    }

    /** Locks the holders in {@code order} from {@code depth} on, then evaluates; false if a holder was dead. */
    private static boolean runLocked(
            Batch batch, Holder[] holders, int[] order, int depth, long[] outcomes, long nowMicros) {
        if (depth < order.length) {
            synchronized (holders[order[depth]]) {
                return runLocked(batch, holders, order, depth + 1, outcomes, nowMicros);
            }
        }
        for (Holder h : holders) {
            if (h != null && h.isDead()) {
                return false;
            }
        }
        int n = batch.size();
        long[][] states = new long[n][];
        LimitSpec[] committers = new LimitSpec[n];
        int entered = 0;
        try {
            for (; entered < n; entered++) {
                Holder h = holders[entered];
                states[entered] = h == null ? null : h.enter(nowMicros);
            }
            // Exactly ReferenceStorage.evaluate: every step against the state before the batch, then all or none.
            boolean admitted = true;
            for (int i = 0; i < n; i++) {
                Step step = batch.step(i);
                outcomes[i] = step.spec().evaluate(states[i], nowMicros, step.permits());
                admitted &= Outcome.isAdmitted(outcomes[i]);
            }
            if (admitted) {
                for (int i = 0; i < n; i++) {
                    Step step = batch.step(i);
                    if (commits(step.spec())) {
                        states[i] = step.spec().commit(states[i], nowMicros, step.permits());
                        committers[i] = step.spec();
                    }
                }
            }
        } finally {
            for (int i = 0; i < entered; i++) {
                if (holders[i] != null) {
                    holders[i].exit(states[i], committers[i], nowMicros);
                }
            }
        }
        return true;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Gates and sets

    /**
     * {@inheritDoc}
     *
     * <p>In memory: an atomic update of the key.
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public long raiseGate(StateKey key, long untilMicros) {
        Objects.requireNonNull(key, "key must not be null");
        long[] result = new long[1];
        map.compute(key, (k, current) -> {
            long deadline = untilMicros;
            if (current != null) {
                synchronized (current) {
                    if (current instanceof DeadlineHolder d) {
                        deadline = Math.max(deadline, d.gateDeadline());
                    } else if (current instanceof ArrayHolder a) {
                        deadline = Math.max(deadline, a.gateDeadline());
                    }
                    current.kill();
                }
            }
            result[0] = deadline;
            return deadlineHolder(Gate.INSTANCE, deadline);
        });
        return result[0];
    }

    private static Holder deadlineHolder(LimitSpec writer, long until) {
        if (DeadlineHolder.holds(until)) {
            return new DeadlineHolder(writer, until);
        }
        // Deadlines in the sentinels' range (before the year -292000) keep the reference's exact behaviour.
        return new ArrayHolder(writer, 0, new long[] {until}, until);
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: an atomic update of the key.
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public void addMember(StateKey key, long expiresAtMicros) {
        Objects.requireNonNull(key, "key must not be null");
        map.compute(key, (k, current) -> {
            if (current != null) {
                synchronized (current) {
                    current.kill();
                }
            }
            return deadlineHolder(Membership.MUST_BE_ABSENT, expiresAtMicros);
        });
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: an atomic removal of the key, whatever it held.
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public boolean removeMember(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        boolean[] member = new boolean[1];
        map.computeIfPresent(key, (k, current) -> {
            synchronized (current) {
                member[0] = current.hasState();
                current.kill();
            }
            return null;
        });
        return member[0];
    }

    /**
     * {@inheritDoc}
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public boolean isMember(StateKey key, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        clock.observe(nowMicros);
        return Outcome.isAdmitted(acquireObserved(key, Membership.MUST_BE_PRESENT, 0, nowMicros));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Records

    /**
     * {@inheritDoc}
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public Optional<VersionedRecord> getRecord(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        return cache.getIfPresent(key) instanceof RecordHolder r
                ? Optional.of(new VersionedRecord(r.value, r.version))
                : Optional.empty();
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: an atomic update of the key; the bytes are copied.
     *
     * @throws NullPointerException if {@code key} or {@code value} is null
     * @throws IllegalArgumentException if {@code expectedVersion} is negative
     */
    @Override
    public long putRecord(StateKey key, byte[] value, long expectedVersion) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(value, "value must not be null");
        if (expectedVersion < 0) {
            throw new IllegalArgumentException("expectedVersion must not be negative but was " + expectedVersion);
        }
        byte[] copy = value.clone();
        long[] result = {-1};
        map.compute(key, (k, current) -> {
            long version = current instanceof RecordHolder r ? r.version : 0;
            if (version != expectedVersion) {
                return current;
            }
            if (current != null) {
                synchronized (current) {
                    current.kill();
                }
            }
            result[0] = version + 1;
            return new RecordHolder(copy, version + 1);
        });
        return result[0];
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Subjects, health, lifecycle

    /**
     * {@inheritDoc}
     *
     * <p>In memory: scans every key. State whose ttl has run out is counted while the cache still holds it.
     *
     * @throws NullPointerException if {@code subject} is null
     */
    @Override
    public long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        List<StateKey> keys = new ArrayList<>();
        for (StateKey key : map.keySet()) {
            if (key.subject().equals(subject)) {
                keys.add(key);
            }
        }
        long removed = 0;
        for (StateKey key : keys) {
            if (remove(key)) {
                removed++;
            }
        }
        return removed;
    }

    /** Removes {@code key}; whether it held state or a record. */
    private boolean remove(StateKey key) {
        boolean[] held = new boolean[1];
        map.computeIfPresent(key, (k, current) -> {
            synchronized (current) {
                held[0] = current instanceof RecordHolder || current.hasState();
                current.kill();
            }
            return null;
        });
        return held[0];
    }

    /** Always up: memory does not fail; the detail gives the number of keys held. */
    @Override
    public StorageHealth health() {
        return StorageHealth.up(Duration.ZERO, "memory, " + cache.estimatedSize() + " keys");
    }

    /** Drops all state. The storage stays usable, empty; closing again does nothing more. */
    @Override
    public void close() {
        for (StateKey key : map.keySet()) {
            remove(key);
        }
    }

    @Override
    public String toString() {
        return "MemoryStorage[" + cache.estimatedSize() + " keys]";
    }

    // ---------------------------------------------------------------------------------------------------------------
    // For tests in this package

    /** Moves the cache's clock to {@code nowMicros} and runs its pending maintenance (eviction) now. */
    void cleanUp(long nowMicros) {
        clock.advanceTo(nowMicros);
        cache.cleanUp();
    }

    /** The number of keys the cache holds, expired ones included until maintenance evicts them. */
    long estimatedSize() {
        return cache.estimatedSize();
    }

    /** The holder at {@code key} without touching its expiry, or null. */
    Holder holder(StateKey key) {
        return cache.policy().getIfPresentQuietly(key);
    }

    /** The cache's clock in microseconds. */
    long clockMicros() {
        return clock.newestMicros();
    }

    /**
     * Builds a {@link MemoryStorage}. Each setter checks its value at once and throws {@link
     * IllegalArgumentException} naming the setting and the value.
     */
    public static final class Builder {
        private int initialCapacity = 16;
        private Executor executor = ForkJoinPool.commonPool();

        private Builder() {}

        /**
         * How many keys to size the cache for at first (default 16); it grows as needed.
         *
         * @throws IllegalArgumentException if {@code keys} is negative
         */
        public Builder initialCapacity(int keys) {
            if (keys < 0) {
                throw new IllegalArgumentException("initialCapacity must not be negative but was " + keys);
            }
            this.initialCapacity = keys;
            return this;
        }

        /**
         * Where the cache runs its maintenance (evicting expired keys) after reads and writes; default {@link
         * ForkJoinPool#commonPool()}. {@code Runnable::run} runs it on the calling threads.
         *
         * @throws IllegalArgumentException if {@code executor} is null
         */
        public Builder executor(Executor executor) {
            if (executor == null) {
                throw new IllegalArgumentException("executor must not be null");
            }
            this.executor = executor;
            return this;
        }

        /** A new storage with these settings. */
        public MemoryStorage build() {
            return new MemoryStorage(this);
        }
    }
}
