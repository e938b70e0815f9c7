package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;

/**
 * The holders of one subject that has state under several scopes, kept by the cache as one entry: a message that
 * touches five keys of one user finds them with one cache lookup and a scan of a few slots, and a new key of the
 * subject (a user's first message in another chat, say) is a new slot rather than a new cache entry.
 *
 * <p><b>Slots.</b> {@link #slots} is an array of {@code scope, holder} pairs and the scopes' hash codes, with room
 * for the slots up to the next prune; only the thread that owns the group's word ({@link #lock}) changes it, and
 * readers scan it without a lock. An addition appends in place while there is room: it writes the hash and the scope,
 * then publishes the holder with a release store, and a reader takes a holder with an acquire load (a scope whose
 * holder it does not see yet reads as absent, and the caller adds it under the lock, where it finds it). Slots in
 * place are never overwritten: a rewrite replaces the whole array (copy on write). A holder leaves the group only
 * retired (dead), so that a reader that found it just before goes back to the cache, as it does for a holder that the
 * cache evicted. A rewrite drops the holders whose state has expired ({@link Holder#prunable}); an addition rewrites
 * only once the group has doubled since the last one ({@link #pruneAt}), else it appends.
 *
 * <p><b>Cache expiry.</b> The cache asks the group how long to keep it ({@link HolderExpiry}); the group answers the
 * longest lifetime of its holders and notes, under its lock, what it granted ({@link #coveredMicros}) and when the
 * next renewal is due: one longest interval before that, so that at every use the cache still keeps the group for
 * more than any holder's interval. A slot added later with a longer interval brings the renewal forward. A holder
 * that was its subject's only key brings the due time of its last renewal as such (up to three intervals ahead, see
 * {@link Holder#lifetimeNanos}), which a caller that found it alone just before may still go by: the group keeps it
 * at least an interval beyond that, as the cache did.
 *
 * <p><b>Ownership.</b> The group's word owns the state of all of its slots ({@link Holder#own}): whoever changes a
 * slot's state (a step, a batch, a conversion, a prune) owns the group, and a slot's own word is plain state. Reads
 * without it: a gate's or set's read of one live or absent slot, which checks after it that no one owned the group
 * (see {@code MemoryStorage.readInGroup}); a batch's look for a key of a subject whose entry it does not own; and the
 * sweep's scan for expired slots, which owns the group before it drops any.
 *
 * <p><b>Lock order.</b> The cache's atomic update of the subject, then the group's word, then holders' words (which
 * the group's owner may swap for {@code BUSY} while it retires them). Nobody owns a group's word while calling the
 * cache, and a batch owns groups and lone holders only by trying each, or in one order of subjects.
 */
final class Group extends Entry {
    private static final Object[] NONE = {new int[0]};

    /** Release stores and acquire loads of the holders in {@link #slots}. */
    private static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(Object[].class);

    final String subject;

    /**
     * The scopes' hash codes (an {@code int[]}, first, so that a scan for a scope never touches a string it does
     * not match), then scope and holder pairs, then room (nulls) for slots to come: the owner appends there, and
     * replaces the array as a whole to drop slots.
     */
    private volatile Object[] slots;

    /**
     * A bit per scope hash ({@link #bit}) for every scope the group has had: a superset of its scopes, so that a scan
     * for a scope it does not have (a user on no blocklist) mostly ends at one test. Only grows; written by the owner
     * before the slot it announces is published.
     */
    private volatile int scopeBits;

    /** The number of slots in {@link #slots} (the rest is room). Owner only. */
    private int used;

    /** Until when (cache clock, microseconds) the cache keeps the group at least: what it last granted. Owner only. */
    private long coveredMicros = Long.MIN_VALUE;

    /**
     * The part of {@link #coveredMicros} that intervals granted (the last renewal's, kept by the updates since), not
     * the slots' states or former lone keys' due times, which {@link #lifetimeNanos} counts from the slots as they are
     * each time: a key removed since (a long membership) no longer keeps the group. Owner only.
     */
    private long grantedMicros = Long.MIN_VALUE;

