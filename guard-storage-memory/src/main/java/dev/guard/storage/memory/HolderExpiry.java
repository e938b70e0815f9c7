package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.spi.StateKey;

/**
 * The cache's per-key expiry: each holder says how long it must live ({@link Holder#lifetimeNanos}), which for a
 * holder changed in place is two of its {@linkplain Holder#intervalMicros intervals}. The storage reads quietly and
 * renews a holder through a cache read only once an interval has passed since the last renewal ({@link
 * Holder#needsExtension}); such a read keeps the longer of the remaining and the new lifetime. An entry therefore
 * lives between one and three intervals after its last use, and always more than one.
 */
final class HolderExpiry implements Expiry<StateKey, Holder> {
    @Override
    public long expireAfterCreate(StateKey key, Holder holder, long currentTime) {
        return holder.lifetimeNanos(currentTime);
    }

    @Override
    public long expireAfterUpdate(StateKey key, Holder holder, long currentTime, long currentDuration) {
        return holder.lifetimeNanos(currentTime);
    }

    @Override
    public long expireAfterRead(StateKey key, Holder holder, long currentTime, long currentDuration) {
        return Math.max(currentDuration, holder.lifetimeNanos(currentTime));
    }
}
