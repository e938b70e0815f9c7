package dev.guard.storage.redis;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;
import java.time.Duration;

/**
 * The whole storage contract against a Redis target, keys under a prefix of their own. What holds for every Redis
 * target: a bucket's, window's, log's or counter's stored text does not say which limit wrote it, and clocks before
 * 1970, and from 2^53 microseconds (the year 2255) on, are refused.
 */
abstract class RedisContractTest extends StorageContractTest {
    private final String prefix = Target.freshPrefix();

    /** The builder of the storage under test, its keys under {@code prefix}. */
    abstract RedisStorage.Builder builder(String prefix);

    @Override
    protected Storage open() {
        // The suite's manual clock stands still while real time passes: keys must outlive their ttl by the whole run.
        return builder(prefix).expiryMargin(Duration.ofMinutes(5)).build();
    }

    @Override
    protected boolean knowsWhichLimitWroteAState() {
        return false;
    }

    @Override
    protected boolean acceptsClocksBefore1970() {
        return false;
    }

    @Override
    protected boolean acceptsClocksAfter2255() {
        return false;
    }
}
