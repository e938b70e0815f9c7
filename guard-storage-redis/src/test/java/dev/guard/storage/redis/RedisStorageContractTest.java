package dev.guard.storage.redis;

/** The whole storage contract against the standalone Redis at {@code GUARD_REDIS_URI}. */
class RedisStorageContractTest extends RedisContractTest {
    @Override
    RedisStorage.Builder builder(String prefix) {
        return Target.STANDALONE.builder(prefix);
    }
}
