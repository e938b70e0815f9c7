package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Expiry;

/**
 * The cache's per-subject expiry: each entry says how long it must live ({@link Entry#lifetimeNanos}). For a lone
 * holder changed in place that is two of its {@linkplain Holder#intervalMicros intervals}, or four when the cache
 * renews it at its due time (a key in use across an interval), or until its state's expiry if that is later (a state
 * that another spec wrote, which may outlive the interval); for a group, the longest of its holders' two. The
 * storage reads quietly and renews an entry only once its renewal is due ({@link Entry#needsExtension}), through the
 * cache's update of the subject; a read never changes the expiry (the cache applies a read's by a compare-and-set
 * that may be lost). A lone holder therefore lives more than one and at most two intervals after its last use, four
 * if it was in use across an interval.
 */
final class HolderExpiry implements Expiry<String, Entry> {
    @Override
    public long expireAfterCreate(String subject, Entry entry, long currentTime) {
        return entry.lifetimeNanos(currentTime);
    }

    @Override
    public long expireAfterUpdate(String subject, Entry entry, long currentTime, long currentDuration) {
        return entry.lifetimeNanos(currentTime);
    }

    @Override
    public long expireAfterRead(String subject, Entry entry, long currentTime, long currentDuration) {
        return currentDuration;
    }
}
