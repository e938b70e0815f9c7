package dev.guard.storage.memory;

import java.util.Arrays;

/**
 * The holders of one subject that has state under several scopes, kept by the cache as one entry: a message that
 * touches five keys of one user finds them with one cache lookup and a scan of a few slots, and a new key of the
 * subject (a fingerprint for duplicate suppression, say) is a new slot rather than a new cache entry.
 *
 * <p><b>Slots.</b> {@link #slots} is an immutable array of {@code scope, holder} pairs and the scopes' hash codes,
 * replaced as a whole (copy on write) by the thread that owns the group's word ({@link #lock}); readers scan it without
 * a lock. A holder leaves the group only retired (dead), so that a reader that found it just before goes back to the
 * cache, as it does for a holder that the cache evicted. A rewrite drops the holders whose state has expired ({@link
 * Holder#prunable}); an addition rewrites only once the group has doubled since the last one ({@link #pruneAt}), else
 * it appends.
 *
 * <p><b>Cache expiry.</b> The cache asks the group how long to keep it ({@link HolderExpiry}); the group answers the
 * longest lifetime of its holders and notes, under its lock, what it granted ({@link #coveredMicros}) and when the
 * next renewal is due: one longest interval before that, so that at every use the cache still keeps the group for
 * more than any holder's interval. A slot added later with a longer interval brings the renewal forward.
 *
 * <p><b>Lock order.</b> The cache's atomic update of the subject, then the group's word, then holders' words. Nobody
 * owns a group's word while calling the cache or while owning a holder for a batch.
 */
final class Group extends Entry {
    private static final Object[] NONE = {new int[0]};

    final String subject;

    /**
     * The scopes' hash codes (an {@code int[]}, first, so that a scan for a scope never touches a string it does
     * not match), then scope and holder pairs; replaced, never changed, by the group's owner.
     */
    private volatile Object[] slots;

    /** Until when (cache clock, microseconds) the cache keeps the group at least: what it last granted. Owner only. */
    private long coveredMicros = Long.MIN_VALUE;

    /**
     * A cache clock before which no slot is prunable, as far as the last rewrite saw: the sweep passes the group by
     * with one read until then. Commits only move expiries later, so it stays a lower bound except for the
     * conversions of a key between kinds, whose slot a later rewrite or the group's expiry then drops.
     */
    private volatile long sweepFromMicros;

    /**
     * How many slots the group may have before an addition drops the expired ones: twice as many as the last such
     * rewrite kept, at least {@link #MIN_PRUNE_AT}. Between, an addition only appends, and an expired slot whose
     * scope comes back (a bucket that refilled) is used again rather than dropped and recreated. Owner only.
     */
    private int pruneAt = MIN_PRUNE_AT;

    /** The fewest slots at which an addition looks for expired ones. */
    static final int MIN_PRUNE_AT = 8;

    /** A group of {@code holders} (each of a different scope), none of them dead. */
    Group(String subject, Holder... holders) {
        super(0);
        this.subject = subject;
        Object[] s = new Object[1 + 2 * holders.length];
        for (int i = 0; i < holders.length; i++) {
            s[1 + 2 * i] = holders[i].scope;
            s[2 + 2 * i] = holders[i];
        }
        this.slots = withHashes(s);
    }

    /** {@code s} with its hash codes filled in at index 0. */
    private static Object[] withHashes(Object[] s) {
        int[] hashes = new int[s.length / 2];
        for (int k = 0; k < hashes.length; k++) {
            hashes[k] = s[1 + 2 * k].hashCode();
        }
        s[0] = hashes;
        return s;
    }

    @Override
    Holder slot(String scope) {
        Object[] s = slots;
        // Scopes are mostly the same constant strings: identity first, which touches only this array.
        for (int i = 1; i < s.length; i += 2) {
            if (s[i] == scope) {
                return (Holder) s[i + 1];
            }
        }
        int[] hashes = (int[]) s[0];
        int hash = scope.hashCode();
        for (int k = 0; k < hashes.length; k++) {
            if (hashes[k] == hash && scope.equals(s[1 + 2 * k])) {
                return (Holder) s[2 + 2 * k];
            }
        }
        return null;
    }