    /**
     * A cache clock before which no slot is prunable, as far as the last rewrite saw: the sweep passes the group by
     * with one read until then. Commits only move expiries later, so it stays a lower bound except for the
     * conversions of a key between kinds, whose slot a later rewrite or the group's expiry then drops, and a commit
     * that drops a record (a holder that keeps one is never prunable): its caller renews the group next, and the
     * renewal ({@link #lifetimeNanos}) lowers this to what the slots say then.
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
        int room = Math.max(holders.length, MIN_PRUNE_AT);
        Object[] s = new Object[1 + 2 * room];
        int[] hashes = new int[room];
        for (int i = 0; i < holders.length; i++) {
            holders[i].adopt(this);
            hashes[i] = holders[i].scope.hashCode();
            s[1 + 2 * i] = holders[i].scope;
            s[2 + 2 * i] = holders[i];
        }
        s[0] = hashes;
        int bits = 0;
        for (Holder h : holders) {
            bits |= bit(h.scope.hashCode());
        }
        this.scopeBits = bits;
        this.used = holders.length;
        this.slots = s;
    }

    /** The bit of {@link #scopeBits} that scopes of hash code {@code hash} set. */
    private static int bit(int hash) {
        return 1 << (hash ^ (hash >>> 5) ^ (hash >>> 10));
    }

    @Override
    Holder slot(String scope) {
        int hash = scope.hashCode();
        if ((scopeBits & bit(hash)) == 0) {
            return null;
        }
        Object[] s = slots;
        // Scopes are mostly the same constant strings: identity first, which touches only this array. A slot being
        // appended may show its scope before its holder: then it reads as absent (null), as it was a moment ago.
        // Slots fill the array from its start, so the first empty one ends the scan: a slot appended after it is
        // one being appended now, which may read as absent too.
        int end = 1;
        for (; end < s.length; end += 2) {
            Object candidate = s[end];
            if (candidate == scope) {
                return (Holder) SLOT.getAcquire(s, end + 1);
            }
            if (candidate == null) {
                break;
            }
        }
        int[] hashes = (int[]) s[0];
        for (int k = 0; 1 + 2 * k < end; k++) {
            if (hashes[k] == hash && scope.equals(s[1 + 2 * k])) {
                return (Holder) SLOT.getAcquire(s, 2 + 2 * k);
            }
        }
        return null;
    }

    /** The number of slots, expired ones included until a rewrite drops them. */
    int size() {
        return holders().length;
    }

    /** The holders, for tests and counting. */
    Holder[] holders() {
        Object[] s = slots;
        int n = 0;
        Holder[] holders = new Holder[s.length / 2];
        for (int i = 2; i < s.length; i += 2) {
            Holder h = (Holder) SLOT.getAcquire(s, i);
            if (h != null) {
                holders[n++] = h;
            }
        }
        return Arrays.copyOf(holders, n);
    }

