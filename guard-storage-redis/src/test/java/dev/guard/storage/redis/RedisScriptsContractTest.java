package dev.guard.storage.redis;

/**
 * The whole storage contract against the standalone Redis at {@code GUARD_REDIS_URI} on the script path ({@code
 * EVALSHA}), which servers without Redis Functions get.
 */
class RedisScriptsContractTest extends RedisContractTest {
    @Override
    RedisStorage.Builder builder(String prefix) {
        return Target.STANDALONE.builder(prefix).functions(false);
    }
}