    /** The number of slots, expired ones included until a rewrite drops them. */
    int size() {
        return slots.length / 2;
    }

    /** The holders, for tests and counting. */
    Holder[] holders() {
        Object[] s = slots;
        Holder[] holders = new Holder[s.length / 2];
        for (int k = 0; k < holders.length; k++) {
            holders[k] = (Holder) s[2 + 2 * k];
        }
        return holders;
    }

    @Override
    long retire() {
        long owned = lock();
        if (owned != DEAD) {
            markDead();
            Object[] s = slots;
            for (int i = 2; i < s.length; i += 2) {
                ((Holder) s[i]).retire();
            }
        }
        return owned;
    }

    /**
     * Adds {@code fresh} (a new holder, absent state) at the cache clock {@code clockMicros}, dropping expired slots
     * meanwhile; answers the holder the group then has for its scope (another thread's, if it came first), or null
     * if the group is dead. The caller renews the group's expiry next if it {@linkplain #needsExtension is due}.
     */
    Holder add(Holder fresh, long clockMicros) {
        long word = lock();
        if (word == DEAD) {
            return null;
        }
        try {
            Holder existing = slot(fresh.scope);
            if (existing != null) {
                return existing;
            }
            if (size() < pruneAt) {
                append(fresh);
            } else {
                rewrite(clockMicros, fresh);
            }
            return fresh;
        } finally {
            unlock(word);
        }
    }

    /** Replaces the slots by a copy with {@code added} at the end; the caller owns the group. */
    private void append(Holder added) {
        Object[] s = slots;
        Object[] next = Arrays.copyOf(s, s.length + 2);
        int[] hashes = (int[]) s[0];
        int[] nextHashes = Arrays.copyOf(hashes, hashes.length + 1);
        nextHashes[hashes.length] = added.scope.hashCode();
        next[0] = nextHashes;
        next[s.length] = added.scope;
        next[s.length + 1] = added;
        slots = next;
        sweepFromMicros = Math.min(sweepFromMicros, prunableFrom(added));
        coverInterval(added);
    }

    /** Brings the next renewal forward if {@code added} needs it sooner than the group's holders so far. */
    private void coverInterval(Holder added) {
        long interval = added.intervalMicros();
        if (interval != Long.MAX_VALUE && coveredMicros != Long.MAX_VALUE) {
            // The cache keeps the group until coveredMicros: renew it while more than this interval is left.
            long due = coveredMicros < Long.MIN_VALUE + interval ? Long.MIN_VALUE : coveredMicros - interval;
            extensionDueMicros(Math.min(extensionDueMicros(), due));
        }
    }

    /**
     * Replaces the slots by the live ones (neither dead nor {@linkplain Holder#prunable prunable} at {@code
     * clockMicros}) plus {@code added} if not null; the caller owns the group. Answers the number of slots.
     */
    int rewrite(long clockMicros, Holder added) {
        Object[] s = slots;
        // Which slots stay, decided once (dropping retires): a bit each for the first 64, the rest counted again.
        long dropped = 0;
        int kept = 0;
        for (int i = 2; i < s.length; i += 2) {
            if (dropped((Holder) s[i], clockMicros)) {
                dropped |= i < 2 + 2 * 64 ? 1L << ((i - 2) / 2) : 0;
            } else {
                kept++;
            }
        }
        Object[] next = new Object[1 + 2 * (kept + (added == null ? 0 : 1))];
        int[] hashes = (int[]) s[0];
        int[] nextHashes = new int[next.length / 2];
        int n = 1;
        long sweepFrom = Long.MAX_VALUE;
        for (int i = 2; i < s.length; i += 2) {
            Holder h = (Holder) s[i];
            boolean drop = i < 2 + 2 * 64 ? (dropped & (1L << ((i - 2) / 2))) != 0 : h.isDead();
            if (!drop && n < next.length) {
                nextHashes[n / 2] = hashes[i / 2 - 1];
                next[n++] = s[i - 1];
                next[n++] = h;
                sweepFrom = Math.min(sweepFrom, prunableFrom(h));
            }
        }
        if (added != null) {
            nextHashes[n / 2] = added.scope.hashCode();
            next[n++] = added.scope;
            next[n++] = added;
            sweepFrom = Math.min(sweepFrom, prunableFrom(added));
            coverInterval(added);
        }
        next[0] = nextHashes;
        slots = n == 1 ? NONE : next;
        sweepFromMicros = sweepFrom;
        pruneAt = Math.max(MIN_PRUNE_AT, n);
        return n / 2;
    }

