package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import dev.guard.limit.LimitSpec;

/**
 * The state of one key (a scope of a subject): limit state in the representation that suits its kind, or a record.
 * The cache keeps it as its subject's entry while it is the subject's only key, else in the subject's {@link Group}.
 *
 * <p><b>Exclusivity.</b> One word owns a subject's state. A lone holder (its subject's only key) has its own: a
 * thread swaps it for {@link #BUSY} to own the state ({@link #lock}), lock-free callers ({@link #tryAcquire}) change
 * it by compare-and-set and go to the slow path when they see {@code BUSY}. A holder in a {@link Group} is owned by
 * the group's word ({@link #own}): its own word is then plain state that only the group's owner changes, so that a
 * batch on five keys of one user makes one compare-and-set, not five. A batch owns each distinct entry deadlock free
 * (trying each in step order without waiting, or on contention locking them in one order of subjects), evaluates
 * every step ({@link #peek}), then either commits each step ({@link #commit}) or drops what expired ({@link
 * #settle}), and lets go with the new words. The critical sections never block and never call the cache. A lone
 * holder whose subject gains a second key is copied into the new group and retired, never adopted in place: a
 * lock-free caller may be about to change its word.
 *
 * <p><b>Leaving the cache.</b> A holder removed from the cache (evicted, forgotten, pruned from its group, replaced
 * by another representation) is retired: locked and marked {@link #DEAD}, inside the atomic removal. A caller that
 * meets a dead holder looks the key up again, so no update lands on a holder the cache no longer has.
 *
 * <p><b>Cache expiry.</b> As a subject's only key, the storage tells the cache about use only when a holder's
 * renewal is due, and the cache keeps every holder for one interval ({@link #intervalMicros}) beyond that, so at every
 * use it still has more than one interval: more than any state committed then can live. A holder is due one interval
 * after it was made, and after a renewal one interval before the end of what the renewal granted: two intervals, or
 * {@link #REGULAR_INTERVALS} for a key that was in use across an interval.
 */
abstract class Holder extends Entry {
    /** Not an {@link dev.guard.limit.Outcome} (those are >= 0, <= -2 or MIN): "take the slow path". */
    static final long SLOW = -1;

    /** Fast paths accept times in [0, 2^53): the range where every encoding below stays exact. */
    static final long FAST_TIME_LIMIT = LimitSpec.EXACT_LIMIT;

    /** The scope of the key this holder keeps state for (its subject is the cache's key). */
    final String scope;

    /**
     * The group whose word owns this holder's state, or null while the holder is its subject's only key (its own
     * word owns it). Set once, before the holder is published ({@link #adopt}), and never changed: a lone holder whose
     * subject gains a second key is {@linkplain #copy copied} into the new group and retired.
     */
    private Group group;

    Holder(String scope, long word) {
        super(word);
        this.scope = scope;
    }

    /** The group that owns this holder, or null for a lone holder. */
    final Group group() {
        return group;
    }

    /** Makes {@code owner} this holder's owner; before the holder is published, once. */
    final void adopt(Group owner) {
        if (group != null && group != owner) {
            throw new IllegalStateException("a holder belongs to one group: " + scope);
        }
        group = owner;
    }

    /**
     * For a lone holder that its caller owns or has retired (its word was {@code owned}, from {@link #lock} or {@link
     * #retire}): a new holder of the same key and state, not yet published, with the same due time, to take its place
     * in a new group.
     */
    final Holder copyOf(long owned) {
        Holder copy = copy();
        copy.unlock(owned);
        copy.extensionDueMicros(extensionDueMicros());
        return copy;
    }

    /** A new holder of this key with the state this one keeps outside its word: see {@link #copyOf}. */
    abstract Holder copy();

    /**
     * Owns this holder's state for a caller that owns nothing: the holder's own word for a lone holder, else its
     * group's. Answers the state word (see {@link #lock}), or {@link #DEAD} if the holder left the cache (then the
     * caller owns nothing). Waits while another thread owns it.
     */
    final long own() {
        Group owner = group;
        if (owner == null) {
            return lock();
        }
        if (owner.lock() == DEAD) {
            return DEAD;
        }
        long word = word();
        if (word == DEAD) {
            owner.unlock(0);
        }
        return word;
    }

    /** Lets go of what {@link #own} took, with {@code next} as the state word. */
    final void release(long next) {
        unlock(next);
        Group owner = group;
        if (owner != null) {
            owner.unlock(0);
        }
    }

    @Override
    final Holder slot(String other) {
        return scope == other || scope.equals(other) ? this : null;
    }

