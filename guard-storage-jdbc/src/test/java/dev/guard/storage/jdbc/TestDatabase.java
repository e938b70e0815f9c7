package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.guard.spi.StateKey;
import dev.guard.storage.tck.RequiredServer;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashSet;
import java.util.Properties;
import java.util.Set;

/**
 * The databases the tests run on, each with one shared pool per JVM. Servers are found through {@code
 * GUARD_POSTGRES_URL} and {@code GUARD_MARIADB_URL} (users from {@code GUARD_POSTGRES_USER}, {@code
 * GUARD_MARIADB_USER}, passwords from the matching {@code _PASSWORD} variables); without one the tests skip, under
 * {@code CI=true} they fail.
 */
enum TestDatabase {
    H2("H2 in memory", "jdbc:h2:mem:guard;DB_CLOSE_DELAY=-1;LOCK_TIMEOUT=2000", "", "", false, null, null),
    POSTGRES(
            "PostgreSQL",
            RequiredServer.env("GUARD_POSTGRES_URL", "jdbc:postgresql://127.0.0.1:5432/test"),
            RequiredServer.env("GUARD_POSTGRES_USER", "postgres"),
            RequiredServer.env("GUARD_POSTGRES_PASSWORD", ""),
            true,
            "GUARD_POSTGRES_URL",
            "start PostgreSQL on 127.0.0.1:5432 with a database 'test', or set GUARD_POSTGRES_URL"),
    // autoCommit=false is the configuration JdbcStorage recommends on MariaDB: its driver spends a round trip on
    // every auto-commit switch.
    MARIADB(
            "MariaDB",
            RequiredServer.env("GUARD_MARIADB_URL", "jdbc:mariadb://127.0.0.1:3306/test"),
            RequiredServer.env("GUARD_MARIADB_USER", "root"),
            RequiredServer.env("GUARD_MARIADB_PASSWORD", ""),
            false,
            "GUARD_MARIADB_URL",
            "start MariaDB on 127.0.0.1:3306 with a database 'test', or set GUARD_MARIADB_URL");

    static final String TABLE = "guard_state_test";

    private final String description;
    private final String url;
    private final String user;
    private final String password;
    private final boolean autoCommit;
    private final String variable;
    private final String howToRun;
    private HikariDataSource pool;
    private final Set<String> tables = new HashSet<>();

    TestDatabase(
            String description,
            String url,
            String user,
            String password,
            boolean autoCommit,
            String variable,
            String howToRun) {
        this.description = description;
        this.url = url;
        this.user = user;
        this.password = password;
        this.autoCommit = autoCommit;
        this.variable = variable;
        this.howToRun = howToRun;
    }

    /**
     * A connection of the shared pool in a transaction that holds the lock of {@code key}'s row in {@link #TABLE}
     * (which must exist) until it rolls back or closes: another process's decision on the key, stuck.
     */
    Connection lockingRowOf(StateKey key) throws SQLException {
        Connection other = dataSource().getConnection();
        try {
            other.setAutoCommit(false);
            try (PreparedStatement lock =
                    other.prepareStatement("SELECT kind FROM " + TABLE + " WHERE key_hash = ? FOR UPDATE")) {
                lock.setBytes(1, KeyCodec.keyHash(key));
                try (ResultSet rs = lock.executeQuery()) {
                    assertThat(rs.next()).as("the row of %s", key).isTrue();
                }
            }
            return other;
        } catch (SQLException | RuntimeException | Error e) {
            other.close();
            throw e;
        }
    }

    /** The shared pool, after skipping (or failing under CI) when the server is not reachable. */
    synchronized HikariDataSource dataSource() {
        if (pool == null) {
            if (variable != null) {
                probe();
            }
            HikariConfig config = new HikariConfig();
            config.setJdbcUrl(url);
            if (!user.isEmpty() && !url.contains("user=")) {
                config.setUsername(user);
                config.setPassword(password);
            }
            config.setAutoCommit(autoCommit);
            config.setMaximumPoolSize(16);
            config.setConnectionTimeout(Duration.ofSeconds(10).toMillis());
            config.setPoolName("guard-test-" + name().toLowerCase(java.util.Locale.ROOT));
            pool = new HikariDataSource(config);
        }
        return pool;
    }