    @Override
    long retire() {
        long owned = lock();
        if (owned != DEAD) {
            markDead();
            Object[] s = slots;
            for (int i = 2; i < 2 + 2 * used; i += 2) {
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
            fresh.adopt(this);
            if (used < pruneAt) {
                append(fresh);
            } else {
                rewrite(clockMicros, fresh);
            }
            return fresh;
        } finally {
            unlock(word);
        }
    }

    /**
     * Adds {@code added} after the last slot, in place if there is room, else in a larger copy; the caller owns the
     * group.
     */
    private void append(Holder added) {
        Object[] s = slots;
        int[] hashes = (int[]) s[0];
        if (used == hashes.length) {
            int room = Math.max(MIN_PRUNE_AT, 2 * used);
            hashes = Arrays.copyOf(hashes, room);
            s = Arrays.copyOf(s, 1 + 2 * room);
            s[0] = hashes;
        }
        hashes[used] = added.scope.hashCode();
        scopeBits |= bit(hashes[used]);
        s[1 + 2 * used] = added.scope;
        // The renewal comes forward before the slot is published: a reader that finds the slot (and commits a state
        // that lives the slot's interval) then also finds the renewal due, and renews the group first.
        coverInterval(added);
        // Publishes the holder, its fields and the writes above to readers that load it with acquire.
        SLOT.setRelease(s, 2 + 2 * used, added);
        used++;
        if (s != slots) {
            slots = s;
        }
        sweepFromMicros = Math.min(sweepFromMicros, prunableFrom(added));
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
        int end = 2 + 2 * used;
        // Which slots stay, decided once (dropping retires): a bit each for the first 64, the rest counted again.
        long dropped = 0;
        int kept = 0;
        for (int i = 2; i < end; i += 2) {
            if (dropped((Holder) s[i], clockMicros)) {
                dropped |= i < 2 + 2 * 64 ? 1L << ((i - 2) / 2) : 0;
            } else {
                kept++;
            }
        }
        int count = kept + (added == null ? 0 : 1);
        // Room up to the next prune (twice the slots kept), so that additions until then append in place.
        int room = Math.max(MIN_PRUNE_AT, 2 * count);
        Object[] next = new Object[1 + 2 * room];
        int[] hashes = (int[]) s[0];
        int[] nextHashes = new int[room];
        int n = 1;
        int last = 1 + 2 * count;
        long sweepFrom = Long.MAX_VALUE;
        for (int i = 2; i < end; i += 2) {
            Holder h = (Holder) s[i];
            boolean drop = i < 2 + 2 * 64 ? (dropped & (1L << ((i - 2) / 2))) != 0 : h.isDead();
            if (!drop && n < last) {
                nextHashes[n / 2] = hashes[i / 2 - 1];
                next[n++] = s[i - 1];
                next[n++] = h;
                sweepFrom = Math.min(sweepFrom, prunableFrom(h));
            }
        }
        if (added != null) {
            added.adopt(this);
            nextHashes[n / 2] = added.scope.hashCode();
            scopeBits |= bit(nextHashes[n / 2]);
            next[n++] = added.scope;
            next[n++] = added;
            sweepFrom = Math.min(sweepFrom, prunableFrom(added));
            coverInterval(added);
        }
        next[0] = nextHashes;
        used = n / 2;
        slots = n == 1 ? NONE : next;
        sweepFromMicros = sweepFrom;
        pruneAt = Math.max(MIN_PRUNE_AT, 2 * used);
        return used;
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
        int live = 0;
        for (int i = 2; i < s.length && !any; i += 2) {
            Holder h = (Holder) SLOT.getAcquire(s, i);
            if (h != null) {
                live++;
                any = h.isDead() || h.prunable(h.word(), clockMicros);
            }
        }
        if (!any) {
            return live;
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
        if (used == 0) {
            markDead();
            return true;
        }
        unlock(word);
        return false;
    }

    /**
     * The lifetime to grant at {@code currentNanos}: the longest of the holders' (for each, two intervals, or {@link
     * Holder#REGULAR_INTERVALS} when the group's renewal was due, as a lone holder's; or until its state's expiry if
     * that is later, and at least one interval after its {@linkplain Entry#extensionDueMicros due time}), and before
     * the due time never less than the intervals granted before ({@link #grantedMicros}); noted with the next
     * renewal's due time (one longest interval before the end; earlier than the one noted before only once a key whose
     * state kept the group longer is gone, as {@link HolderExpiry} allows for, or a key with a longer interval has
     * joined, which only brings a renewal forward), under the group's word so that no slot
     * comes or goes in between. The cache asks inside its update of the subject and sets what this answers before any
     * other update (counted from its clock read after, see {@link HolderExpiry}): the cache keeps at least what is
     * noted.
     */
    @Override
    long lifetimeNanos(long currentNanos) {
        long word = lock();
        try {
            long clockMicros = currentNanos / 1_000;
            // A group in use across a whole interval stays in use: renewed at or after its due time, it gets as many
            // intervals as a lone holder in use does, and is renewed a third as often.
            long due = extensionDueMicros();
            long intervals = clockMicros >= due ? Holder.REGULAR_INTERVALS : 2;
            long lifetime = 0;
            long interval = 0;
            long sweepFrom = Long.MAX_VALUE;
            Object[] s = slots;
            for (int i = 2; i < 2 + 2 * used; i += 2) {
                Holder h = (Holder) s[i];
                lifetime = Math.max(lifetime, h.stateLifetimeNanos(currentNanos, intervals));
                long hi = h.intervalMicros();
                if (hi != Long.MAX_VALUE) {
                    interval = Math.max(interval, hi);
                    // A holder that was its subject's only key keeps the due time of its last renewal (up to three
                    // intervals ahead), which a caller that found it just before it joined the group may still
                    // act on: keep it an interval beyond that, as its renewal did. Others: no longer than above.
                    lifetime = Math.max(
                            lifetime, microsToNanos(Saturated.plus(h.extensionDueMicros(), hi)) - currentNanos);
                }
                sweepFrom = Math.min(sweepFrom, prunableFrom(h));
            }
            if (word != DEAD) {
                sweepFromMicros = Math.min(sweepFromMicros, sweepFrom);
                long granted = Saturated.plus(clockMicros, Saturated.times(interval, intervals));
                if (clockMicros < due && due != Long.MAX_VALUE && lifetime != Long.MAX_VALUE) {
                    // An update before the due time (a slot added through the cache), perhaps after a regular
                    // renewal: keep the intervals that granted, so that the expiry stays an interval beyond the due
                    // time that callers went by. Not what a key's state gave, counted above if the key is still here.
                    granted = Math.max(granted, grantedMicros);
                    lifetime = Math.max(lifetime, microsToNanos(granted) - currentNanos);
                }
                grantedMicros = granted;
                long covered =
                        lifetime == Long.MAX_VALUE ? Long.MAX_VALUE : Saturated.plus(clockMicros, lifetime / 1_000);
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
}