    private static long prunableFrom(Holder h) {
        long word = h.word();
        return word == BUSY || word == DEAD ? Long.MIN_VALUE : h.prunableFromMicros(word);
    }

    /** Whether {@code h} is dead or expired; an expired one is retired here. */
    private static boolean dropped(Holder h, long clockMicros) {
        if (!h.prunable(h.word(), clockMicros)) {
            return h.isDead();
        }
        long owned = h.lock();
        if (owned == DEAD) {
            return true;
        }
        if (h.prunable(owned, clockMicros)) {
            h.markDead();
            return true;
        }
        h.unlock(owned);
        return false;
    }

    /**
     * Drops expired slots at {@code clockMicros} if there are any (the storage's sweep); answers the number of slots
     * left (or any positive number if it did nothing), or -1 if the group is dead.
     */
    int prune(long clockMicros) {
        if (clockMicros < sweepFromMicros) {
            return 1;
        }
        Object[] s = slots;
        boolean any = false;
        for (int i = 2; i < s.length && !any; i += 2) {
            Holder h = (Holder) s[i];
            any = h.isDead() || h.prunable(h.word(), clockMicros);
        }
        if (!any) {
            return s.length / 2;
        }
        long word = lock();
        if (word == DEAD) {
            return -1;
        }
        try {
            return rewrite(clockMicros, null);
        } finally {
            unlock(word);
        }
    }

    /** Retires the group if it has no slot (inside the cache's removal of its subject); whether it did. */
    boolean retireIfEmpty() {
        long word = lock();
        if (word == DEAD) {
            return true;
        }
        if (slots.length == 1) {
            markDead();
            return true;
        }
        unlock(word);
        return false;
    }

    @Override
    long lifetimeNanos(long currentNanos) {
        return granted(currentNanos, 0);
    }

    @Override
    long renewedNanos(long currentNanos, long currentDuration) {
        return granted(currentNanos, currentDuration);
    }

    /**
     * The lifetime to grant at {@code currentNanos}: the longest of the holders' and {@code atLeastNanos}; noted
     * with the next renewal's due time, under the group's word so that no slot comes or goes in between.
     */
    private long granted(long currentNanos, long atLeastNanos) {
        long word = lock();
        try {
            long lifetime = atLeastNanos;
            long interval = 0;
            Object[] s = slots;
            for (int i = 2; i < s.length; i += 2) {
                Holder h = (Holder) s[i];
                lifetime = Math.max(lifetime, h.lifetimeNanos(currentNanos));
                long hi = h.intervalMicros();
                if (hi != Long.MAX_VALUE) {
                    interval = Math.max(interval, hi);
                }
            }
            if (word != DEAD) {
                long covered = lifetime == Long.MAX_VALUE
                        ? Long.MAX_VALUE
                        : saturatedAdd(currentNanos / 1_000, lifetime / 1_000);
                coveredMicros = covered;
                extensionDueMicros(covered == Long.MAX_VALUE ? Long.MAX_VALUE : covered - interval);
            }
            return lifetime;
        } finally {
            if (word != DEAD) {
                unlock(word);
            }
        }
    }

    @Override
    void extended(long clockMicros) {
        // The cache's read asked granted(), which noted the renewal.
    }
}
