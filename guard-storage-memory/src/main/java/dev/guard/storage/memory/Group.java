package dev.guard.storage.memory;

import java.util.Arrays;

/**
 * The holders of one subject that has state under several scopes, kept by the cache as one entry: a message that
 * touches five keys of one user finds them with one cache lookup and a scan of a few slots, and a new key of the
 * subject (a fingerprint for duplicate suppression, say) is a new slot rather than a new cache entry.
 *
 * <p><b>Slots.</b> {@link #slots} is an immutable array of {@code scope, holder} pairs, replaced as a whole (copy on
 * write) by the thread that owns the group's word ({@link #lock}); readers scan it without a lock. A holder leaves
 * the group only retired (dead), so that a reader that found it just before goes back to the cache, as it does for
 * a holder that the cache evicted. Every rewrite drops the holders whose state has expired ({@link
 * Holder#prunable}).
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
    private static final Object[] NONE = {};

    final String subject;

    /** Scope and holder pairs; replaced, never changed, by the group's owner. */
    private volatile Object[] slots;

    /** Until when (cache clock, microseconds) the cache keeps the group at least: what it last granted. Owner only. */
    private long coveredMicros = Long.MIN_VALUE;

    /** A group of {@code holders} (each of a different scope), none of them dead. */
    Group(String subject, Holder... holders) {
        super(0);
        this.subject = subject;
        Object[] s = new Object[2 * holders.length];
        for (int i = 0; i < holders.length; i++) {
            s[2 * i] = holders[i].scope;
            s[2 * i + 1] = holders[i];
        }
        this.slots = s;
    }

    @Override
    Holder slot(String scope) {
        Object[] s = slots;
        // Scopes are mostly the same constant strings: identity first, which touches only this array.
        for (int i = 0; i < s.length; i += 2) {
            if (s[i] == scope) {
                return (Holder) s[i + 1];
            }
        }
        for (int i = 0; i < s.length; i += 2) {
            if (scope.equals(s[i])) {
                return (Holder) s[i + 1];
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
        for (int i = 0; i < holders.length; i++) {
            holders[i] = (Holder) s[2 * i + 1];
        }
        return holders;
    }

    @Override
    long retire() {
        long owned = lock();
        if (owned != DEAD) {
            markDead();
            Object[] s = slots;
            for (int i = 1; i < s.length; i += 2) {
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
            rewrite(clockMicros, fresh);
            return fresh;
        } finally {
            unlock(word);
        }
    }

    /**
     * Replaces the slots by the live ones (neither dead nor {@linkplain Holder#prunable prunable} at {@code
     * clockMicros}) plus {@code added} if not null; the caller owns the group. Answers the number of slots.
     */
    int rewrite(long clockMicros, Holder added) {
        Object[] s = slots;
        Object[] next = new Object[s.length + (added == null ? 0 : 2)];
        int n = 0;
        for (int i = 0; i < s.length; i += 2) {
            Holder h = (Holder) s[i + 1];
            if (!dropped(h, clockMicros)) {
                next[n++] = s[i];
                next[n++] = h;
            }
        }
        if (added != null) {
            next[n++] = added.scope;
            next[n++] = added;
            long interval = added.intervalMicros();
            if (interval != Long.MAX_VALUE && coveredMicros != Long.MAX_VALUE) {
                // The cache keeps the group until coveredMicros: renew it while more than this interval is left.
                long due = coveredMicros < Long.MIN_VALUE + interval ? Long.MIN_VALUE : coveredMicros - interval;
                extensionDueMicros(Math.min(extensionDueMicros(), due));
            }
        }
        slots = n == 0 ? NONE : n == next.length ? next : Arrays.copyOf(next, n);
        return n / 2;
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
     * left, or -1 if the group is dead.
     */
    int prune(long clockMicros) {
        Object[] s = slots;
        boolean any = false;
        for (int i = 1; i < s.length && !any; i += 2) {
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
        if (slots.length == 0) {
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
            for (int i = 1; i < s.length; i += 2) {
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
