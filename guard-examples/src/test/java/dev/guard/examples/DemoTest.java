package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.zaxxer.hikari.HikariConfig;
import dev.guard.Reason;
import dev.guard.storage.memory.MemoryStorage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DemoTest {
    @Test
    void run_simulatedTraffic_hitsEveryKindOfFilterAndPrintsTheTable() {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        Demo.Summary summary;
        try (MemoryStorage storage = MemoryStorage.create()) {
            summary = Demo.run(storage, 20_000, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        }
        String printed = bytes.toString(StandardCharsets.UTF_8);

        assertThat(summary.total()).isEqualTo(20_000);
        assertThat(summary.byReason().values().stream()
                        .mapToInt(Integer::intValue)
                        .sum())
                .isEqualTo(20_000);
        assertThat(summary.byReason())
                .containsKeys(
                        Reason.ALLOWED,
                        Reason.BLOCKED,
                        Reason.CUSTOM,
                        Reason.DUPLICATE,
                        Reason.RATE_LIMITED,
                        Reason.THROTTLED);
        // Ordinary users mostly get through; the flooders mostly do not.
        assertThat(summary.byReason().get(Reason.ALLOWED)).isGreaterThan(20_000 / 2);
        assertThat(summary.byFilter()).containsKeys("blocklist", "no-bots", "duplicates", "per-chat", "per-user");
        assertThat(printed)
                .contains("decision latency: p50")
                .contains("BLOCKED")
                .contains("per-chat");
    }

    @Test
    void percentile_nearestRank_countsRanksExactly_notAFloatingPointHairAbove() {
        // 1 to 1,000 ns: the 99.9th percentile by nearest rank is the 999th value. 99.9 / 100 * 1000 is
        // 999.0000000000001 in doubles, whose ceiling would be rank 1,000, the maximum.
        long[] nanos = new long[1_000];
        for (int i = 0; i < nanos.length; i++) {
            nanos[i] = i + 1;
        }
        Demo.Summary summary = new Demo.Summary(Map.of(), Map.of(), nanos);

        assertThat(summary.percentile(50)).isEqualTo(500);
        assertThat(summary.percentile(99)).isEqualTo(990);
        assertThat(summary.percentile(99.9)).isEqualTo(999);
        assertThat(summary.percentile(100)).isEqualTo(1_000);
    }

    @Test
    void options_moreMessagesThanTheDemoCanHoldOrSpreadOverFiveMinutes_areRejectedWithTheirValue() {
        // Every latency is kept (8 bytes each), and five minutes hold 300,000,000 steps of a microsecond: two billion
        // messages would end in "Java heap space".
        assertThat(Demo.Options.parse(new String[] {"--messages", "10000000"}).messages())
                .isEqualTo(10_000_000);
        assertThatThrownBy(() -> Demo.Options.parse(new String[] {"--messages", "2000000000"}))
                .hasMessage("--messages must be at most 10,000,000 but was 2000000000");
    }

    @Test
    void options_badValues_areRejectedWithTheirName() {
        assertThatThrownBy(() -> Demo.Options.parse(new String[] {"--messages", "many"}))
                .hasMessage("--messages must be a number but was 'many'");
        assertThatThrownBy(() -> Demo.Options.parse(new String[] {"--messages", "0"}))
                .hasMessage("--messages must be positive but was 0");
        assertThatThrownBy(() -> Demo.Options.parse(new String[] {"--verbose"}))
                .hasMessageStartingWith("unknown option '--verbose'");
        assertThatThrownBy(() -> Storages.open("mongodb://x"))
                .hasMessage("--storage must be memory, a redis:// URI or a jdbc: URL but was 'mongodb://x'");
    }

    @Test
    void jdbcConfig_aMySqlUrl_isOneThatTheDemosDriverAccepts() throws SQLException {
        HikariConfig config = Storages.jdbcConfig("jdbc:mysql://127.0.0.1:3306/test");

        // The demo ships MariaDB's driver only; without a driver for the URL the pool fails with "No suitable driver".
        assertThat(DriverManager.getDriver(config.getJdbcUrl())).isNotNull();
        assertThat(config.getJdbcUrl()).startsWith("jdbc:mysql://127.0.0.1:3306/test");
        assertThat(config.getUsername()).isEqualTo("root");
        assertThat(config.isAutoCommit()).isFalse();
    }

    /** What the user sees when the demo's main ends with {@code thrown}: its stack trace, causes included. */
    private static String shown(Throwable thrown) {
        assertThat(thrown).as("an error for bad input").isNotNull();
        StringWriter out = new StringWriter();
        thrown.printStackTrace(new PrintWriter(out));
        return out.toString();
    }

    @Test
    void storage_ofNoKnownScheme_isRefusedWithoutShowingItsPassword() {
        String noJdbc = shown(catchThrowable(() -> Storages.open("postgresql://bot:s3cret@db/test")));
        String capitals = shown(catchThrowable(() -> Storages.open("REDIS://:s3cret@cache:6379")));

        assertThat(noJdbc).contains("--storage", "postgresql://***@db/test").doesNotContain("s3cret");
        assertThat(capitals).contains("--storage").doesNotContain("s3cret");
    }

    @Test
    void storage_jdbcUrlThatCannotBeOpened_namesTheOption_withoutShowingItsPassword() {
        // No driver for "jdbc:postgres:" (PostgreSQL's is "jdbc:postgresql:"); HikariCP echoes the URL, masking only a
        // "password=" parameter. MariaDB's driver reads "s3cret@127.0.0.1" as the port and says so. Nothing listens on
        // port 1 of the loopback either way.
        String noDriver = shown(catchThrowable(() -> Storages.open("jdbc:postgres://bot:s3cret@127.0.0.1:1/test")));
        String mariadb = shown(catchThrowable(() -> Storages.open("jdbc:mariadb://bot:s3cret@127.0.0.1:1/test")));

        assertThat(noDriver).contains("--storage").doesNotContain("s3cret");
        assertThat(mariadb).contains("--storage").doesNotContain("s3cret");
    }

    @Test
    void storage_passwordWithSlashesAtsOrSpaces_isNeverShown() {
        // A '/' or '@' in a URL's user information ends it for a driver, which then quotes the rest (and PostgreSQL's
        // logs the whole URL): refused before any driver sees it, masked whole. Nothing listens on port 1.
        String slash = shown(catchThrowable(() -> Storages.open("jdbc:postgresql://bob:s3/cret@127.0.0.1:1/test")));
        String at = shown(catchThrowable(() -> Storages.open("jdbc:mariadb://bob:s3@cret@127.0.0.1:1/test")));
        String badScheme = shown(catchThrowable(() -> Storages.open("jdbx:postgresql://bob:s3/cret@127.0.0.1:1/test")));
        String space = shown(
                catchThrowable(() -> Storages.open("jdbc:postgres://127.0.0.1:1/test?user=bob&password=s3 cret")));
        String unknown = shown(catchThrowable(
                () -> Demo.Options.parse(new String[] {"--store=jdbc:postgresql://bob:s3/cret@127.0.0.1:1/test"})));

        assertThat(slash)
                .contains("--storage", "must be percent-encoded", "jdbc:postgresql://***@127.0.0.1:1/test")
                .doesNotContain("cret");
        assertThat(at).contains("--storage", "must be percent-encoded").doesNotContain("cret");
        assertThat(badScheme).contains("--storage", "jdbx:postgresql://***@").doesNotContain("cret");
        assertThat(space).contains("--storage").doesNotContain("cret");
        assertThat(unknown).contains("unknown option").doesNotContain("cret");
        // An '@' in the query (a user name such as Azure's bob@server) is no user information: not refused for it.
        String atInQuery = shown(catchThrowable(
                () -> Storages.open("jdbc:postgres://127.0.0.1:1/test?user=bob@server&password=s3cret")));
        assertThat(atInQuery)
                .contains("--storage could not open")
                .doesNotContain("percent-encoded")
                .doesNotContain("s3cret");
    }

    @Test
    void storage_jdbcWhoseSchemaCannotBeCreated_leavesNoThreadOfTheStorageRunning() throws Exception {
        // A user without the right to create tables: the storage is built (and starts its sweeper), createSchema fails.
        // The admin's connection keeps the in-memory database for the test.
        String url = "jdbc:h2:mem:demo-no-create";
        try (Connection admin = DriverManager.getConnection(url, "sa", "");
                Statement statement = admin.createStatement()) {
            statement.execute("CREATE USER reader PASSWORD 'reader'");
            Set<Thread> before = Thread.getAllStackTraces().keySet();

            Throwable thrown = catchThrowable(() -> Storages.open(url + ";USER=reader;PASSWORD=reader"));

            assertThat(shown(thrown)).contains("--storage could not open");
            List<Thread> started = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> !before.contains(t) && t.getName().startsWith("guard-jdbc"))
                    .toList();
            for (Thread thread : started) {
                // A thread that is shut down ends at once; one still running would hold this join to its bound.
                thread.join(Duration.ofSeconds(10).toMillis());
            }
            assertThat(started).noneMatch(Thread::isAlive);
        }
    }

    @Test
    void options_takeAValueAfterAnEqualsSignToo_andAnUnknownOneIsShownRedacted() {
        Demo.Options options =
                Demo.Options.parse(new String[] {"--storage=jdbc:postgresql://db/test?user=bot&password=s3cret"});
        String unknown = shown(catchThrowable(
                () -> Demo.Options.parse(new String[] {"--store=jdbc:postgresql://bot:s3cret@db/test"})));

        assertThat(options.storage()).isEqualTo("jdbc:postgresql://db/test?user=bot&password=s3cret");
        assertThat(unknown).contains("unknown option '--store'").doesNotContain("s3cret");
    }
}
