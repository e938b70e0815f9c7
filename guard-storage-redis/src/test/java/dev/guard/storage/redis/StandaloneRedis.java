package dev.guard.storage.redis;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** A storage on the standalone Redis with a synchronous view of the same Redis, for tests that read what it wrote. */
final class StandaloneRedis {
    /** What a test does with a storage and a synchronous view of the same Redis. */
    interface Use {
        void accept(RedisStorage storage, RedisCommands<byte[], byte[]> redis);
    }

    private StandaloneRedis() {}

    /** Runs {@code use} with a storage under {@code prefix} whose keys outlive their ttl by {@code margin}. */
    static void with(String prefix, Duration margin, Use use) {
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage storage = RedisStorage.builder(connection)
                        .keyPrefix(prefix)
                        .expiryMargin(margin)
                        .build()) {
            use.accept(storage, connection.sync());
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }
}
