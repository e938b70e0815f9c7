package dev.guard.storage.redis;

/**
 * The whole storage contract against the 3-master Cluster at {@code GUARD_REDIS_CLUSTER_URI}, one slot per subject:
 * the suite's batches over several subjects span slots and take the per-slot path with refunds.
 */
class RedisClusterContractTest extends RedisContractTest {
    @Override
    RedisStorage.Builder builder(String prefix) {
        return Target.CLUSTER.builder(prefix);
    }
}
