package dev.guard.examples;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.guard.spi.Storage;
import dev.guard.storage.jdbc.JdbcStorage;
import dev.guard.storage.memory.MemoryStorage;
import dev.guard.storage.redis.RedisStorage;
import java.io.Closeable;
import java.io.IOException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
            String userInfo = userInfo(spec);
            if (userInfo != null && userInfo.chars().anyMatch(c -> c == '/' || c == '?' || c == '#' || c == '@')) {
                // A driver would misread such a URL and quote it, password and all, in its messages and its own log.
                throw new IllegalArgumentException("--storage: the user and password of a jdbc: URL must be"
                        + " percent-encoded ('/' as %2F, '?' as %3F, '#' as %23, '@' as %40) but were not in "
                        + redactedUrl(spec));
            }
            return jdbc(spec);
        }
        throw new IllegalArgumentException(
                "--storage must be memory, a redis:// URI or a jdbc: URL but was '" + redactedUrl(spec) + "'");
    }

    /**
     * What may hold a password: a URL's user information (group 1), up to the last {@code @} of the word, so that a
     * password with an unencoded {@code /} or {@code @} is masked whole, or a password parameter's value (group 2).
     */
    private static final Pattern SECRET = Pattern.compile("//(\\S*)@|(?i)(?:password|pwd)=([^&;\\s]*)");

    /**
     * As {@link #SECRET}, in a {@code --storage} value, which is one argument: the user information runs to the last
     * {@code @}, and a password parameter's value to the next {@code &} or {@code ;}, spaces and all.
     */
    private static final Pattern SECRET_IN_URL = Pattern.compile("//(.*)@|(?i)(?:password|pwd)=([^&;]*)");

    /**
     * The user information of {@code url}: between {@code //} and its last {@code @}, unless a path and a query come
     * before that {@code @} (a user name such as {@code user=bob@server} in the query); null when it has none.
     */
    static String userInfo(String url) {
        int start = url.indexOf("//");
        int at = url.lastIndexOf('@');
        if (start < 0 || at < start + 2) {
            return null;
        }
        String candidate = url.substring(start + 2, at);
        int slash = candidate.indexOf('/');
        return slash >= 0 && candidate.indexOf('?', slash) >= 0 ? null : candidate;
    }

    /**
     * {@code text} with what could be a password masked: the user information of a URL ({@code user:password@}) and
     * the value of a {@code password=} or {@code pwd=} parameter. For what the demo prints of a {@code --storage} value.
     */
    static String redacted(String text) {
        return masked(SECRET, text);
    }

    /** {@code url}, a {@code --storage} value, with its user information and password parameters masked. */
    static String redactedUrl(String url) {
        return masked(SECRET_IN_URL, url);
    }

    /** {@code text} with the secrets that {@code secrets} finds masked. */
    private static String masked(Pattern secrets, String text) {
        // A match is "//user:password@", or a key (in the case it was written) and "=" before its value.
        return secrets.matcher(text)
                .replaceAll(m -> m.group(1) != null
                        ? "//***@"
                        : Matcher.quoteReplacement(text.substring(m.start(), m.start(2)) + "***"));
    }

    /**
     * {@code message} (a driver's or the pool's, about {@code url}) with every secret of {@code url} masked wherever it
     * appears, and then {@link #redacted}: drivers quote parts of a URL they could not parse in forms of their own.
     */
    static String redacted(String message, String url) {
        String masked = message;
        Matcher secrets = SECRET_IN_URL.matcher(url);
        while (secrets.find()) {
            String secret = secrets.group(1) != null ? secrets.group(1) : secrets.group(2);
            if (!secret.isEmpty()) {
                masked = masked.replace(secret, "***");
                int colon = secret.indexOf(':');
                if (colon >= 0 && colon + 1 < secret.length()) {
                    masked = masked.replace(secret.substring(colon + 1), "***");
                }
            }
        }
        return redacted(masked);
    }

    private static Opened jdbc(String url) {
        HikariDataSource dataSource = null;
        JdbcStorage storage = null;
        try {
            dataSource = new HikariDataSource(jdbcConfig(url));
            storage = JdbcStorage.builder(dataSource).build();
            storage.createSchema();
            return new Opened(storage, dataSource);
        } catch (RuntimeException e) {
            // The storage runs threads of its own (its sweeper) from the moment it is built.
            if (storage != null) {
                storage.close();
            }
            if (dataSource != null) {
                dataSource.close();
            }
            // The pool's and the drivers' messages may hold the URL, password and all (a user:password@ in it that a
            // driver does not parse): shown redacted, and without the raw cause.
            throw new IllegalArgumentException("--storage could not open " + redactedUrl(url) + ": "
                    + e.getClass().getSimpleName() + ": " + redacted(String.valueOf(e.getMessage()), url));
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
