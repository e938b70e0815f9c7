package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.internal.Saturated;
import java.lang.invoke.VarHandle;

/**
 * The cache's per-subject expiry: each entry says how long it must live ({@link Entry#lifetimeNanos}). For a lone
 * holder changed in place that is two of its {@linkplain Holder#intervalMicros intervals}, or four when the cache
 * renews it at its due time (a key in use across an interval), or until its state's expiry if that is later (a state
 * that another spec wrote, which may outlive the interval); for a group, the longest of its holders' two intervals
 * (four when the cache renews the group at its due time), or a state's expiry if that is later. The
 * storage reads quietly and renews an entry only once its renewal is due ({@link Entry#needsExtension}), through the
 * cache's update of the subject; a read never changes the expiry (the cache applies a read's by a compare-and-set
 * that may be lost). A lone holder therefore lives more than one and at most two intervals after the last use of its
 * subject (any call that reads the subject), four if it was in use across an interval.
 *
 * <p><b>From the newest clock.</b> The cache reads its clock before it calls back, and the entry notes its next due
 * time in the callback; meanwhile callers may go on with the due time noted before, on a clock that went on (a group
 * that loses its longest-lived key grants less than before, from the older clock). Such a caller read the clock
 * before the entry noted the new due time: so after an update the clock is read again, and the lifetime counts from
 * it.
 */
final class HolderExpiry implements Expiry<String, Entry> {
    private final CallerClock clock;

    /** The expiry of a storage whose cache runs on {@code clock}. */
    HolderExpiry(CallerClock clock) {
        this.clock = clock;
    }

    @Override
    public long expireAfterCreate(String subject, Entry entry, long currentTime) {
        // A new entry (or one replacing an expired entry, whose holders the cache retired): no caller has read it.
        return entry.lifetimeNanos(currentTime);
    }

    @Override
    public long expireAfterUpdate(String subject, Entry entry, long currentTime, long currentDuration) {
        return fromNewestClock(entry, currentTime);
    }

    @Override
    public long expireAfterRead(String subject, Entry entry, long currentTime, long currentDuration) {
        return currentDuration;
    }

    /** {@code entry}'s lifetime from the cache's {@code currentTime}, plus how far the clock went on since. */
    private long fromNewestClock(Entry entry, long currentTime) {
        long lifetime = entry.lifetimeNanos(currentTime);
        // The due time the entry noted is written before the clock is read again (a store, then a load).
        VarHandle.fullFence();
        long lag = clock.read() - currentTime;
        return lag > 0 ? Saturated.plus(lifetime, lag) : lifetime;
    }
}
