package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * What the cache keeps for one subject: a lone {@link Holder} (the subject has state under one scope) or a {@link
 * Group} of holders (several scopes). Both have one word that a thread swaps for {@link #BUSY} to own the entry
 * ({@link #lock}) and that reads {@link #DEAD} once the entry left the cache, and both tell the cache how long they
 * must live.
 *
 * <p><b>Cache expiry.</b> Reads go around the cache's bookkeeping (which costs more than everything else on the hot
 * path); the storage tells the cache about a use only when the entry's extension is due ({@link #needsExtension}),
 * and an entry is always due before the cache could drop state that a commit at the cache's clock can still create.
 * Every change of the expiry is an update of the subject in the cache (never a read), so that the last one made is
 * also the one on the newest clock.
 */
abstract class Entry {
    /** No state: the key is absent. */
    static final long ABSENT = Long.MIN_VALUE;

    /** The entry left the cache: look the key up again. */
    static final long DEAD = Long.MIN_VALUE + 1;

    /** A thread owns the entry: wait, or take the slow path. */
    static final long BUSY = Long.MIN_VALUE + 2;

    private static final VarHandle WORD;
    private static final VarHandle DUE;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            WORD = lookup.findVarHandle(Entry.class, "word", long.class);
            DUE = lookup.findVarHandle(Entry.class, "extensionDueMicros", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /**
     * The word: the whole state of a lock-free holder ({@link #ABSENT} or a value), a lock (0 when free) for the
     * others; {@link #BUSY} while owned, {@link #DEAD} once retired. Accessed through {@link #WORD}.
     */
    private volatile long word;

    /**
     * The cache clock from which the cache must renew this entry's expiry before a use ({@link Long#MAX_VALUE}:
     * never); the cache keeps the entry at least an interval beyond it. For a holder inside a group, the clock before
     * which it is never pruned (see {@link Holder#prunable}), and the group too keeps it an interval beyond: a holder
     * copied from its subject's only key keeps that key's due time, by which a caller that read the lone holder just
     * before may still go. Accessed through {@link #DUE}.
     */
    private long extensionDueMicros = Long.MAX_VALUE;

    Entry(long word) {
        this.word = word;
    }

    /** The word now. */
    final long word() {
        return word;
    }

    /** Compare-and-set of the word. */
    final boolean casWord(long expected, long next) {
        return WORD.compareAndSet(this, expected, next);
    }

    /** Owns the entry, spinning while another thread does; answers the word, or {@link #DEAD}. */
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

    /**
     * Owns the entry unless another thread does: answers the word, or {@link #BUSY} (owned elsewhere; nothing
     * changed) or {@link #DEAD}. Never waits for another owner, so that a thread may take entries in any order with it
     * (see {@code MemoryStorage.runLocked}); it only tries again when a lock-free update changed the word meanwhile.
     */
    final long tryLock() {
        while (true) {
            long current = word;
            if (current == DEAD || current == BUSY || WORD.compareAndSet(this, current, BUSY)) {
                return current;
            }
        }
    }

    /** Releases the entry, writing {@code next} as its new word (a release store: what the owner wrote is visible). */
    final void unlock(long next) {
        WORD.setRelease(this, next);
    }

    /** Sets the word to {@link #DEAD}; the caller owns the entry. */
    final void markDead() {
        word = DEAD;
    }

    /** Whether the entry is dead. */
    final boolean isDead() {
        return word == DEAD;
    }

    /** The holder of {@code scope} in this entry, or null. Lock free. */
    abstract Holder slot(String scope);

    /**
     * Retires the entry (inside the cache's removal of its subject): owns it, marks it dead, and so every holder in
     * it.
     *
     * @return the word it held, or {@link #DEAD} if it already was
     */
    abstract long retire();

    /** The cache lifetime to set at {@code currentNanos} (creation, update, renewal): see {@link HolderExpiry}. */
    abstract long lifetimeNanos(long currentNanos);

    /** Whether the cache must renew this entry's expiry before a use at {@code clockMicros}: one compare. */
    final boolean needsExtension(long clockMicros) {
        return clockMicros >= (long) DUE.getOpaque(this);
    }

    final long extensionDueMicros() {
        return (long) DUE.getOpaque(this);
    }

    final void extensionDueMicros(long dueMicros) {
        DUE.setOpaque(this, dueMicros);
    }

    static void backOff(int spins) {
        if (spins < 100) {
            Thread.onSpinWait();
        } else {
            Thread.yield();
        }
    }

    static long microsToNanos(long micros) {
        return Saturated.times(micros, 1_000);
    }
}
