package dev.guard.examples;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.guard.FailurePolicy;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.storage.jdbc.JdbcStorage;
import dev.guard.storage.memory.MemoryStorage;
import dev.guard.storage.redis.RedisStorage;
import java.time.Duration;

/**
 * The READMEs' examples of storages that several bot processes share, compiled here so that they cannot rot ({@code
 * ReadmeTest} checks that the READMEs show this code). They need the servers, so the build does not run them; the
 * demo's {@code --storage} option opens the same storages.
 */
public final class SharedLimits {
    private SharedLimits() {}

    /** The main README's example: a guard whose limits live in Redis on 127.0.0.1, in memory while it is down. */
    public static Guard<Update> onRedis() {
        // README:redis:begin
        // Several bot processes share one set of limits through Redis:
        Guard<Update> guard = Guard.<Update>builder()
                .storage(RedisStorage.builder("redis://127.0.0.1:6379")
                        .keyPrefix("mybot:")
                        .build())
                .onStorageFailure(FailurePolicy.fallbackTo(MemoryStorage.create()))
                .userId(Update::userId)
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .build();
        // README:redis:end
        return guard;
    }

    /** guard-storage-jdbc's README example: a storage in the database that {@code config} names, its table created. */
    public static JdbcStorage onJdbc(HikariConfig config) {
        // README:jdbc:begin
        HikariDataSource pool = new HikariDataSource(config); // any DataSource; or JdbcStorage.builder(jdbi)
        JdbcStorage storage = JdbcStorage.builder(pool).build(); // dialect detected from the connection
        storage.createSchema(); // or run the DDL below with your migration tool
        // README:jdbc:end
        return storage;
    }
}
