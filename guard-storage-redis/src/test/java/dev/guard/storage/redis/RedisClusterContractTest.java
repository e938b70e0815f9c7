package dev.guard.storage.redis;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;
import java.time.Duration;

/**
 * The whole storage contract against the 3-master Cluster at {@code GUARD_REDIS_CLUSTER_URI}, one slot per subject:
 * the suite's batches over several subjects span slots and take the per-slot path with refunds.
 */
class RedisClusterContractTest extends StorageContractTest {
    private final String prefix = Target.freshPrefix();

    @Override
    protected Storage open() {
        // The suite's manual clock stands still while real time passes: keys must outlive their ttl by the whole run.
        return Target.CLUSTER
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
