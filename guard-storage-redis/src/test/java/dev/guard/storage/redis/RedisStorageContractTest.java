package dev.guard.storage.redis;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;
import java.time.Duration;

/** The whole storage contract against the standalone Redis at {@code GUARD_REDIS_URI}. */
class RedisStorageContractTest extends StorageContractTest {
    private final String prefix = Target.freshPrefix();

    @Override
    protected Storage open() {
        // The suite's manual clock stands still while real time passes: keys must outlive their ttl by the whole run.
        return Target.STANDALONE
                .builder(prefix)
                .expiryMargin(Duration.ofMinutes(5))
                .build();
    }

    @Override
    protected boolean knowsWhichLimitWroteAState() {
        return false;
    }

    @Override
    protected boolean acceptsClocksBefore1970() {
        return false;
    }
}
