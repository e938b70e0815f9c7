package dev.guard.storage.redis;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;
import java.time.Duration;

/**
 * The sender pool's contract (two processes sharing one set of senders) on the 3-master Cluster at {@code
 * GUARD_REDIS_CLUSTER_URI}.
 */
class RedisClusterSenderPoolTest extends SenderPoolContractTest {
    private final String prefix = Target.freshPrefix();

    @Override
    protected Storage open() {
        // The suite's manual clock stands still while real time passes: keys must outlive their ttl by the whole run.
        return Target.CLUSTER
                .builder(prefix)
                .expiryMargin(Duration.ofMinutes(5))
                .build();
    }
}
