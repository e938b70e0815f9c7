package dev.guard.storage.redis;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/** The whole storage contract against the standalone Redis at {@code GUARD_REDIS_URI}. */
class RedisStorageContractTest extends StorageContractTest {
    private final String prefix = Target.freshPrefix();

    @Override
    protected Storage open() {
        return Target.STANDALONE.builder(prefix, ticker).build();
    }
}
