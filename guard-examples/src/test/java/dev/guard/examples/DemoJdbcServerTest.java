package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Reason;
import dev.guard.spi.StorageHealth;
import dev.guard.storage.tck.RequiredServer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The README's demo on a database: {@code --storage jdbc:postgresql://127.0.0.1:5432/test} and {@code --storage
 * jdbc:mariadb://127.0.0.1:3306/test}, without {@code user=} (the servers' superuser, no password), open the storage,
 * create Guard's table and run the demo's traffic on it. Each case works in a schema (PostgreSQL) or database (MariaDB)
 * of its own and drops it. The servers come from {@code GUARD_POSTGRES_URL} and {@code GUARD_MARIADB_URL}, the
 * README's URLs by default; without one the case skips, under {@code CI=true} it fails.
 */
class DemoJdbcServerTest {
    private static final String POSTGRES_URL =
            RequiredServer.env("GUARD_POSTGRES_URL", "jdbc:postgresql://127.0.0.1:5432/test");
    private static final String MARIADB_URL =
            RequiredServer.env("GUARD_MARIADB_URL", "jdbc:mariadb://127.0.0.1:3306/test");

    @Test
    void storage_theReadmesPostgresUrl_createsTheTableAndRunsTheDemo() throws Exception {
        String schema =
                "walk_demo_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        try (Connection admin = connect("PostgreSQL (GUARD_POSTGRES_URL)", POSTGRES_URL, "postgres");
                Statement s = admin.createStatement()) {
            s.execute("CREATE SCHEMA " + schema);
            try {
                runsTheDemo(
                        POSTGRES_URL + (POSTGRES_URL.contains("?") ? "&" : "?") + "currentSchema=" + schema,
                        "postgresql");
            } finally {
                s.execute("DROP SCHEMA " + schema + " CASCADE");
            }
        }
    }

    @Test
    void storage_theReadmesMariaDbUrl_createsTheTableAndRunsTheDemo() throws Exception {
        String database =
                "walk_demo_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        try (Connection admin = connect("MariaDB (GUARD_MARIADB_URL)", MARIADB_URL, "root");
                Statement s = admin.createStatement()) {
            s.execute("CREATE DATABASE " + database);
            try {
                runsTheDemo(MARIADB_URL.replaceFirst("/[^/?]*(\\?|$)", "/" + database + "$1"), "mariadb");
            } finally {
                s.execute("DROP DATABASE " + database);
            }
        }
    }

    /** What the demo's main does with {@code --storage url}, with fewer messages and without the broadcast. */
    private static void runsTheDemo(String url, String dialect) throws Exception {
        Demo.Options options = Demo.Options.parse(new String[] {"--storage", url, "--messages", "2000"});
        assertThat(options.storage()).isEqualTo(url);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (Storages.Opened opened = Storages.open(options.storage())) {
            StorageHealth health = opened.storage().health();
            assertThat(health.up()).as("the table exists: %s", health.detail()).isTrue();
            assertThat(health.detail()).isEqualTo(dialect + " guard_state");

            Demo.Summary summary = Demo.run(
                    opened.storage(), options.messages(), new PrintStream(bytes, true, StandardCharsets.UTF_8));

            assertThat(summary.total()).isEqualTo(2_000);
            assertThat(summary.byReason())
                    .doesNotContainKey(Reason.STORAGE_UNAVAILABLE)
                    .containsKeys(Reason.ALLOWED, Reason.BLOCKED, Reason.THROTTLED);
        }
        assertThat(bytes.toString(StandardCharsets.UTF_8))
                .contains("on JdbcStorage[" + dialect + ", table guard_state");
    }

    /** A connection as the README's URL gives it (the superuser without {@code user=}), or a skip (a CI failure). */
    private static Connection connect(String what, String url, String superuser) {
        try {
            DriverManager.setLoginTimeout(5);
            return url.contains("user=")
                    ? DriverManager.getConnection(url)
                    : DriverManager.getConnection(url, superuser, "");
        } catch (SQLException e) {
            RequiredServer.assume(what, false, "start the server or set the variable", e);
            throw new AssertionError("unreachable", e);
        }
    }
}
