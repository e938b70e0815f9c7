package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Expiry;
import com.github.benmanes.caffeine.cache.Policy;
import com.github.benmanes.caffeine.cache.RemovalCause;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiFunction;
import java.util.function.IntConsumer;
import java.util.function.UnaryOperator;

/**
 * Guard's in-memory {@link Storage}, the embedded default: state in a Caffeine cache, evaluated with the reference
 * semantics of each {@link LimitSpec}, for one process.
 *
 * <pre>{@code
 * Storage storage = MemoryStorage.create();
 * }</pre>
 *
 * <p><b>Layout.</b> The cache maps a subject (a user, a chat, ...) to all of its state: the one holder of its only
 * key, or a group of holders, one slot per scope. A message that reads five keys of its user and one of its chat
 * costs two cache lookups, and a key the subject did not have (its duplicate window in a new chat) is a new slot in
 * the subject's entry, not a new cache entry. Slots are scanned, comparing scopes by identity first (guards pass the
 * same scope strings every time), then by value.
 *
 * <p><b>Fast paths.</b> A token bucket is kept in GCRA form (one theoretical arrival time), a fixed window as its
 * window and count in one long, and a cooldown, gate or membership as one deadline, so {@link #acquire} on a
 * subject's only key is a cache read and one compare-and-set: lock free and allocation free. One word owns all of a
 * subject's keys: the key's own while it is the only one, else its group's, so that a step on a key of a group, and a
 * batch of several steps, own each distinct subject's entry with one compare-and-set (a batch first tries each in
 * step order without waiting for any; if one is owned elsewhere, it lets go and takes them in one order of subjects,
 * waiting for each; a batch whose subjects all have entries and whose committing keys all exist in the form they run
 * on, as a chain's do from a user's second message on, first finds and evaluates them in one pass once it owns the
 * entries, a lone gate or set that it only reads included), evaluate every step, and commit all or none; they hold them only for that and never wait for
 * anything else meanwhile. A gate's or set's read of a key needs no owner when it changes nothing. Adding a slot
 * appends it in place while the group's array has room (up to its next prune), removing one replaces the array (copy
 * on write), both while owning the group, which readers never wait for; a holder that leaves a group, or a lone
 * holder that a new group copies, is marked dead first, so that a caller that found it goes back to the cache.
 * Every path gives the decisions of {@link dev.guard.spi.ReferenceStorage}; the contract suite's differential test
 * checks it.
 *
 * <p><b>Time and expiry.</b> The storage never reads the wall clock: the cache's clock is the newest {@code
 * nowMicros} that callers passed. A key's state is absent for the decisions exactly when its ttl has run out, and
 * is dropped some time after that, never before. A subject's entry lives as long as its longest-lived key needs:
 * one to two intervals after the subject's last use (any call that reads one of its keys, that one or another), an
 * interval being the limit's longest ttl ({@link
 * LimitSpec#maxTtlMicros()}, rounded up to at most twice that for token buckets) plus one millisecond; up to four
 * for a subject whose keys were in use across an interval (its renewal then grants four intervals and the next
 * comes three later, so a key in use renews a third as often); gates and memberships until their deadline; records
 * for ever. Reads do not touch the cache's expiry; a use renews it only once it is due, which an entry always is
 * before the cache could drop state that a commit then could create, and renews it through the cache's update of the
 * subject (at most once an interval, under the cache's lock of that entry), so that of renewals and updates racing on
 * older and newer clocks the newest always stays. The
 * cache evicts during its maintenance, which writes trigger and which runs on the calling thread unless an
 * {@linkplain Builder#executor executor} is given; no thread is started. State whose ttl ended on the newest clock
 * seen may be gone even for a later call that carries an earlier time, and deadlines before 1970 count as passed.
 *
 * <p><b>Memory.</b> Entries that expire are bounded as before: by the subjects used in the last two intervals of their
 * longest-lived key (four for a subject in use across an interval), plus what expired since the last
 * write. Within a group, a slot whose state has expired (and that
 * was created more than one interval ago, so that nobody is about to use it; for a key that was its subject's only
 * one, whose last renewal as such is due) is dropped when the group is pruned: an
 * addition prunes once the group has twice as many slots as its last prune kept, and at least eight, so that a group
 * being written holds at most twice its live slots, or eight. In between an addition only appends, and an expired slot
 * whose scope comes back (a bucket that refilled between two messages) is used again. A group that is no longer written
 * but outlives its other keys (a member of a set for ever, a record) would keep their expired slots: so one slot
 * addition in 32, at random, also advances a sweep by one entry, walking the cache with one resumable, weakly
 * consistent iterator, and prunes that group (or drops it if nothing is left). A pass over n entries takes about 32·n
 * slot additions, and an expired slot of an idle group is reclaimed at most one pass after it expired. A pass starts
 * over when the number of entries has doubled since it began (its iterator keeps the hash table it started on), which
 * only a growing map does. Between writes nothing is added, so nothing grows. A lone key costs one cache entry and its
 * holder (130 to 140 bytes for a token bucket, measured by the benchmarks' {@code ResidentKeys}, the upper figure while
 * the map grows and the sweep's iterator still holds the previous hash table); a group costs about 90 bytes more, plus
 * 12 per slot.
 *
 * <p><b>Concurrency.</b> Thread-safe. Calls that do not overlap behave exactly as the reference; overlapping calls are
 * linearizable, except that a token bucket read by a caller whose clock is behind a concurrent commit's may see the
 * bucket refilled up to its own time rather than the commit's (never more permissive; a bucket that is its subject's
 * only key and moves into a group, or to another representation, while a commit on it is under way may keep that older
 * time of its last refill until its next commit, which is never more permissive either), and that a batch does not see
 * a gate or set key that it read as absent being added and removed again while it reads its other such keys (it reads
 * the keys of a subject whose entry it does not own, a subject's only key if a gate or set, or a key of a subject that
 * has none, without owning them, one after another, and then all but the last once more).
 *
 * <p>A key holds either limit state or a record: a limit step reads a record's key as absent, and one that commits
 * drops the record (a rejected step or batch leaves it). {@link #forget}
 * removes the subject's entry, all its keys at once. {@link #close()} drops all state; the storage stays usable,
 * empty.
 */
public final class MemoryStorage implements Storage {
    private final CallerClock clock = new CallerClock();
    private final Cache<String, Entry> cache;
    private final ConcurrentMap<String, Entry> map;
    private final Policy<String, Entry> policy;

    /** Who sweeps now (the others skip their turn), and where the sweep is: owned by that thread. */
    private final AtomicBoolean sweeping = new AtomicBoolean();

    private Iterator<Entry> sweep;

    /** The number of entries when {@link #sweep} started; owned by the sweeping thread. */
    private long sweepStartSize;

    /**
     * One slot addition in this many (at random, so that threads share nothing to count) advances the sweep by one
     * entry. Groups that are written prune themselves; the sweep is for those that are not, and costs cache misses.
     */
    static final int SWEEP_EVERY = 32;

    /** For tests: told each step a batch read without owning its key, right after the read; null otherwise. */
    private final IntConsumer unownedRead;

    /** For tests: told the step whose holder a batch found owned elsewhere, after letting go of the rest; or null. */
    private final IntConsumer contended;

    /** For tests: told the size of each batch that ran in one pass owning its subjects' entries; or null. */
    private final IntConsumer onePass;