    private void probe() {
        Properties props = new Properties();
        if (!user.isEmpty() && !url.contains("user=")) {
            props.setProperty("user", user);
            props.setProperty("password", password);
        }
        // No driver-specific connectTimeout: PostgreSQL reads it in seconds but MariaDB in milliseconds, where "2"
        // made the handshake itself time out under load. A closed loopback port is refused at once anyway.
        SQLException failure = null;
        DriverManager.setLoginTimeout(5);
        try (Connection c = DriverManager.getConnection(url, props)) {
            c.isValid(2);
        } catch (SQLException e) {
            failure = e;
        }
        RequiredServer.assume(description + " (" + variable + ")", failure == null, howToRun, failure);
    }

    /**
     * A pool of its own (the caller closes it) whose connections go to {@code host:port} instead of the server's
     * address, with the same database and credentials: through a proxy, say.
     */
    HikariDataSource poolThrough(String host, int port) {
        HikariConfig config = ownPool("proxied");
        config.setJdbcUrl(url.replaceFirst("//[^/]*/", "//" + host + ":" + port + "/"));
        if (this == POSTGRES) {
            // pgjdbc sends a cancel over a connection of its own, and a statement waits for its cancel to end: on a
            // silent network that takes cancelSignalTimeout (10 s by default), which the README advises to shorten.
            config.addDataSourceProperty("cancelSignalTimeout", "1");
        }
        return new HikariDataSource(config);
    }

    /**
     * A pool of its own (the caller closes it) on the same database whose connections wait for a lock {@code seconds}
     * at most, however long their statements may run: a statement held up by another transaction's lock fails then
     * (PostgreSQL's {@code lock_timeout}, MariaDB's metadata and row lock waits, H2's {@code LOCK_TIMEOUT}).
     */
    HikariDataSource poolWaitingForLocksAtMost(int seconds) {
        HikariConfig config = ownPool("lock-wait");
        config.setConnectionInitSql(
                switch (this) {
                    case POSTGRES -> "SET lock_timeout = '" + seconds + "s'";
                    case MARIADB ->
                        "SET SESSION lock_wait_timeout = " + seconds + ", innodb_lock_wait_timeout = " + seconds;
                    case H2 -> "SET LOCK_TIMEOUT " + seconds * 1000;
                });
        return new HikariDataSource(config);
    }

    /**
     * A pool of its own (the caller closes it) on the same database whose connections start in auto-commit mode when
     * {@code autoCommit}, and outside it otherwise, whichever the shared pool uses: as a user's pool may have it.
     */
    HikariDataSource poolWithAutoCommit(boolean autoCommit) {
        HikariConfig config = ownPool("auto-commit-" + autoCommit);
        config.setAutoCommit(autoCommit);
        return new HikariDataSource(config);
    }

    /** A small pool's settings on this database, with its credentials and auto-commit; {@code purpose} names it. */
    private HikariConfig ownPool(String purpose) {
        dataSource();
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(url);
        if (!user.isEmpty() && !url.contains("user=")) {
            config.setUsername(user);
            config.setPassword(password);
        }
        config.setAutoCommit(autoCommit);
        config.setMaximumPoolSize(2);
        config.setConnectionTimeout(Duration.ofSeconds(3).toMillis());
        config.setPoolName("guard-test-" + purpose + "-" + name().toLowerCase(java.util.Locale.ROOT));
        return config;
    }

    /** The server's host and port, from its URL. */
    java.net.InetSocketAddress address() {
        java.util.regex.Matcher m =
                java.util.regex.Pattern.compile("//([^/:]+):(\\d+)/").matcher(url);
        if (!m.find()) {
            throw new IllegalStateException("no host:port in the test database's url");
        }
        return java.net.InetSocketAddress.createUnresolved(m.group(1), Integer.parseInt(m.group(2)));
    }

    /** A builder on the shared pool and test table with the sweeper off; the schema is created once per JVM. */
    JdbcStorage.Builder builder() {
        return builder(TABLE);
    }

    /** A builder on the shared pool and {@code table}, created once per JVM. */
    synchronized JdbcStorage.Builder builder(String table) {
        JdbcStorage.Builder b = JdbcStorage.builder(dataSource()).table(table).sweepInterval(Duration.ZERO);
        if (tables.add(table)) {
            try (JdbcStorage s = JdbcStorage.builder(dataSource())
                    .table(table)
                    .sweepInterval(Duration.ZERO)
                    .build()) {
                s.createSchema();
            }
        }
        return b;
    }
}