    static boolean fastTime(long nowMicros) {
        return nowMicros >= 0 && nowMicros < FAST_TIME_LIMIT;
    }

    /** The spec that last wrote the state (the reference's entry spec); null for records. Caller owns the state. */
    abstract LimitSpec writer();

    /**
     * Whether a step of {@code spec} that may commit can run on this holder at {@code nowMicros}; otherwise the key
     * is converted to an {@link ArrayHolder} first.
     */
    abstract boolean accepts(LimitSpec spec, long nowMicros);

    /**
     * The lock-free path for one step: the outcome, or {@link #SLOW} when this holder cannot answer without owning
     * its state (wrong spec, dead, busy, time out of range).
     */
    long tryAcquire(LimitSpec spec, long permits, long nowMicros) {
        return SLOW;
    }

    /** The reference outcome of a step on the state {@code word} (owned); changes nothing. */
    abstract long peek(long word, LimitSpec spec, long permits, long nowMicros);

    /** Commits an admitted step of a spec this holder {@linkplain #accepts accepts}; answers the new word. */
    abstract long commit(long word, LimitSpec spec, long permits, long nowMicros);

    /** The word after a read that committed nothing: expired state becomes absent, as the reference drops it. */
    abstract long settle(long word, long nowMicros);

    /** The state in reference form, expired or not, null when absent. */
    abstract long[] raw(long word);

    /** When the state of {@code word} expires: the reference's {@code expiresAtMicros}. */
    abstract long expiresAtMicros(long word);

    /**
     * The record this key holds: a {@link RecordHolder} itself, or the record that an {@link ArrayHolder} converted
     * from one keeps until a limit commits there; null if none. Read owning the holder (a record's own: freely).
     */
    RecordHolder record() {
        return null;
    }

    /** Whether {@code owned} (a word from {@link #lock}) holds limit or set state, expired or not. */
    boolean hasState(long owned) {
        return raw(owned) != null;
    }

    /**
     * How long after an extension the cache must still hold this holder, in microseconds: an upper bound of how
     * long any state committed here can live after the cache's clock (plus the clock's lag). {@link Long#MAX_VALUE}:
     * the holder never needs extending (its expiry is absolute or it has none).
     */
    abstract long intervalMicros();

    /**
     * The intervals of life a lone holder gets when the cache renews it at or after its due time: its key was used
     * across a whole interval, and a key in use stays in use. Such a key is renewed one interval before their end, a
     * third as often as with two; a key used once keeps two (see {@link #lifetimeNanos}).
     */
    static final long REGULAR_INTERVALS = 4;

    /**
     * Notes the cache clock {@code clockMicros} at which this holder was made: its first renewal (as a subject's only
     * holder) is due one interval later, and in a group it is not pruned before then.
     */
    final void made(long clockMicros) {
        long interval = intervalMicros();
        extensionDueMicros(interval == Long.MAX_VALUE ? Long.MAX_VALUE : Saturated.plus(clockMicros, interval));
    }

    /**
     * The lifetime of this holder as its subject's only key, asked by the cache's creation or update of the subject
     * (which no other update of the subject interleaves with), and the due time of the next renewal, set here, with
     * the lifetime: two intervals, due after one, or {@link #REGULAR_INTERVALS} when the cache's clock has reached the
     * due time (a renewal of a key used across an interval), due one interval before their end. Either way the cache
     * still keeps the holder for more than an interval at every use before the due time.
     */
    @Override
    final long lifetimeNanos(long currentNanos) {
        long interval = intervalMicros();
        if (interval == Long.MAX_VALUE) {
            return stateLifetimeNanos(currentNanos, 2);
        }
        long clockMicros = currentNanos / 1_000;
        long due = extensionDueMicros();
        long intervals = clockMicros >= due ? REGULAR_INTERVALS : 2;
        long lifetime = stateLifetimeNanos(currentNanos, intervals);
        long next = Saturated.plus(clockMicros, Saturated.times(interval, intervals - 1));
        if (due != Long.MAX_VALUE && due > next) {
            // An earlier update granted more (four intervals, and this one, right after, two): keep its due time and
            // at least its lifetime, so that the due time never moves earlier and the cache's expiry stays at least an
            // interval beyond every due time a caller may have read.
            next = due;
            lifetime = Math.max(lifetime, microsToNanos(Saturated.plus(due, interval)) - currentNanos);
        }
        extensionDueMicros(next);
        return lifetime;
    }

    /**
     * How long the cache must keep this holder from {@code currentNanos} (cache clock): {@code intervals} of its
     * {@linkplain #intervalMicros intervals}, and at least until its state's expiry (a gate's or membership's deadline,
     * a state kept in the reference's form that lives longer); {@link Long#MAX_VALUE}: for ever. Changes nothing: a
     * group asks it of its slots.
     */
    abstract long stateLifetimeNanos(long currentNanos, long intervals);