    private MemoryStorage(Builder builder) {
        this.unownedRead = builder.unownedRead;
        this.contended = builder.contended;
        this.onePass = builder.onePass;
        this.cache = Caffeine.newBuilder()
                .initialCapacity(builder.initialCapacity)
                .executor(builder.executor)
                .ticker(clock)
                .expireAfter(builder.expiry.apply(new HolderExpiry(clock)))
                .evictionListener(MemoryStorage::evicted)
                .build();
        this.map = cache.asMap();
        this.policy = cache.policy();
    }

    /** A memory storage with the defaults. */
    public static MemoryStorage create() {
        return builder().build();
    }

    /** A builder of a memory storage. */
    public static Builder builder() {
        return new Builder();
    }

    private static void evicted(String subject, Entry entry, RemovalCause cause) {
        if (entry != null) {
            entry.retire();
        }
    }

    /**
     * The live entry of {@code subject}, or null. Reads around the cache's bookkeeping, and renews the entry's
     * expiry in the cache only when it is due.
     */
    private Entry lookupEntry(String subject) {
        Entry entry = policy.getIfPresentQuietly(subject);
        return entry == null ? null : renewedIfDue(subject, entry);
    }

    /**
     * {@code entry}, {@code subject}'s, or when its renewal is due the entry that renewing it answers (null if it
     * expired). The cache's update asks the entry for its lifetime, which notes the next due time with it.
     */
    private Entry renewedIfDue(String subject, Entry entry) {
        return entry.needsExtension(clock.newestMicros()) ? renew(subject) : entry;
    }

    /** Keeps a subject's entry as it is: the cache's update then sets the lifetime the entry asks for now. */
    private static final BiFunction<String, Entry, Entry> KEEP = (subject, entry) -> entry;

    /**
     * Renews the expiry of {@code subject}'s entry; answers the entry, or null if the subject has none (it expired).
     *
     * <p>Through the cache's atomic update of the subject, not a read: an update reads the cache's clock, asks the
     * entry for its lifetime and sets it in one step that no other update of the subject interleaves with, so the
     * expiry that stays is the newest clock's, and what the entry noted of it (a group, inside {@link
     * Entry#lifetimeNanos}) is what the cache keeps. A read's renewal is a compare-and-set that loses, without a
     * word, to any change of the expiry since the read began (another renewal or an update, on an older clock): the
     * storage would then expect a lifetime the cache never set, and skip the renewals that keep its state.
     */
    private Entry renew(String subject) {
        return map.computeIfPresent(subject, KEEP);
    }

    /** The live holder at {@code key}, or null. */
    private Holder lookup(StateKey key) {
        Entry entry = lookupEntry(key.subject());
        return entry == null ? null : entry.slot(key.scope());
    }

    /** The holder at {@code key}, created for a first committing step of {@code spec} if there is none. */
    private Holder lookupOrCreate(StateKey key, LimitSpec spec, long nowMicros) {
        while (true) {
            Entry entry = lookupEntry(key.subject());
            Holder holder = entry == null ? null : entry.slot(key.scope());
            if (holder != null) {
                // The slot may have been added after lookupEntry read the entry's due time (an addition brings the
                // renewal forward): renewed first, or the cache could drop the group before the state committed here
                // expires.
                if (renewedIfDue(key.subject(), entry) != entry) {
                    continue;
                }
                return holder;
            }
            holder = entry instanceof Group g ? added(g, key.scope(), spec, nowMicros) : created(key, spec, nowMicros);
            if (holder != null) {
                return holder;
            }
        }
    }

    /**
     * A new slot for {@code key} in {@code group}, without the cache unless the group's renewal is due; null if the
     * group left the cache meanwhile (start over).
     */
    private Holder added(Group group, String scope, LimitSpec spec, long nowMicros) {
        long clockMicros = clock.newestMicros();
        Holder holder = group.add(fresh(scope, spec, nowMicros, clockMicros), clockMicros);
        if (holder == null || (group.needsExtension(clockMicros) && renew(group.subject) != group)) {
            return null;
        }
        sweep();
        return holder;
    }

    /** The holder for {@code key} through the cache's atomic update of its subject: a new entry, or a group. */
    private Holder created(StateKey key, LimitSpec spec, long nowMicros) {
        long clockMicros = clock.newestMicros();
        Entry entry =
                update(key, current -> current != null ? current : fresh(key.scope(), spec, nowMicros, clockMicros));
        sweep();
        return entry == null ? null : entry.slot(key.scope());
    }

    /**
     * Replaces the holder at {@code key} (null if none) by what {@code change} answers for it (null: none), inside
     * the cache's atomic update of the subject and owning its group if it has one; answers the subject's entry after.
     * A holder replaced is retired; {@code change} may own and retire it itself, and must not call the cache.
     */
    private Entry update(StateKey key, UnaryOperator<Holder> change) {
        String scope = key.scope();
        return map.compute(key.subject(), (subject, entry) -> {
            if (entry instanceof Group group) {
                long word = group.lock();
                boolean dead = false;
                try {
                    Holder current = group.slot(scope);
                    Holder next = change.apply(current);
                    if (next == current) {
                        return group;
                    }
                    if (current != null) {
                        current.retire();
                    }
                    if (group.rewrite(clock.newestMicros(), next) > 0) {
                        return group;
                    }
                    group.markDead();
                    dead = true;
                    return null;
                } finally {
                    if (!dead) {
                        group.unlock(word);
                    }
                }
            }
            Holder current = entry == null ? null : entry.slot(scope);
            Holder next = change.apply(current);
            if (next == current) {
                return entry;
            }
            if (current != null) {
                current.retire();
            }
            if (entry == current) {
                return next;
            }
            if (next == null) {
                return entry;
            }
            // The subject's lone holder is of another scope: both go into a new group, which owns them with its one
            // word. The lone one's own word owned its state until now (a caller may still be about to change it
            // lock free): it is copied, and retired, so that such a caller looks the key up again.
            Holder lone = (Holder) entry;
            long owned = lone.retire();
            return owned == Holder.DEAD ? next : new Group(subject, lone.copyOf(owned), next);
        });
    }

