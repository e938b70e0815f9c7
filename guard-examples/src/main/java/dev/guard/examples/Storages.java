package dev.guard.examples;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.guard.spi.Storage;
import dev.guard.storage.jdbc.JdbcStorage;
import dev.guard.storage.memory.MemoryStorage;
import dev.guard.storage.redis.RedisStorage;
import java.io.Closeable;
import java.io.IOException;

/** Opens the storage the demo's {@code --storage} option names. */
final class Storages {
    private Storages() {}

    /** A storage with what was opened for it (a connection pool); closing closes both. */
    record Opened(Storage storage, Closeable resources) implements Closeable {
        @Override
        public void close() throws IOException {
            try {
                storage.close();
            } finally {
                resources.close();
            }
        }
    }

    /**
     * {@code memory} (the default), a {@code redis://} URI (also {@code rediss://} and {@code redis-sentinel://}) or a
     * {@code jdbc:} URL (PostgreSQL, MariaDB/MySQL, H2; the schema is created when missing).
     *
     * @throws IllegalArgumentException for anything else
     */
    static Opened open(String spec) {
        if (spec.equals("memory")) {
            return new Opened(MemoryStorage.create(), () -> {});
        }
        if (spec.startsWith("redis://") || spec.startsWith("rediss://") || spec.startsWith("redis-sentinel://")) {
            return new Opened(RedisStorage.create(spec), () -> {});
        }
        if (spec.startsWith("jdbc:")) {
            return jdbc(spec);
        }
        throw new IllegalArgumentException(
                "--storage must be memory, a redis:// URI or a jdbc: URL but was '" + spec + "'");
    }

    private static Opened jdbc(String url) {
        HikariDataSource dataSource = new HikariDataSource(jdbcConfig(url));
        try {
            JdbcStorage storage = JdbcStorage.builder(dataSource).build();
            storage.createSchema();
            return new Opened(storage, dataSource);
        } catch (RuntimeException e) {
            dataSource.close();
            throw e;
        }
    }

    /**
     * The pool for {@code url}: without {@code user=} in it, the local servers' superuser ({@code postgres} or {@code
     * root}) with no password; a {@code jdbc:mysql:} URL through MariaDB's driver.
     */
    static HikariConfig jdbcConfig(String url) {
        HikariConfig config = new HikariConfig();
        // The demo ships MariaDB's driver (it speaks to MySQL too), which takes a jdbc:mysql: URL only when the URL
        // says permitMysqlScheme.
        boolean mysql = url.startsWith("jdbc:mysql:") && !url.contains("permitMysqlScheme");
        config.setJdbcUrl(mysql ? url + (url.contains("?") ? "&" : "?") + "permitMysqlScheme" : url);
        if (url.startsWith("jdbc:postgresql:") && !url.contains("user=")) {
            config.setUsername("postgres");
        } else if ((url.startsWith("jdbc:mariadb:") || url.startsWith("jdbc:mysql:")) && !url.contains("user=")) {
            config.setUsername("root");
        }
        // MariaDB/MySQL: transactions without the driver's extra autocommit round trips (see guard-storage-jdbc).
        config.setAutoCommit(!(url.startsWith("jdbc:mariadb:") || url.startsWith("jdbc:mysql:")));
        config.setMaximumPoolSize(4);
        return config;
    }
}