    /**
     * The cache clock at which state that expires at the caller's time {@code expiryMicros} has expired for every
     * caller the cache has heard of. The cache's clock stops at 0 below ({@link CallerClock}): callers before 1970
     * are behind it, so a gate or a membership that ends at or before 0 (a clock before 1970 set it) may still be in
     * force for them while the clock reads 0, and has ended for every caller only once the clock has moved past 0.
     */
    static long cacheExpiryMicros(long expiryMicros) {
        return Math.max(1, expiryMicros);
    }

    /** Owns the holder and marks it dead; answers the word it held, or {@link #DEAD} if it already was. */
    @Override
    final long retire() {
        long owned = lock();
        if (owned != DEAD) {
            markDead();
        }
        return owned;
    }

    /**
     * Whether a group may drop this holder at the cache clock {@code clockMicros}, its word being {@code word}: its
     * state is absent or expired (for the reference, absent), and its {@linkplain #extensionDueMicros due time} has
     * passed: it was created more than one interval ago, so that a holder that a caller has just added and not yet
     * committed to is not pruned under it (for a key that was its subject's only one, the due time of its last
     * renewal as such, up to three intervals after it). Records never are.
     */
    final boolean prunable(long word, long clockMicros) {
        return word != BUSY && word != DEAD && clockMicros >= prunableFromMicros(word);
    }

    /** The cache clock from which the holder is {@linkplain #prunable prunable} unless it changes: {@code word}'s. */
    long prunableFromMicros(long word) {
        long expiry = expiresAtMicros(word);
        expiry = expiry == Long.MIN_VALUE ? expiry : cacheExpiryMicros(expiry);
        long created = extensionDueMicros();
        return created == Long.MAX_VALUE ? expiry : Math.max(expiry, created);
    }

    /**
     * {@code h.peek(...)} dispatched by type: a batch calls it on holders of several kinds at one call site, where a
     * virtual call could be neither inlined nor told apart by the compiler; a test per kind lets each be inlined.
     */
    static long peek(Holder h, long word, LimitSpec spec, long permits, long nowMicros) {
        if (h instanceof ArrayHolder a) {
            return a.peek(word, spec, permits, nowMicros);
        }
        if (h instanceof BucketHolder b) {
            return b.peek(word, spec, permits, nowMicros);
        }
        if (h instanceof WindowHolder w) {
            return w.peek(word, spec, permits, nowMicros);
        }
        if (h instanceof DeadlineHolder d) {
            return d.peek(word, spec, permits, nowMicros);
        }
        return h.peek(word, spec, permits, nowMicros);
    }

    /** {@code h.commit(...)} dispatched by type: see {@link #peek(Holder, long, LimitSpec, long, long)}. */
    static long commit(Holder h, long word, LimitSpec spec, long permits, long nowMicros) {
        if (h instanceof ArrayHolder a) {
            return a.commit(word, spec, permits, nowMicros);
        }
        if (h instanceof BucketHolder b) {
            return b.commit(word, spec, permits, nowMicros);
        }
        if (h instanceof WindowHolder w) {
            return w.commit(word, spec, permits, nowMicros);
        }
        if (h instanceof DeadlineHolder d) {
            return d.commit(word, spec, permits, nowMicros);
        }
        return h.commit(word, spec, permits, nowMicros);
    }

    /** {@code h.settle(...)} dispatched by type: see {@link #peek(Holder, long, LimitSpec, long, long)}. */
    static long settle(Holder h, long word, long nowMicros) {
        if (h instanceof ArrayHolder a) {
            return a.settle(word, nowMicros);
        }
        if (h instanceof PackedHolder<?> p) {
            return p.settle(word, nowMicros);
        }
        if (h instanceof DeadlineHolder d) {
            return d.settle(word, nowMicros);
        }
        return h.settle(word, nowMicros);
    }

    /** {@code h.accepts(...)} dispatched by type: see {@link #peek(Holder, long, LimitSpec, long, long)}. */
    static boolean accepts(Holder h, LimitSpec spec, long nowMicros) {
        if (h instanceof ArrayHolder a) {
            return a.accepts(spec, nowMicros);
        }
        if (h instanceof PackedHolder<?> p) {
            return p.accepts(spec, nowMicros);
        }
        if (h instanceof DeadlineHolder d) {
            return d.accepts(spec, nowMicros);
        }
        return h.accepts(spec, nowMicros);
    }
}