    /**
     * Walks one step of the sweep, one time in {@link #SWEEP_EVERY}: drops the expired slots of the next group (and
     * the group if none is left). Called after every slot addition; a thread that finds another sweeping skips its
     * turn.
     */
    private void sweep() {
        if ((ThreadLocalRandom.current().nextInt() & (SWEEP_EVERY - 1)) != 0 || !sweeping.compareAndSet(false, true)) {
            return;
        }
        try {
            Iterator<Entry> entries = sweep;
            long size = cache.estimatedSize();
            // An iterator keeps the hash table it started on: once the map has doubled since, that table is garbage
            // worth more than the pass's progress, so start over on the current one.
            if (entries == null || !entries.hasNext() || size > 2 * sweepStartSize + 16) {
                entries = map.values().iterator();
                sweep = entries;
                sweepStartSize = size;
                if (!entries.hasNext()) {
                    return;
                }
            }
            if (entries.next() instanceof Group group && group.prune(clock.newestMicros()) == 0) {
                map.computeIfPresent(
                        group.subject, (subject, entry) -> entry == group && group.retireIfEmpty() ? null : entry);
            }
        } finally {
            sweeping.set(false);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Limits

    /**
     * {@inheritDoc}
     *
     * <p>In memory: several steps own their subjects' entries, one word each for all of a subject's keys (briefly,
     * never around anything that blocks): in step order when none is owned elsewhere, else in one order of subjects; a
     * single step takes the path of {@link #acquire}.
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
        // The storage's own buffer for this thread: nothing it calls evaluates another batch on the same thread.
        BatchBuffer buffer = BUFFER.get();
        try {
            for (int i = 0; i < batch.size(); i++) {
                buffer.add(batch.step(i));
            }
            evaluateLocked(buffer, nowMicros);
            return buffer.toResult();
        } finally {
            buffer.clear();
        }
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: {@link #evaluate} without its objects: no batch, step, key or result is created on an existing
     * subject (a new key creates its holder, and the cache's maintenance allocates now and then).
     *
     * @throws NullPointerException if {@code buffer} is null
     * @throws IllegalArgumentException if {@code buffer} is empty
     */
    @Override
    public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
        Objects.requireNonNull(buffer, "buffer must not be null");
        int n = buffer.size();
        if (n == 0) {
            throw new IllegalArgumentException("buffer must not be empty");
        }
        clock.observe(nowMicros);
        if (n == 1) {
            long outcome = acquireObserved(buffer.key(0), buffer.spec(0), buffer.permits(0), nowMicros);
            buffer.setOutcome(0, outcome);
            return Outcome.isAdmitted(outcome);
        }
        evaluateLocked(buffer, nowMicros);
        return buffer.admitted();
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: lock free and allocation free on a subject's only key for a token bucket, a fixed window, a
     * cooldown, a gate and a membership (for buckets whose refill needs at most 1021 ticks per microsecond, windows
     * whose count and index fit one long, and times in [0, 2^53)); other kinds own the key for the step, and a step on
     * a key of a subject with several owns the subject's entry (one compare-and-set, allocation free), except a
     * gate's or membership's read of a live or absent deadline, which owns nothing. A lock-free step that finds its
     * key owned (by a batch, which holds it for a few arithmetic operations) waits for it.
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
        Holder holder = commits(spec) ? lookupOrCreate(key, spec, nowMicros) : lookup(key);
        if (holder == null) {
            return spec.evaluate(null, nowMicros, permits);
        }
        Group group = holder.group();
        long outcome = group == null
                ? holder.tryAcquire(spec, permits, nowMicros)
                : readInGroup(holder, group, spec, permits, nowMicros);
        if (outcome != Holder.SLOW) {
            return outcome;
        }
        // A slot of a group, or a lone holder that cannot answer without owning it: own it, starting with the holder
        // found if it can run the step as it is.
        boolean found = !commits(spec) || !needsConversion(holder, spec, nowMicros, false);
        return acquireLocked(key, found ? holder : null, spec, permits, nowMicros);
    }

    /**
     * A gate's or set's read of a slot's deadline without owning its group, when the read settles nothing (the
     * deadline is live or absent) and the group is not owned once the word is read (an owner may be writing its
     * slots: then, as any other step on a slot, {@link Holder#SLOW}, to own the group).
     */
    private static long readInGroup(Holder holder, Group group, LimitSpec spec, long permits, long nowMicros) {
        if (commits(spec) || !(holder instanceof DeadlineHolder)) {
            return Holder.SLOW;
        }
        long word = holder.word();
        if (word == Holder.DEAD || word == Holder.BUSY || holder.settle(word, nowMicros) != word || group.word() != 0) {
            return Holder.SLOW;
        }
        return holder.peek(word, spec, permits, nowMicros);
    }

    /**
     * One step owning its holder (a lone holder's word, or its group's): the batch path without a batch's arrays.
     * {@code found}: the holder to try first (null: look it up).
     */
    private long acquireLocked(StateKey key, Holder found, LimitSpec spec, long permits, long nowMicros) {
        boolean convertRecords = false;
        for (int attempt = 0; ; attempt++) {
            Holder holder = attempt == 0 && found != null ? found : resolve(key, spec, nowMicros, convertRecords);
            if (holder == null) {
                return spec.evaluate(null, nowMicros, permits);
            }
            long word = holder.own();
            if (word == Holder.DEAD) {
                Holder.backOff(attempt);
                continue;
            }
            long outcome;
            try {
                outcome = holder.peek(word, spec, permits, nowMicros);
                if (Outcome.isAdmitted(outcome) && commits(spec) && holder instanceof RecordHolder) {
                    // The step commits where a record is: only now is the record dropped, as the reference drops it.
                    convertRecords = true;
                    continue;
                }
                word = Outcome.isAdmitted(outcome) && commits(spec)
                        ? holder.commit(word, spec, permits, nowMicros)
                        : holder.settle(word, nowMicros);
            } finally {
                holder.release(word);
            }
            renewIfOutlived(key.subject(), holder);
            return outcome;
        }
    }

    /**
     * Renews the expiry of {@code subject}'s entry if {@code holder} has {@linkplain ArrayHolder#outlived outlived}
     * its interval.
     */
    private void renewIfOutlived(String subject, Holder holder) {
        if (holder instanceof ArrayHolder a) {
            if (a.outlived(clock.newestMicros())) {
                renew(subject);
            }
        }
    }

    /** Whether a batch reads {@code holder} for {@code step} without owning it: a gate or set read of one deadline. */
    private static boolean readsWithoutLock(LimitSpec spec, Holder holder) {
        return holder instanceof DeadlineHolder && !commits(spec);
    }

    /** Whether steps of {@code spec} change state; gates and memberships only read theirs. */
    private static boolean commits(LimitSpec spec) {
        return !(spec instanceof Gate || spec instanceof Membership);
    }

    /** The holder for a new key whose first committing step has {@code spec}. */
    private static Holder fresh(String scope, LimitSpec spec, long nowMicros, long clockMicros) {
        if (spec instanceof TokenBucket b && BucketHolder.eligible(b) && Holder.fastTime(nowMicros)) {
            return new BucketHolder(scope, b, clockMicros);
        }
        if (spec instanceof FixedWindow w && WindowHolder.eligible(w) && Holder.fastTime(nowMicros)) {
            return new WindowHolder(scope, w, clockMicros);
        }
        if (spec instanceof Cooldown && Holder.fastTime(nowMicros)) {
            return new DeadlineHolder(scope, spec, Holder.ABSENT, clockMicros);
        }
        return new ArrayHolder(scope, spec, ArrayHolder.horizonOf(spec), null, 0, clockMicros);
    }

    /**
     * The working arrays for batches, kept with the buffer being evaluated ({@link BatchBuffer#attachment()}, since a
     * buffer is used from one thread at a time), so that a batch allocates only its result. A batch never calls back
     * into code that could start another one on the same thread.
     */
    private static final class Scratch {
        Holder[] holders = new Holder[8];
        Entry[] entries = new Entry[8];
        long[] words = new long[8];
        long[] outcomes = new long[8];

        /** Per step: the index of its owner in {@link #owners}, or {@link #READ_ABSENT} and the like. */
        int[] ownerOf = new int[8];

        /** The distinct entries the batch owns: lone holders and groups. */
        Entry[] owners = new Entry[8];

        /** Per owner: its word when owned (a lone holder's state, to be written back; a group's 0). */
        long[] ownerWords = new long[8];

        /** Per owner: the first step that it owns (whose subject is the owner's). */
        int[] ownerStep = new int[8];

        /** The owners' indexes in the order the batch owns them. */
        int[] order = new int[8];

        /** Per owner: the hash code of its subject, for the one order of owners. */
        int[] hashes = new int[8];

        Scratch fit(int n) {
            if (holders.length < n) {
                holders = new Holder[n];
                entries = new Entry[n];
                words = new long[n];
                outcomes = new long[n];
                ownerOf = new int[n];
                owners = new Entry[n];
                ownerWords = new long[n];
                ownerStep = new int[n];
                order = new int[n];
                hashes = new int[n];
            }
            return this;
        }
    }

    /** The working arrays kept with {@code buffer}: its attachment, or new ones attached to it. */
    private static Scratch scratchOf(BatchBuffer buffer) {
        if (buffer.attachment() instanceof Scratch scratch) {
            return scratch;
        }
        Scratch scratch = new Scratch();
        buffer.attach(scratch);
        return scratch;
    }

    /** The buffer that {@link #evaluate} fills with a batch's steps, one per thread. */
    private static final ThreadLocal<BatchBuffer> BUFFER = ThreadLocal.withInitial(() -> new BatchBuffer(8));

    /** What {@link #runLocked} did: evaluated and committed or settled the batch. */
    private static final int DONE = 0;

    /** What {@link #runLocked} did: nothing, a holder was dead or a key appeared; start over. */
    private static final int RETRY = 1;

    /** What {@link #runLocked} did: nothing, the batch admits and commits at a record's key; convert it first. */
    private static final int CONVERT_RECORDS = 2;

    /**
     * What {@link #runLocked} did when only trying its entries: nothing, one was owned by another thread; own them in
     * the order of subjects.
     */
    private static final int CONTENDED = 3;

    /** Attempts after which a batch owns even the holders it only reads. */
    private static final int OWN_ALL_AFTER = 4;

    /**
     * Evaluates a batch owning all its holders, retrying when one left the cache meanwhile; writes the outcomes into
     * {@code batch}. A batch first tries one pass owning its subjects' entries ({@link #evaluatedInGroup} for
     * one subject, {@link #evaluatedInOnePass} for several); the general path below decides what that pass leaves.
     */
    private void evaluateLocked(BatchBuffer batch, long nowMicros) {
        int n = batch.size();
        Scratch scratch = scratchOf(batch).fit(n);
        Holder[] holders = scratch.holders;
        Entry[] entries = scratch.entries;
        if (oneSubject(batch)
                ? evaluatedInGroup(batch, scratch, nowMicros)
                : evaluatedInOnePass(batch, scratch, nowMicros)) {
            return;
        }
        try {
            boolean convertRecords = false;
            for (int attempt = 0; ; attempt++) {
                for (int i = 0; i < n; i++) {
                    holders[i] = resolve(batch, i, entries, nowMicros, convertRecords);
                }
                // Reading gates and sets without owning them saves a compare-and-set each, but two batches can keep
                // finding each other's holders busy: after a few rounds, own everything.
                boolean ownAll = attempt >= OWN_ALL_AFTER;
                int owning = owners(batch, holders, entries, scratch, ownAll);
                // First the owners in step order, only trying each (no hashes, no sort): a batch that waits for
                // nobody cannot be part of a deadlock, whatever its order. Only when one is owned elsewhere does the
                // batch own them in the one order of subjects, waiting for each.
                int ran = CONTENDED;
                if (!ownAll) {
                    for (int k = 0; k < owning; k++) {
                        scratch.order[k] = k;
                    }
                    ran = runLocked(batch, holders, entries, scratch, owning, ownAll, true, nowMicros);
                }
                if (ran == CONTENDED) {
                    subjectOrder(batch, scratch, owning);
                    ran = runLocked(batch, holders, entries, scratch, owning, ownAll, false, nowMicros);
                }
                if (ran == DONE) {
                    done(batch, holders, scratch.outcomes);
                    return;
                }
                if (ran == CONVERT_RECORDS) {
                    // The batch commits where records are: only now are they dropped, as the reference drops them.
                    convertRecords = true;
                    continue;
                }
                Holder.backOff(attempt);
            }
        } finally {
            // Keep no holder reachable from the thread after the batch.
            Arrays.fill(holders, 0, n, null);
            Arrays.fill(entries, 0, n, null);
            Arrays.fill(scratch.owners, 0, n, null);
        }
    }

    /**
     * Evaluates {@code batch}, whose steps are all one subject's (the same string: a guard passes one subject string
     * for all of a private chat's steps), in one pass owning the subject's group, when it can: its entry is a group
     * that has the key of every step that commits, in the form the step runs on. {@link #evaluatedInOnePass} for one
     * subject's group, with less to do; a subject whose entry is a lone holder goes to that pass, and answers what
     * it answers. It owns the group with one compare-and-set, finds each key and evaluates it while it does (no key
     * can join or leave the group meanwhile, so a key absent then is absent at the batch's linearization point, and
     * nothing read before owning has to be checked again but the entry, which owning it proves live), and commits
     * all or none. Answers false having changed nothing where the general path must decide: no entry, the group
     * owned elsewhere, dead or due for renewal (a slot that another thread added after the lookup may have brought the
     * renewal forward, as in {@link #lookupOrCreate}), a key to create or convert, or an admitted batch that commits
     * at a record's key.
     */
    private boolean evaluatedInGroup(BatchBuffer batch, Scratch scratch, long nowMicros) {
        int n = batch.size();
        String subject = batch.subject(0);
        Entry entry = lookupEntry(subject);
        if (!(entry instanceof Group group)) {
            // A subject whose only key is a lone holder (a user's bucket, read with an absent ban): the pass for
            // several subjects, which owns lone holders.
            return entry != null && evaluatedInOnePass(batch, scratch, nowMicros);
        }
        long owned = group.tryLock();
        if (owned == Holder.BUSY || owned == Holder.DEAD) {
            return false;
        }
        Holder[] holders = scratch.holders;
        long[] words = scratch.words;
        long[] outcomes = scratch.outcomes;
        boolean ran = false;
        try {
            // Exact while the group is owned: nothing renews or adds a slot meanwhile.
            if (group.needsExtension(clock.newestMicros())) {
                return false;
            }
            boolean admitted = true;
            for (int i = 0; i < n; i++) {
                Holder h = group.slot(batch.scope(i));
                // A slot's word is plain state, which only the group's owner changes.
                long word = h == null ? Holder.ABSENT : h.word();
                if (leavesOnePass(batch, i, h, word, nowMicros)) {
                    return false;
                }
                holders[i] = h;
                words[i] = word;
                outcomes[i] = peeked(batch, i, h, word, nowMicros);
                admitted &= Outcome.isAdmitted(outcomes[i]);
            }
            if (admitted && commitsAtRecord(batch, holders)) {
                return false;
            }
            for (int i = 0; i < n; i++) {
                Holder h = holders[i];
                if (h != null) {
                    long next = committed(batch, i, h, words[i], admitted, nowMicros);
                    if (next != words[i]) {
                        // Published when the group is let go of.
                        h.unlock(next);
                    }
                }
            }
            ran = true;
        } finally {
            group.unlock(owned);
            if (!ran) {
                Arrays.fill(holders, 0, n, null);
            }
        }
        return passed(batch, holders, outcomes);
    }

    /**
     * Evaluates {@code batch} (mostly of several subjects) in one pass owning their entries, when it can: the
     * entry of every subject of the batch (a group, or a lone holder) is live and has the key of every step that
     * commits, in the form the step runs on. A group chat's chain is its user's keys and its chat's (a private chat's
     * is its user's alone, which {@link #evaluatedInGroup} takes). The pass
     * owns each distinct entry with one compare-and-set, in step order and only trying each (so it waits for nobody
     * and cannot be part of a deadlock), finds each key and evaluates it while it owns them all (no key can join or
     * leave an owned entry: a new key of a group is a slot its owner adds, and one of a lone holder's subject makes a
     * group that retires the holder first, which waits for its owner; so a key absent then is absent at the batch's
     * linearization point, and nothing read before owning has to be checked again but the entries, which owning them
     * proves live), and commits all or none. Answers false having changed nothing where the general path must
     * decide: a subject without an entry, an entry owned elsewhere, dead or due for renewal (a slot that another
     * thread added after the lookup may have brought a group's renewal forward, as in {@link #lookupOrCreate}), a key
     * to create or convert, or an admitted batch that commits at a record's key. Subjects are told apart as strings
     * by reference (a guard passes one string per subject): one subject in two strings finds its entry owned by the
     * pass itself, and goes the general way.
     */
    private boolean evaluatedInOnePass(BatchBuffer batch, Scratch scratch, long nowMicros) {
        int n = batch.size();
        Entry[] owners = scratch.owners;
        long[] ownerWords = scratch.ownerWords;
        int[] ownerOf = scratch.ownerOf;
        int[] ownerStep = scratch.ownerStep;
        Holder[] holders = scratch.holders;
        long[] words = scratch.words;
        long[] outcomes = scratch.outcomes;
        int owning = 0;
        int locked = 0;
        boolean ran = false;
        try {
            for (int i = 0; i < n; i++) {
                String subject = batch.subject(i);
                int k = 0;
                while (k < owning && batch.subject(ownerStep[k]) != subject) {
                    k++;
                }
                if (k == owning) {
                    Entry entry = lookupEntry(subject);
                    if (entry == null) {
                        return false;
                    }
                    owners[k] = entry;
                    ownerStep[k] = i;
                    owning++;
                }
                ownerOf[i] = k;
            }
            long clockMicros = clock.newestMicros();
            for (; locked < owning; locked++) {
                long word = owners[locked].tryLock();
                if (word == Holder.BUSY || word == Holder.DEAD) {
                    return false;
                }
                ownerWords[locked] = word;
                // Exact for a group while it is owned: nothing renews it or adds a slot meanwhile. (A lone holder's
                // renewal owns nothing and its due time never comes earlier: for it the check only errs on the safe
                // side.)
                if (owners[locked].needsExtension(clockMicros)) {
                    locked++;
                    return false;
                }
            }
            boolean admitted = true;
            for (int i = 0; i < n; i++) {
                Entry owner = owners[ownerOf[i]];
                // Mostly a group (a subject with several keys): called as one, which the compiler takes in whole.
                Holder h = owner instanceof Group g ? g.slot(batch.scope(i)) : owner.slot(batch.scope(i));
                // A slot's state is its word, which only its group's owner changes; a lone holder's, its owner's.
                long word = h == null ? Holder.ABSENT : owner == h ? ownerWords[ownerOf[i]] : h.word();
                if (leavesOnePass(batch, i, h, word, nowMicros)) {
                    return false;
                }
                holders[i] = h;
                words[i] = word;
                outcomes[i] = peeked(batch, i, h, word, nowMicros);
                admitted &= Outcome.isAdmitted(outcomes[i]);
            }
            if (admitted && commitsAtRecord(batch, holders)) {
                return false;
            }
            for (int i = 0; i < n; i++) {
                Holder h = holders[i];
                if (h != null) {
                    long next = committed(batch, i, h, words[i], admitted, nowMicros);
                    if (owners[ownerOf[i]] == h) {
                        // Written when the holder is let go of.
                        ownerWords[ownerOf[i]] = next;
                    } else if (next != words[i]) {
                        // Published when the group is let go of.
                        h.unlock(next);
                    }
                }
            }
            ran = true;
        } finally {
            for (int k = 0; k < locked; k++) {
                owners[k].unlock(ownerWords[k]);
            }
            Arrays.fill(owners, 0, owning, null);
            if (!ran) {
                Arrays.fill(holders, 0, n, null);
            }
        }
        return passed(batch, holders, outcomes);
    }

    /** Ends a batch that ran in one pass ({@link #done}), and tells the test hook: true. */
    private boolean passed(BatchBuffer batch, Holder[] holders, long[] outcomes) {
        done(batch, holders, outcomes);
        IntConsumer hook = onePass;
        if (hook != null) {
            hook.accept(batch.size());
        }
        return true;
    }

    /**
     * Whether a one pass must leave step {@code i} of {@code batch} to the general path: its key is absent ({@code h}
     * null) and the step commits (the key is to be created), or its holder, whose word the pass read as {@code word},
     * is dead or must be converted first.
     */
    private static boolean leavesOnePass(BatchBuffer batch, int i, Holder h, long word, long nowMicros) {
        LimitSpec spec = batch.spec(i);
        if (h == null) {
            return commits(spec);
        }
        return word == Holder.DEAD || (commits(spec) && needsConversion(h, spec, nowMicros, false));
    }

    /** The outcome of step {@code i} of {@code batch} on holder {@code h} (null: absent) whose word is {@code word}. */
    private static long peeked(BatchBuffer batch, int i, Holder h, long word, long nowMicros) {
        return h == null
                ? batch.spec(i).evaluate(null, nowMicros, batch.permits(i))
                : Holder.peek(h, word, batch.spec(i), batch.permits(i), nowMicros);
    }

    /** Whether every step of {@code batch} has the same subject string. */
    private static boolean oneSubject(BatchBuffer batch) {
        String subject = batch.subject(0);
        for (int i = 1; i < batch.size(); i++) {
            if (batch.subject(i) != subject) {
                return false;
            }
        }
        return true;
    }

    /**
     * What committing step {@code i} of {@code batch} (or settling it, when the batch is not {@code admitted} or the
     * step only reads) makes of the word {@code word} of its holder {@code h}, which the batch owns: the next word.
     */
    private static long committed(BatchBuffer batch, int i, Holder h, long word, boolean admitted, long nowMicros) {
        LimitSpec spec = batch.spec(i);
        return admitted && commits(spec)
                ? Holder.commit(h, word, spec, batch.permits(i), nowMicros)
                : Holder.settle(h, word, nowMicros);
    }

    /** Whether a step of {@code batch} that commits would commit at a record's key (to be converted first). */
    private static boolean commitsAtRecord(BatchBuffer batch, Holder[] holders) {
        for (int i = 0; i < batch.size(); i++) {
            if (holders[i] instanceof RecordHolder && commits(batch.spec(i))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Ends a batch that ran: renews the subject of a holder whose state now outlives what the cache was told, writes
     * the outcomes into {@code batch}, and keeps no holder reachable from the thread.
     */
    private void done(BatchBuffer batch, Holder[] holders, long[] outcomes) {
        try {
            for (int i = 0; i < batch.size(); i++) {
                renewIfOutlived(batch.subject(i), holders[i]);
                batch.setOutcome(i, outcomes[i]);
            }
        } finally {
            Arrays.fill(holders, 0, batch.size(), null);
        }
    }

    /**
     * The holder step {@code i} of {@code batch} runs on, as {@link #resolve(StateKey, LimitSpec, long, boolean)}; a
     * subject met by an earlier step is not looked up again: {@code entries} holds what each step found (null: look
     * up).
     */
    private Holder resolve(BatchBuffer batch, int i, Entry[] entries, long nowMicros, boolean convertRecords) {
        String subject = batch.subject(i);
        String scope = batch.scope(i);
        Entry entry = null;
        for (int j = 0; j < i; j++) {
            if (batch.subject(j) == subject) {
                entry = entries[j];
                break;
            }
        }
        if (entry == null) {
            entry = lookupEntry(subject);
        }
        Holder holder = entry == null ? null : entry.slot(scope);
        if (holder != null) {
            // As in lookupOrCreate: the slot may be newer than the due time read when the entry was looked up (for an
            // earlier step, perhaps).
            Entry renewed = renewedIfDue(subject, entry);
            if (renewed != entry) {
                entry = renewed;
                holder = entry == null ? null : entry.slot(scope);
            }
        }
        LimitSpec spec = batch.spec(i);
        if (commits(spec) && (holder == null || needsConversion(holder, spec, nowMicros, convertRecords))) {
            if (holder == null && entry instanceof Group group) {
                // A new key of a subject that has a group (a new chat's key): a slot in the group just found, without
                // looking the subject up again.
                holder = added(group, scope, spec, nowMicros);
            }
            if (holder == null || needsConversion(holder, spec, nowMicros, convertRecords)) {
                holder = resolve(batch.key(i), spec, nowMicros, convertRecords);
            }
            // A group stays the subject's entry when a slot is added to it (if it died, its holders say so).
            entry = entry instanceof Group ? entry : null;
        }
        entries[i] = entry;
        return holder;
    }

    /**
     * The holder a step runs on: created or converted for committing steps, possibly null for read-only ones. A
     * record's holder is converted only when {@code convertRecords} (the step is known to commit): a rejected step
     * must leave the record, as the reference does, and a record's holder reads as absent.
     */
    private Holder resolve(StateKey key, LimitSpec spec, long nowMicros, boolean convertRecords) {
        if (!commits(spec)) {
            return lookup(key);
        }
        Holder holder = lookupOrCreate(key, spec, nowMicros);
        while (needsConversion(holder, spec, nowMicros, convertRecords)) {
            Holder converted = convert(key, holder, spec, nowMicros);
            // The key may have left its subject's group right after the conversion (removed, or pruned by a
            // rewrite): look it up again.
            holder = converted != null ? converted : lookupOrCreate(key, spec, nowMicros);
        }
        return holder;
    }

    /**
     * Whether a committing step of {@code spec} must convert {@code holder} before it runs: the holder cannot run it,
     * and it is not a record's that is to be kept until the step is known to commit ({@code convertRecords} false).
     */
    private static boolean needsConversion(Holder holder, LimitSpec spec, long nowMicros, boolean convertRecords) {
        return !Holder.accepts(holder, spec, nowMicros) && (convertRecords || !(holder instanceof RecordHolder));
    }

    /**
     * Replaces {@code old} at {@code key} by an {@link ArrayHolder} with the same state that {@code spec} can run
     * on, inside the cache's atomic update of the subject; null if the key left the subject's entry right after. A
     * record goes along: it stays the key's until a limit commits there, which may not happen (the step rejects).
     */
    private Holder convert(StateKey key, Holder old, LimitSpec spec, long nowMicros) {
        long clockMicros = clock.newestMicros();
        Entry entry = update(key, current -> {
            if (current == null) {
                return fresh(key.scope(), spec, nowMicros, clockMicros);
            }
            if (current != old && current.accepts(spec, nowMicros)) {
                return current;
            }
            long word = current.lock();
            ArrayHolder converted = new ArrayHolder(
                    key.scope(),
                    current.writer(),
                    ArrayHolder.horizonOf(spec),
                    current.raw(word),
                    current.expiresAtMicros(word),
                    clockMicros,
                    current.record());
            current.markDead();
            return converted;
        });
        return entry.slot(key.scope());
    }

    /** A step whose key is absent and whose subject's entry the batch does not own: read without owning. */
    private static final int READ_ABSENT = -1;

    /** A step that reads a lone gate's or set's holder without owning it: one deadline. */
    private static final int READ_UNOWNED = -2;

    /**
     * A step whose key is absent in a subject's entry that the batch owns: no key of that subject can appear while it
     * does (a new key is a slot added by the group's owner, or for a lone holder a group made from it owning it), so
     * one look once it owns the entry ({@link #appeared}), for a key added since the batch resolved the step, settles
     * it.
     */
    private static final int ABSENT_OWNED = -3;

    /**
     * Notes in {@code scratch} what the batch owns: each distinct owner of its holders (a lone holder, or the group
     * of a holder in one: one word for all of a subject's keys), except lone gates and sets that it only reads (unless
     * {@code ownAll}), and for each step which owner it goes by ({@link Scratch#ownerOf}). Answers how many owners.
     */
    private static int owners(BatchBuffer batch, Holder[] holders, Entry[] entries, Scratch scratch, boolean ownAll) {
        int n = batch.size();
        Entry[] owners = scratch.owners;
        int[] ownerOf = scratch.ownerOf;
        int count = 0;
        for (int i = 0; i < n; i++) {
            Holder h = holders[i];
            if (h == null) {
                ownerOf[i] = READ_ABSENT;
                continue;
            }
            Group group = h.group();
            if (group == null && !ownAll && readsWithoutLock(batch.spec(i), h)) {
                ownerOf[i] = READ_UNOWNED;
                continue;
            }
            Entry owner = group != null ? group : h;
            int k = indexOf(owners, count, owner);
            if (k < 0) {
                k = count++;
                owners[k] = owner;
                scratch.ownerStep[k] = i;
            }
            ownerOf[i] = k;
        }
        for (int i = 0; i < n; i++) {
            if (ownerOf[i] == READ_ABSENT && entries[i] != null && indexOf(owners, count, entries[i]) >= 0) {
                ownerOf[i] = ABSENT_OWNED;
            }
        }
        return count;
    }

    private static int indexOf(Entry[] entries, int count, Entry entry) {
        for (int k = 0; k < count; k++) {
            if (entries[k] == entry) {
                return k;
            }
        }
        return -1;
    }

    /**
     * Writes into {@code scratch.order} the one order in which every batch that waits owns its entries: by the hash
     * of their subject, then the subject (at most one live entry per subject, so a total order on what can be
     * owned; a dead one is never waited for).
     */
    private static void subjectOrder(BatchBuffer batch, Scratch scratch, int owning) {
        int[] order = scratch.order;
        int[] hashes = scratch.hashes;
        for (int k = 0; k < owning; k++) {
            hashes[k] = batch.subject(scratch.ownerStep[k]).hashCode();
            int j = k;
            while (j > 0 && compare(batch, scratch, order[j - 1], k) > 0) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
    }

    /** The order of owners {@code a} and {@code b}: by their subject's hash code, then subject. */
    private static int compare(BatchBuffer batch, Scratch scratch, int a, int b) {
        int c = Integer.compare(scratch.hashes[a], scratch.hashes[b]);
        return c != 0 ? c : batch.subject(scratch.ownerStep[a]).compareTo(batch.subject(scratch.ownerStep[b]));
    }

    /**
     * Owns the entries in {@code scratch.order} (see {@link #owners}), evaluates every step against the state before
     * the batch, then commits all or none, exactly as {@code ReferenceStorage.evaluate}: {@link #DONE}; or does
     * nothing and answers {@link #RETRY} if an entry or holder was dead, a key that the batch read as absent has
     * appeared since it was resolved, or a key read without owning it changed before the last such read ({@link
     * #changedBefore}), or {@link #CONVERT_RECORDS} if the batch admits and would commit at a record's key (whose
     * holder cannot hold a limit). With {@code tryOnly} it never waits for an entry that another thread owns (so the
     * order may be any) and answers {@link #CONTENDED} having done nothing; otherwise the order must be {@link
     * #subjectOrder}'s.
     */
    private int runLocked(
            BatchBuffer batch,
            Holder[] holders,
            Entry[] entries,
            Scratch scratch,
            int owning,
            boolean ownAll,
            boolean tryOnly,
            long nowMicros) {
        Entry[] owners = scratch.owners;
        long[] ownerWords = scratch.ownerWords;
        int[] order = scratch.order;
        int[] ownerOf = scratch.ownerOf;
        long[] words = scratch.words;
        long[] outcomes = scratch.outcomes;
        int locked = 0;
        int contendedAt = -1;
        try {
            for (; locked < owning; locked++) {
                int k = order[locked];
                long word = tryOnly ? owners[k].tryLock() : owners[k].lock();
                if (word == Holder.DEAD) {
                    return RETRY;
                }
                if (word == Holder.BUSY) {
                    contendedAt = scratch.ownerStep[k];
                    return CONTENDED;
                }
                ownerWords[k] = word;
            }
            // Every entry the batch owns is owned from here on: reads and evaluations in one pass (peek changes
            // nothing, so a pass that has to start over has done no harm).
            int n = batch.size();
            boolean admitted = true;
            // The last step whose key the batch read without owning it (-1: none yet), and whether there was another.
            int lastUnowned = -1;
            boolean severalUnowned = false;
            for (int i = 0; i < n; i++) {
                Holder h = holders[i];
                LimitSpec spec = batch.spec(i);
                int k = ownerOf[i];
                if (k >= 0) {
                    // A slot's state is its word, which only its group's owner changes; a lone holder's, its owner's.
                    long word = h.group() == null ? ownerWords[k] : h.word();
                    if (word == Holder.DEAD) {
                        return RETRY;
                    }
                    words[i] = word;
                    outcomes[i] = Holder.peek(h, word, spec, batch.permits(i), nowMicros);
                } else if (k == ABSENT_OWNED || k == READ_ABSENT) {
                    if (appeared(batch, i, entries[i])) {
                        // A key that was absent when the batch resolved it (a gate or a set read; in an entry the
                        // batch owns, added before it owned it) exists now: the batch must read it at its
                        // linearization point, which is now. Start over.
                        return RETRY;
                    }
                    if (k == READ_ABSENT) {
                        severalUnowned |= lastUnowned >= 0;
                        lastUnowned = i;
                        readUnowned(i);
                    }
                    outcomes[i] = spec.evaluate(null, nowMicros, batch.permits(i));
                } else {
                    // Read once while every other holder is owned. A busy holder may belong to a batch waiting for
                    // one of ours: start over rather than wait.
                    words[i] = h.word();
                    if (words[i] == Holder.BUSY || words[i] == Holder.DEAD) {
                        return RETRY;
                    }
                    severalUnowned |= lastUnowned >= 0;
                    lastUnowned = i;
                    readUnowned(i);
                    outcomes[i] = Holder.peek(h, words[i], spec, batch.permits(i), nowMicros);
                }
                admitted &= Outcome.isAdmitted(outcomes[i]);
            }
            if (severalUnowned && changedBefore(batch, holders, entries, ownerOf, words, lastUnowned)) {
                // Keys read one after another without owning them: one that was open when read may have closed
                // before another opened (a gate raised, then a ban read by a later clock dropped), and the batch
                // would have admitted where no instant admits. Start over.
                return RETRY;
            }
            if (admitted && commitsAtRecord(batch, holders)) {
                return CONVERT_RECORDS;
            }
            for (int i = 0; i < n; i++) {
                int k = ownerOf[i];
                Holder h = holders[i];
                if (k >= 0) {
                    long word = words[i];
                    long next = committed(batch, i, h, word, admitted, nowMicros);
                    if (h.group() == null) {
                        // Written when the holder is let go of.
                        ownerWords[k] = next;
                    } else if (next != word) {
                        // Published when the group is let go of.
                        h.unlock(next);
                    }
                } else if (k == READ_UNOWNED) {
                    // Dropping an expired deadline is the only write; if the word changed meanwhile, so be it.
                    long settled = Holder.settle(h, words[i], nowMicros);
                    if (settled != words[i]) {
                        h.casWord(words[i], settled);
                    }
                }
            }
            return DONE;
        } finally {
            for (int j = 0; j < locked; j++) {
                int k = order[j];
                owners[k].unlock(ownerWords[k]);
            }
            IntConsumer hook = contended;
            if (contendedAt >= 0 && hook != null) {
                hook.accept(contendedAt);
            }
        }
    }

    /**
     * Whether a key that the batch read without owning it before step {@code last} (the last such read) changed
     * since it was read: its holder's word is another now, or a key read as absent appeared. If none did, each
     * still held at the last such read what the batch read, as the keys the batch owns did: that read is the
     * batch's linearization point. (A key read as absent that appeared and went again in between is not seen.)
     */
    private boolean changedBefore(
            BatchBuffer batch, Holder[] holders, Entry[] entries, int[] ownerOf, long[] words, int last) {
        for (int i = 0; i < last; i++) {
            if (ownerOf[i] == READ_ABSENT) {
                if (appeared(batch, i, entries[i])) {
                    return true;
                }
            } else if (ownerOf[i] == READ_UNOWNED && holders[i].word() != words[i]) {
                return true;
            }
        }
        return false;
    }

    /** Tells the test hook, if any, that the batch read step {@code i}'s key without owning it. */
    private void readUnowned(int i) {
        IntConsumer hook = unownedRead;
        if (hook != null) {
            hook.accept(i);
        }
    }

    /**
     * Whether step {@code i}'s key, absent when the batch resolved it in {@code found} (the subject's entry then, or
     * null), has a live holder now. An entry that is still alive is still the subject's entry (a group gains keys as
     * slots, and a lone holder is retired before a group takes its place): one scan, exact while the batch owns it.
     * Otherwise a quiet read of the cache: no maintenance (whose eviction could retire a holder the batch owns) and no
     * renewal.
     */
    private boolean appeared(BatchBuffer batch, int i, Entry found) {
        Entry entry = found != null && !found.isDead() ? found : policy.getIfPresentQuietly(batch.subject(i));
        if (entry == null) {
            return false;
        }
        Holder holder = entry.slot(batch.scope(i));
        return holder != null && !holder.isDead();
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
    public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        clock.observe(nowMicros);
        long clockMicros = clock.newestMicros();
        long[] result = new long[1];
        update(key, current -> {
            long deadline = untilMicros;
            if (current != null) {
                long word = current.lock();
                long old = current instanceof DeadlineHolder d
                        ? d.gateDeadline(word)
                        : current instanceof ArrayHolder a ? a.gateDeadline() : Long.MIN_VALUE;
                // A deadline that has passed is in force no more: it merges with nothing. (Its holder may still be
                // here: a slot of a group until a prune, or one that another kind's step converted.)
                if (old > nowMicros) {
                    deadline = Math.max(deadline, old);
                }
                current.markDead();
            }
            result[0] = deadline;
            return deadlineHolder(key.scope(), Gate.INSTANCE, deadline, clockMicros);
        });
        sweep();
        return result[0];
    }

    private static Holder deadlineHolder(String scope, LimitSpec writer, long until, long clockMicros) {
        if (DeadlineHolder.holds(until)) {
            return new DeadlineHolder(scope, writer, until, clockMicros);
        }
        // Deadlines in the sentinels' range (before the year -292000) keep the reference's exact behaviour.
        return new ArrayHolder(scope, writer, 0, new long[] {until}, until, clockMicros);
    }

    /**
     * {@inheritDoc}
     *
     * <p>In memory: an atomic update of the key.
     *
     * @throws NullPointerException if {@code key} is null
     */
    @Override
    public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        clock.observe(nowMicros);
        long clockMicros = clock.newestMicros();
        update(key, current -> deadlineHolder(key.scope(), Membership.MUST_BE_ABSENT, expiresAtMicros, clockMicros));
        sweep();
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
        update(key, current -> {
            if (current != null) {
                long word = current.retire();
                member[0] = word != Holder.DEAD && current.hasState(word);
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
        while (true) {
            Holder holder = holder(key);
            RecordHolder r = null;
            if (holder instanceof ArrayHolder) {
                // A record that a limit step converted: it goes when the step commits, which owns the holder.
                long word = holder.own();
                if (word == Holder.DEAD) {
                    continue;
                }
                r = holder.record();
                holder.release(word);
            } else if (holder != null) {
                r = holder.record();
            }
            return r == null ? Optional.empty() : Optional.of(new VersionedRecord(r.value, r.version));
        }
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
        update(key, current -> {
            // A converted record's holder loses the record when a limit commits there: read it owning the holder.
            boolean own = current instanceof ArrayHolder;
            long word = own ? current.lock() : 0;
            RecordHolder record = current == null ? null : current.record();
            long version = record == null ? 0 : record.version;
            if (version != expectedVersion) {
                if (own) {
                    current.unlock(word);
                }
                return current;
            }
            if (own) {
                current.markDead();
            }
            result[0] = version + 1;
            return new RecordHolder(key.scope(), copy, version + 1);
        });
        if (result[0] > 0) {
            sweep();
        }
        return result[0];
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Subjects, health, lifecycle

    /**
     * {@inheritDoc}
     *
     * <p>In memory: one atomic removal of the subject's entry. State whose ttl has run out is counted while the
     * storage still holds it.
     *
     * @throws NullPointerException if {@code subject} is null
     */
    @Override
    public long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        return remove(subject);
    }

    /** Removes the entry of {@code subject}; answers how many of its keys held state or a record. */
    private long remove(String subject) {
        long[] held = new long[1];
        map.computeIfPresent(subject, (s, entry) -> {
            if (entry instanceof Group group) {
                // Counted while owned: no slot comes or goes until the group is dead.
                long word = group.lock();
                if (word != Holder.DEAD) {
                    for (Holder holder : group.holders()) {
                        held[0] += held(holder);
                    }
                    group.markDead();
                }
            } else {
                held[0] += held((Holder) entry);
            }
            return null;
        });
        return held[0];
    }

    /** Retires {@code holder}; 1 if it held state or a record, else 0. */
    private static int held(Holder holder) {
        long word = holder.retire();
        return word != Holder.DEAD && (holder.record() != null || holder.hasState(word)) ? 1 : 0;
    }

    /** Always up: memory does not fail; the detail gives the number of subjects held. */
    @Override
    public StorageHealth health() {
        return StorageHealth.up(Duration.ZERO, "memory, " + cache.estimatedSize() + " subjects");
    }

    /** Drops all state. The storage stays usable, empty; closing again does nothing more. */
    @Override
    public void close() {
        for (String subject : map.keySet()) {
            remove(subject);
        }
    }

    @Override
    public String toString() {
        return "MemoryStorage[" + cache.estimatedSize() + " subjects]";
    }

    // ---------------------------------------------------------------------------------------------------------------
    // For tests in this package

    /** Moves the cache's clock to {@code nowMicros} and runs its pending maintenance (eviction) now. */
    void cleanUp(long nowMicros) {
        clock.advanceTo(nowMicros);
        cache.cleanUp();
    }

    /** The number of subjects the cache holds, expired ones included until maintenance evicts them. */
    long estimatedSize() {
        return cache.estimatedSize();
    }

    /** The holder at {@code key} without touching its subject's expiry, or null. */
    Holder holder(StateKey key) {
        Entry entry = policy.getIfPresentQuietly(key.subject());
        return entry == null ? null : entry.slot(key.scope());
    }

    /** The entry of {@code subject} without touching its expiry, or null. */
    Entry entry(String subject) {
        return policy.getIfPresentQuietly(subject);
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
        private Executor executor = Runnable::run;
        private UnaryOperator<Expiry<String, Entry>> expiry = UnaryOperator.identity();
        private IntConsumer unownedRead;
        private IntConsumer contended;
        private IntConsumer onePass;

        private Builder() {}

        /**
         * How many subjects (users, chats: the cache's entries, each holding all of its keys) to size the cache for
         * at first (default 16); it grows as needed.
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
         * Where the cache runs its maintenance (evicting expired keys), which writes trigger. By default it runs on
         * the calling thread, a little at a time: handing it to another thread costs a wake-up per write, more than
         * the work itself on a busy machine (measured with the inbound chain, when every message wrote a
         * duplicate-suppression key of its own). {@link java.util.concurrent.ForkJoinPool#commonPool()} or another
         * executor moves it off the callers.
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

        /**
         * For tests in this package: what {@code wrap} answers for the storage's {@link HolderExpiry} becomes the
         * cache's expiry (a wrapper that holds a thread inside a callback, to play a race).
         */
        Builder expiry(UnaryOperator<Expiry<String, Entry>> wrap) {
            this.expiry = Objects.requireNonNull(wrap, "expiry must not be null");
            return this;
        }

        /**
         * For tests in this package: {@code hook} is told the index of each step whose key a batch has just read
         * without owning it (a lone gate's or set's deadline, or a key it found absent where it owns no entry of its
         * subject), while the batch owns the entries of its other keys (a hook that plays another thread must leave
         * those subjects alone).
         */
        Builder unownedRead(IntConsumer hook) {
            this.unownedRead = Objects.requireNonNull(hook, "hook must not be null");
            return this;
        }

        /**
         * For tests in this package: {@code hook} is told the index of the (first) step whose entry a batch, trying
         * its entries in step order, found owned by another thread, once the batch owns none (before it takes them in
         * the order of subjects).
         */
        Builder contended(IntConsumer hook) {
            this.contended = Objects.requireNonNull(hook, "hook must not be null");
            return this;
        }

        /**
         * For tests in this package: {@code hook} is told the size of each batch that ran in one pass owning its
         * subjects' entries (see {@code evaluatedInOnePass}), after the pass let go of them. Such a batch's first try
         * of its entries is not told to {@link #contended}: when it finds one owned elsewhere it lets them all be and
         * goes the general way, which tries again.
         */
        Builder onePass(IntConsumer hook) {
            this.onePass = Objects.requireNonNull(hook, "hook must not be null");
            return this;
        }

        /** A new storage with these settings. */
        public MemoryStorage build() {
            return new MemoryStorage(this);
        }
    }
}
