package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The value the cache keeps for one key: limit state in the representation that suits its kind, or a record.
 *
 * <p><b>Exclusivity.</b> Each holder has one word that a thread swaps for {@link #BUSY} to own the state ({@link
 * #lock}); lock-free callers ({@link #tryAcquire}) change that word by compare-and-set and go to the slow path when
 * they see {@code BUSY}. A batch locks its holders in one global key order (deadlock free), evaluates every step
 * ({@link #peek}), then either commits each step ({@link #commit}) or drops what expired ({@link #settle}), and
 * unlocks with the new words. The critical sections never block and never call the cache.
 *
 * <p><b>Leaving the cache.</b> A holder removed from the cache (evicted, forgotten, replaced by another
 * representation) is retired: locked and marked {@link #DEAD}, inside the cache's atomic removal of its key. A
 * caller that meets a dead holder looks the key up again, so no update lands on a holder the cache no longer has.
 *
 * <p><b>Cache expiry.</b> Reads go around the cache's bookkeeping (which costs more than everything else on the hot
 * path); {@link #touch} tells the cache about use only when a holder's last extension is older than its {@link
 * #intervalMicros} and the cache keeps every holder for two intervals after an extension, so at every use it still
 * has more than one interval: more than any state committed then can live.
 */
abstract class Holder {
    /** No state: the key is absent. */
    static final long ABSENT = Long.MIN_VALUE;

    /** The holder left the cache: look the key up again. */
    static final long DEAD = Long.MIN_VALUE + 1;

    /** A thread owns the state: wait, or take the slow path. */
    static final long BUSY = Long.MIN_VALUE + 2;

    /** Not an {@link dev.guard.limit.Outcome} (those are >= 0, <= -2 or MIN): "take the slow path". */
    static final long SLOW = -1;

    /** Fast paths accept times in [0, 2^53): the range where every encoding below stays exact. */
    static final long FAST_TIME_LIMIT = LimitSpec.EXACT_LIMIT;

    private static final VarHandle WORD;
    private static final VarHandle EXTENDED;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            WORD = lookup.findVarHandle(Holder.class, "word", long.class);
            EXTENDED = lookup.findVarHandle(Holder.class, "extendedAtMicros", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * The state word: the whole state of a lock-free holder ({@link #ABSENT} or a value), a lock (0 when free) for
     * the others; {@link #BUSY} while owned, {@link #DEAD} once retired. Accessed through {@link #WORD}.
     */
    private volatile long word;

    /** The cache clock when the cache last renewed this holder's expiry; accessed through {@link #EXTENDED}. */
    private long extendedAtMicros;

    Holder(long word, long extendedAtMicros) {
        this.word = word;
        this.extendedAtMicros = extendedAtMicros;
    }

    /** The state word now. */
    final long word() {
        return word;
    }

    /** Compare-and-set of the state word. */
    final boolean casWord(long expected, long next) {
        return WORD.compareAndSet(this, expected, next);
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

    /** Owns the state, spinning while another thread does; answers the state word, or {@link #DEAD}. */
    final long lock() {
        for (int spins = 0; ; spins++) {
            long current = word;
            if (current == DEAD) {
                return DEAD;
            }
            if (current != BUSY && WORD.compareAndSet(this, current, BUSY)) {
                return current;
            }
            backOff(spins);
        }
    }

    /** Releases the state, writing {@code next} as its new word. */
    final void unlock(long next) {
        word = next;
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
     * Retires the holder (inside the cache's removal of its key): owns it, marks it dead.
     *
     * @return the word it held, or {@link #DEAD} if it already was
     */
    final long retire() {
        long owned = lock();
        if (owned != DEAD) {
            markDead();
        }
        return owned;
    }

    /** Sets the state word to {@link #DEAD}; the caller owns the state. */
    final void markDead() {
        word = DEAD;
    }

    /** Whether the holder is dead. */
    final boolean isDead() {
        return word == DEAD;
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

    /** The cache lifetime to set at {@code currentNanos} (creation, update, extension): see {@link HolderExpiry}. */
    abstract long lifetimeNanos(long currentNanos);

    /** Whether the cache must renew this holder's expiry before a use at {@code clockMicros}. */
    final boolean needsExtension(long clockMicros) {
        long interval = intervalMicros();
        return interval != Long.MAX_VALUE && clockMicros - (long) EXTENDED.getOpaque(this) >= interval;
    }

    /** Notes that the cache renewed this holder's expiry when its clock read {@code clockMicros}. */
    final void extended(long clockMicros) {
        EXTENDED.setOpaque(this, clockMicros);
    }

    static void backOff(int spins) {
        if (spins < 100) {
            Thread.onSpinWait();
        } else {
            Thread.yield();
        }
    }

    static long saturatedAdd(long a, long b) {
        long r = a + b;
        return ((a ^ r) & (b ^ r)) < 0 ? Long.MAX_VALUE : r;
    }

    static long microsToNanos(long micros) {
        return micros >= Long.MAX_VALUE / 1_000 ? Long.MAX_VALUE : micros * 1_000;
    }
}
