package dev.guard.storage.redis;

import java.util.UUID;

/**
 * The deployments a test runs against: a standalone Redis, a Cluster with one slot per subject, a Cluster in one slot.
 */
enum Target {
    STANDALONE,
    CLUSTER,
    CLUSTER_SINGLE_SLOT;

    /** The URI of this target's server; skips (or under CI fails) the test when it is not reachable. */
    String uri() {
        return this == STANDALONE ? RedisServers.standalone() : RedisServers.cluster();
    }

    /** A fresh key prefix, so that tests never see each other's keys. */
    static String freshPrefix() {
        return "test-" + UUID.randomUUID() + ":";
    }

    /** A builder for this target under a fresh key prefix. */
    RedisStorage.Builder builder() {
        return builder(freshPrefix());
    }

    /** A builder for this target under {@code prefix}: storages with one prefix share their state. */
    RedisStorage.Builder builder(String prefix) {
        return RedisStorage.builder(uri()).keyPrefix(prefix).singleSlot(this == CLUSTER_SINGLE_SLOT);
    }
}
