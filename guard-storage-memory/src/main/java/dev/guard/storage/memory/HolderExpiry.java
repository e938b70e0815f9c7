package dev.guard.storage.memory;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.spi.StateKey;

/**
 * The cache's per-key expiry: each holder says how long it must live ({@link Holder#lifetimeNanos}). Holders whose
 * state lock-free callers change in place without telling the cache get their lifetime renewed on reads, but only
 * when less than one lifetime is left, so that a hot key's reads do not write to its cache entry every time: an
 * entry lives between one and two lifetimes after its last read.
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
        if (!holder.extendsOnRead()) {
            return currentDuration;
        }
        long lifetime = holder.lifetimeNanos(currentTime);
        return currentDuration >= lifetime ? currentDuration : Holder.saturatedAdd(lifetime, lifetime);
    }
}
