package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.zaxxer.hikari.HikariDataSource;
import dev.guard.Decision;
import dev.guard.FailurePolicy;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.StorageHealth;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import javax.sql.DataSource;
import org.h2.jdbcx.JdbcDataSource;
import org.jdbi.v3.core.Jdbi;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.mariadb.jdbc.MariaDbDataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * What the root README, this module's README and the Javadoc of {@link JdbcStorage} promise a developer who brings
 * Guard to the database a bot already runs, walked through as that developer would: on H2, PostgreSQL and MariaDB
 * (servers from {@code GUARD_POSTGRES_URL} and {@code GUARD_MARIADB_URL}; without one its cases skip, under {@code
 * CI=true} they fail). Every case works in tables of its own and drops them; the cases of an unreachable database
 * need no server.
 */
class JdbcWalkthroughTest {
    /** An update of the bot's framework: Guard reads the ids through the extractors it is given. */
    record Update(Object userId, Object chatId) {}

    private static final String PASSWORD = "s3cret-walkthrough";

    // -----------------------------------------------------------------------------------------------------------------
    // Building: from a DataSource or a Jdbi, the dialect detected or set

    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void build_fromADataSource_detectsTheDialect_andToStringShowsNoAddress(TestDatabase db) {
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .sweepInterval(Duration.ZERO)
                .build()) {
            assertThat(storage.dialect()).isEqualTo(dialectOf(db));
            assertThat(storage.table()).isEqualTo("guard_state");
            assertThat(storage.toString())
                    .contains(dialectOf(db).label(), "guard_state")
                    .doesNotContain("jdbc:", "127.0.0.1");
        }
    }

    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void build_fromAJdbi_detectsTheDialectDecidesAndLeavesTheJdbiOpen(TestDatabase db) {
        Jdbi jdbi = Jdbi.create(db.dataSource());
        String table = uniqueTable();
        try (JdbcStorage storage = JdbcStorage.builder(jdbi).table(table).build()) {
            assertThat(storage.dialect()).isEqualTo(dialectOf(db));
            storage.createSchema();
            StateKey key = new StateKey("walk-jdbi", "user");
            TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
            assertThat(storage.acquire(key, bucket, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
            assertThat(Outcome.isAdmitted(storage.acquire(key, bucket, 1, 1_000_000)))
                    .isFalse();
            assertThat(storage.health().up()).isTrue();
        } finally {
            drop(db, table);
        }
        int one = jdbi.withHandle(
                h -> h.createQuery("SELECT 1").mapTo(Integer.class).one());
        assertThat(one).as("close() leaves the Jdbi to its owner").isEqualTo(1);
    }

    /** MariaDB also speaks as MySQL: the dialect set by hand is the one in use, and it decides. */
    @ParameterizedTest
    @EnumSource(value = TestDatabase.class, names = "MARIADB")
    void dialect_setToMySqlOverMariaDb_isTheOneInUseAndDecides(TestDatabase db) {
        String table = uniqueTable();
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .dialect(JdbcDialect.MYSQL)
                .table(table)
                .build()) {
            assertThat(storage.dialect()).isEqualTo(JdbcDialect.MYSQL);
            storage.createSchema();
            assertThat(storage.health().up()).isTrue();
            StateKey key = new StateKey("walk-mysql", "user");
            Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
            assertThat(storage.acquire(key, cooldown, 1, 1_000_000)).isEqualTo(Outcome.admitted(0));
            assertThat(Outcome.isAdmitted(storage.acquire(key, cooldown, 1, 1_000_000)))
                    .isFalse();
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Builder settings and table names

    @Test
    void table_badName_isRefusedNamingTheSettingAndTheValue() {
        JdbcStorage.Builder builder = JdbcStorage.builder(new JdbcDataSource());
        for (String bad : List.of("my table", "", "a-b", "x".repeat(41), "t\"; DROP TABLE x; --", "1abc", "таблица")) {
            assertThatThrownBy(() -> builder.table(bad))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("table must be a plain identifier (letters, digits, underscores, at most 40"
                            + " characters, not starting with a digit) but was '" + bad + "'");
        }
        assertThatThrownBy(() -> builder.table(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageEndingWith("but was null");
    }

    @Test
    void builder_badSettings_failAtOnceNamingTheSettingAndTheValue() {
        JdbcStorage.Builder b = JdbcStorage.builder(new JdbcDataSource());
        assertThatThrownBy(() -> b.timeout(Duration.ZERO)).hasMessage("timeout must be positive but was PT0S");
        assertThatThrownBy(() -> b.timeout(Duration.ofDays(106_752)))
                .hasMessage("timeout must be at most 106751 days but was PT2562048H");
        assertThatThrownBy(() -> b.sweepInterval(Duration.ofSeconds(-1)))
                .hasMessage("sweepInterval must not be negative but was PT-1S");
        assertThatThrownBy(() -> b.sweepGrace(Duration.ofSeconds(-1)))
                .hasMessage("sweepGrace must not be negative but was PT-1S");
        assertThatThrownBy(() -> b.sweepBatchSize(0))
                .hasMessage("sweepBatchSize must be between 1 and 10000 but was 0");
        assertThatThrownBy(() -> b.sweepBatchSize(10_001))
                .hasMessage("sweepBatchSize must be between 1 and 10000 but was 10001");
        assertThatThrownBy(() -> b.concurrentCalls(0))
                .hasMessage("concurrentCalls must be between 1 and 1024 but was 0");
        assertThatThrownBy(() -> b.concurrentCalls(1025))
                .hasMessage("concurrentCalls must be between 1 and 1024 but was 1025");
        assertThatThrownBy(() -> JdbcStorage.builder((DataSource) null)).hasMessage("dataSource must not be null");
        assertThatThrownBy(() -> JdbcStorage.builder((Jdbi) null)).hasMessage("jdbi must not be null");
    }

    /** The longest name the Javadoc allows is a table, an index and (on PostgreSQL) functions named after it. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void table_ofFortyCharacters_createsItsSchemaAndDecides(TestDatabase db) {
        String table = (uniqueTable() + "_".repeat(40)).substring(0, 40);
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .table(table)
                .sweepInterval(Duration.ZERO)
                .build()) {
            storage.createSchema();
            assertUp(storage);
            StateKey a = new StateKey("walk-long", "a");
            StateKey b = new StateKey("walk-long", "b");
            Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
            assertThat(storage.evaluate(Batch.of(new Step(a, cooldown, 1), new Step(b, cooldown, 1)), 1_000_000)
                            .admitted())
                    .as("a chain (on PostgreSQL through the function)")
                    .isTrue();
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // The schema: createSchema() and the shipped DDL run by hand

    /**
     * The README: "run the DDL below with your migration tool", "for another table name, replace guard_state
     * throughout". Run twice (it is idempotent), the file gives a schema that a storage of that name finds healthy
     * and decides on, and over which createSchema() changes nothing.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void shippedDdl_runByHandTwiceUnderAnotherName_isTheSchemaInUse(TestDatabase db) throws SQLException {
        String table = uniqueTable();
        try {
            String ddl = JdbcStorage.schemaDdl(dialectOf(db)).replace("guard_state", table);
            runScript(db, ddl);
            runScript(db, ddl);
            try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                    .table(table)
                    .sweepInterval(Duration.ZERO)
                    .build()) {
                assertUp(storage);
                Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 2);
                assertThat(guard.check(new Update(7, 7)).allowed()).isTrue();
                assertThat(guard.check(new Update(7, 7)).allowed()).isTrue();
                assertThat(guard.check(new Update(7, 7)).reason()).isEqualTo(Reason.RATE_LIMITED);
                assertThat(rows(db, table)).isEqualTo(1);

                storage.createSchema();
                assertThat(storage.health().up()).isTrue();
                assertThat(guard.check(new Update(7, 7)).reason())
                        .as("createSchema() kept the state")
                        .isEqualTo(Reason.RATE_LIMITED);
            }
        } finally {
            drop(db, table);
        }
    }

    /**
     * The README: a reserved word works as the table's name too, "quoted where it names the table itself" in the
     * shipped DDL, as createSchema() does; the index and the functions take it as their prefix unquoted.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void shippedDdl_reservedWordQuotedWhereItNamesTheTable_isTheSchemaInUse(TestDatabase db) throws SQLException {
        String table = "check";
        String quoted = db == TestDatabase.MARIADB ? "`check`" : db == TestDatabase.H2 ? "\"CHECK\"" : "\"check\"";
        try {
            String ddl = JdbcStorage.schemaDdl(dialectOf(db))
                    .replaceAll("\\bguard_state\\b", Matcher.quoteReplacement(quoted))
                    .replace("guard_state_", table + "_");
            runScript(db, ddl);
            try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                    .table(table)
                    .sweepInterval(Duration.ZERO)
                    .build()) {
                assertUp(storage);
                Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 1);
                assertThat(guard.check(new Update(7, 7)).allowed()).isTrue();
                assertThat(guard.check(new Update(7, 7)).reason()).isEqualTo(Reason.RATE_LIMITED);
                assertThat(rows(db, quoted)).isEqualTo(1);
            }
        } finally {
            drop(db, quoted);
        }
    }

    /**
     * The README's upgrade: over a schema of an older version, health() is down naming both versions and the fix,
     * decisions still run, and running the file again by hand (as a migration tool would) makes it current.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void upgrade_schemaOfAnOlderVersion_isDownNamingTheFix_untilTheFileRunsAgain(TestDatabase db) throws SQLException {
        String table = uniqueTable();
        JdbcDialect dialect = dialectOf(db);
        String file = dialect == JdbcDialect.POSTGRESQL
                ? "postgresql.sql"
                : dialect == JdbcDialect.H2 ? "h2.sql" : "mariadb.sql";
        try {
            String ddl = JdbcStorage.schemaDdl(dialect).replace("guard_state", table);
            runScript(db, ddl);
            runScript(
                    db,
                    db == TestDatabase.MARIADB
                            ? "ALTER TABLE " + table + " COMMENT = ''"
                            : "COMMENT ON TABLE " + table + " IS NULL");
            try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                    .table(table)
                    .sweepInterval(Duration.ZERO)
                    .build()) {
                StorageHealth health = storage.health();
                assertThat(health.up()).isFalse();
                assertThat(health.detail())
                        .isEqualTo(dialect.label() + " table " + table + " has no schema version (a schema from"
                                + " before versions), this Guard needs version " + JdbcStorage.SCHEMA_VERSION
                                + ": run createSchema() or " + file + " again");
                Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 1);
                assertThat(guard.check(new Update(7, 7)))
                        .as("decisions still run")
                        .isEqualTo(Decision.allowed(0));

                runScript(db, ddl);
                assertUp(storage);
            }
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // UNLOGGED (PostgreSQL)

    @ParameterizedTest
    @EnumSource(value = TestDatabase.class, names = "POSTGRES")
    void unloggedTable_onPostgres_createsAnUnloggedTable_andAnExistingTableKeepsItsKind(TestDatabase db)
            throws SQLException {
        String unlogged = uniqueTable();
        String logged = uniqueTable();
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                        .table(unlogged)
                        .unloggedTable(true)
                        .sweepInterval(Duration.ZERO)
                        .build();
                JdbcStorage plain = JdbcStorage.builder(db.dataSource())
                        .table(logged)
                        .sweepInterval(Duration.ZERO)
                        .build()) {
            storage.createSchema();
            plain.createSchema();
            assertThat(persistence(db, unlogged)).isEqualTo("u");
            assertThat(persistence(db, logged)).isEqualTo("p");
            assertThat(storage.toString()).containsIgnoringCase("unlogged");
            assertThat(plain.toString()).doesNotContainIgnoringCase("unlogged");
            assertThat(storage.health().up()).isTrue();

            try (JdbcStorage other = JdbcStorage.builder(db.dataSource())
                    .table(logged)
                    .unloggedTable(true)
                    .sweepInterval(Duration.ZERO)
                    .build()) {
                other.createSchema();
            }
            assertThat(persistence(db, logged))
                    .as("an existing table keeps its kind")
                    .isEqualTo("p");
        } finally {
            drop(db, unlogged);
            drop(db, logged);
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = TestDatabase.class,
            names = {"H2", "MARIADB"})
    void unloggedTable_onAnotherDatabase_failsTheBuildNamingTheSetting(TestDatabase db) {
        assertThatThrownBy(() -> JdbcStorage.builder(db.dataSource())
                        .unloggedTable(true)
                        .sweepInterval(Duration.ZERO)
                        .build())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unloggedTable is only available on postgresql but the dialect is "
                        + dialectOf(db).label());
    }

    // -----------------------------------------------------------------------------------------------------------------
    // The sweeper

    /**
     * sweep() deletes the rows that expired before the ticker's now minus the grace, all of them in one call however
     * small its batches, and no others.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void sweep_deletesExactlyTheRowsExpiredLongerThanTheGrace(TestDatabase db) {
        String table = uniqueTable();
        ManualTicker clock = ManualTicker.create();
        long now = clock.epochMicros();
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .table(table)
                .sweepInterval(Duration.ZERO)
                .sweepGrace(Duration.ofMinutes(1))
                .sweepBatchSize(2)
                .ticker(clock)
                .build()) {
            storage.createSchema();
            for (int i = 0; i < 5; i++) {
                storage.acquire(new StateKey("walk-sweep", "short-" + i), new Cooldown(Duration.ofSeconds(1)), 1, now);
            }
            storage.acquire(new StateKey("walk-sweep", "long"), new Cooldown(Duration.ofHours(1)), 1, now);
            assertThat(rows(db, table)).isEqualTo(6);

            clock.advance(Duration.ofSeconds(1).plus(Duration.ofMinutes(1)).minusNanos(1_000));
            assertThat(storage.sweep())
                    .as("expired a microsecond less than the grace ago")
                    .isZero();
            clock.advanceMicros(1);
            assertThat(storage.sweep()).isEqualTo(5);
            assertThat(rows(db, table)).isEqualTo(1);
            assertThat(storage.sweep()).isZero();
        } finally {
            drop(db, table);
        }
    }

    /** The background sweeper is a thread of the storage's own, and close() ends it. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void close_endsTheSweepersThread_andLeavesTheDataSourceOpen(TestDatabase db) throws Exception {
        Set<Thread> before = Thread.getAllStackTraces().keySet();
        JdbcStorage storage = JdbcStorage.builder(db.dataSource()).build();
        List<Thread> started = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> !before.contains(t) && t.getName().startsWith("guard-jdbc"))
                .toList();
        assertThat(started).extracting(Thread::getName).contains("guard-jdbc-sweeper");

        storage.close();
        storage.close();

        for (Thread thread : started) {
            // A thread that is shut down ends at once; one still running would hold this join to its bound.
            thread.join(Duration.ofSeconds(10).toMillis());
        }
        assertThat(started).noneMatch(Thread::isAlive);
        try (Connection c = db.dataSource().getConnection()) {
            assertThat(c.isValid(2)).as("the data source belongs to the caller").isTrue();
        }
    }

    /** sweepInterval(Duration.ZERO) turns the sweeper off: no thread of it runs, and sweep() is the user's to call. */
    @ParameterizedTest
    @EnumSource(
            value = TestDatabase.class,
            names = {"H2", "MARIADB"})
    void sweepInterval_zero_startsNoSweeperThread(TestDatabase db) {
        Set<Thread> before = Thread.getAllStackTraces().keySet();
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .sweepInterval(Duration.ZERO)
                .build()) {
            assertThat(storage.dialect()).isEqualTo(dialectOf(db));
            assertThat(Thread.getAllStackTraces().keySet())
                    .filteredOn(t -> !before.contains(t) && t.getName().startsWith("guard-jdbc"))
                    .isEmpty();
        }
    }

    @ParameterizedTest
    @EnumSource(value = TestDatabase.class, names = "POSTGRES")
    void close_onPostgres_decisionsFailAndHealthIsDown(TestDatabase db) {
        String table = uniqueTable();
        try {
            JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                    .table(table)
                    .sweepInterval(Duration.ZERO)
                    .build();
            storage.createSchema();
            Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 5);
            assertThat(guard.check(new Update(7, 7)).degraded()).isFalse();
            storage.close();

            assertThat(storage.health().up()).isFalse();
            assertThatThrownBy(() -> storage.acquire(
                            new StateKey("walk-closed", "u"), new TokenBucket(5, 1, Duration.ofHours(1)), 1, 1))
                    .as("a single bucket")
                    .isInstanceOf(GuardStorageException.class);
            assertThatThrownBy(() -> storage.acquire(
                            new StateKey("walk-closed", "u"), new Cooldown(Duration.ofSeconds(1)), 1, 1))
                    .as("through the function")
                    .isInstanceOf(GuardStorageException.class);
            Decision decision = guard.check(new Update(7, 7));
            assertThat(decision.degraded()).isTrue();
            assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        } finally {
            drop(db, table);
        }
    }

    /**
     * Where no watchdog bounds a statement (H2, MariaDB, MySQL, and PostgreSQL with storedFunction(false), whose
     * statements keep the driver's query timeout), close() stops the sweeper only: the storage holds no connection,
     * and it goes on deciding and answering health() as before.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void close_withoutAWatchdog_stopsTheSweeperOnly(TestDatabase db) {
        String table = uniqueTable();
        try {
            JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                    .table(table)
                    .storedFunction(false)
                    .build();
            storage.createSchema();
            storage.close();

            assertUp(storage);
            Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 1);
            assertThat(guard.check(new Update(7, 7))).isEqualTo(Decision.allowed(0));
            assertThat(guard.check(new Update(7, 7)).reason()).isEqualTo(Reason.RATE_LIMITED);
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Several Guard instances over one database

    /** Three bot processes (a guard and a storage each) on one table, six threads at once: exactly the capacity. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void severalGuards_overOneDatabase_admitExactlyTheLimitTogether(TestDatabase db) throws Exception {
        String table = uniqueTable();
        List<JdbcStorage> storages = new ArrayList<>();
        ExecutorService threads = Executors.newFixedThreadPool(6);
        try {
            List<Guard<Update>> guards = new ArrayList<>();
            ManualTicker clock = ManualTicker.create();
            for (int i = 0; i < 3; i++) {
                JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .build();
                storages.add(storage);
                storage.createSchema();
                guards.add(perUserBucket(storage, clock, 10));
            }
            CountDownLatch gate = new CountDownLatch(1);
            AtomicInteger allowed = new AtomicInteger();
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < 6; t++) {
                Guard<Update> guard = guards.get(t % 3);
                done.add(threads.submit(() -> {
                    gate.await();
                    for (int i = 0; i < 10; i++) {
                        Decision d = guard.check(new Update(42, 42));
                        assertThat(d.degraded()).isFalse();
                        if (d.allowed()) {
                            allowed.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            gate.countDown();
            for (Future<?> f : done) {
                f.get(60, TimeUnit.SECONDS);
            }
            assertThat(allowed.get()).isEqualTo(10);
        } finally {
            threads.shutdownNow();
            storages.forEach(JdbcStorage::close);
            drop(db, table);
        }
    }

    /**
     * A user's pool may hand out connections in either auto-commit mode (the README advises autoCommit=false on
     * MariaDB and MySQL, and PostgreSQL runs in auto-commit): decisions, gates and set members commit either way, and
     * what one storage wrote, another on the shared pool reads.
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void aPoolInEitherAutoCommitMode_commitsDecisionsGatesAndMembers(TestDatabase db) {
        String table = uniqueTable();
        try {
            for (boolean autoCommit : new boolean[] {true, false}) {
                ManualTicker clock = ManualTicker.create();
                try (HikariDataSource pool = db.poolWithAutoCommit(autoCommit);
                        JdbcStorage storage = JdbcStorage.builder(pool)
                                .table(table)
                                .sweepInterval(Duration.ZERO)
                                .build();
                        JdbcStorage reader = JdbcStorage.builder(db.dataSource())
                                .table(table)
                                .sweepInterval(Duration.ZERO)
                                .build()) {
                    storage.createSchema();
                    Guard<Update> guard = Guard.<Update>builder()
                            .storage(storage)
                            .ticker(clock)
                            .userId(Update::userId)
                            .chatId(Update::chatId)
                            .blocklist()
                            .gate("flood", KeyBy.CHAT)
                            .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                            .cooldown("slow", KeyBy.CHAT, Duration.ofSeconds(1))
                            .build();
                    Guard<Update> other = perUserBucket(reader, clock, 2);
                    String user = "walk-auto-commit-" + autoCommit;
                    assertThat(guard.check(new Update(user, user + "-chat-1")).allowed())
                            .isTrue();
                    assertThat(guard.check(new Update(user, user + "-chat-2")).allowed())
                            .isTrue();
                    assertThat(other.check(new Update(user, user + "-chat-3")).reason())
                            .as("autoCommit=%s: the bucket's two permits were committed", autoCommit)
                            .isEqualTo(Reason.RATE_LIMITED);
                    guard.blocklist().add("blocked-" + autoCommit);
                    guard.pause("flood", "chat-" + autoCommit, Duration.ofSeconds(10));
                    Guard<Update> second = Guard.<Update>builder()
                            .storage(reader)
                            .ticker(clock)
                            .userId(Update::userId)
                            .chatId(Update::chatId)
                            .blocklist()
                            .gate("flood", KeyBy.CHAT)
                            .build();
                    assertThat(second.check(new Update("blocked-" + autoCommit, user + "-chat-4"))
                                    .reason())
                            .isEqualTo(Reason.BLOCKED);
                    assertThat(second.check(new Update("anyone", "chat-" + autoCommit))
                                    .reason())
                            .isEqualTo(Reason.COOLDOWN);
                    assertThat(rows(db, table)).as("autoCommit=%s", autoCommit).isPositive();
                }
            }
        } finally {
            drop(db, table);
        }
    }

    /** The blocklist and a gate set through one process hold in another at once. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void severalGuards_overOneDatabase_shareTheBlocklistAndGates(TestDatabase db) {
        String table = uniqueTable();
        ManualTicker clock = ManualTicker.create();
        try (JdbcStorage first = JdbcStorage.builder(db.dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .build();
                JdbcStorage second = JdbcStorage.builder(db.dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .build()) {
            first.createSchema();
            Consumer<Guard.Builder<Update>> chain = b -> b.ticker(clock)
                    .userId(Update::userId)
                    .chatId(Update::chatId)
                    .blocklist()
                    .gate("flood", KeyBy.CHAT);
            Guard.Builder<Update> a = Guard.<Update>builder().storage(first);
            chain.accept(a);
            Guard.Builder<Update> b = Guard.<Update>builder().storage(second);
            chain.accept(b);
            Guard<Update> one = a.build();
            Guard<Update> two = b.build();

            one.blocklist().add(13);
            assertThat(two.check(new Update(13, 1)).reason()).isEqualTo(Reason.BLOCKED);
            assertThat(two.blocklist().contains(13)).isTrue();

            one.pause("flood", 99, Duration.ofSeconds(10));
            Decision paused = two.check(new Update(1, 99));
            assertThat(paused.reason()).isEqualTo(Reason.COOLDOWN);
            assertThat(paused.retryAfter()).isEqualTo(Duration.ofSeconds(10));
            clock.advance(Duration.ofSeconds(10));
            assertThat(two.check(new Update(1, 99)).allowed()).isTrue();
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Keys of any content

    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void keys_ofAnyContent_areDistinctUsers_andForgettable(TestDatabase db) {
        String table = uniqueTable();
        List<Object> ids = List.of(
                "ünïcødé 😀",
                "new\nline",
                "{braces}",
                "quote'\"`",
                "'; DROP TABLE " + table + "; --",
                "back\\slash",
                "\u0000nul",
                "x".repeat(10_000),
                "x".repeat(10_001),
                "%_",
                42L);
        try (JdbcStorage storage = JdbcStorage.builder(db.dataSource())
                .table(table)
                .sweepInterval(Duration.ZERO)
                .build()) {
            storage.createSchema();
            Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 1);
            for (Object id : ids) {
                assertThat(guard.check(new Update(id, 1)).allowed())
                        .as("first of %s", shown(id))
                        .isTrue();
            }
            for (Object id : ids) {
                assertThat(guard.check(new Update(id, 1)).reason())
                        .as("second of %s", shown(id))
                        .isEqualTo(Reason.RATE_LIMITED);
            }
            assertThat(guard.check(new Update("42", 1)).reason())
                    .as("an id is its text: 42L and \"42\" are one user")
                    .isEqualTo(Reason.RATE_LIMITED);
            for (Object id : ids) {
                assertThat(guard.forgetUser(id)).as("forget %s", shown(id)).isEqualTo(1);
                assertThat(guard.check(new Update(id, 1)).allowed()).isTrue();
            }
            assertThat(rows(db, table)).isEqualTo(ids.size());
        } finally {
            drop(db, table);
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // A database that cannot be reached: no server needed

    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void unreachable_buildWithoutDialect_failsWithGuardStorageException_withoutThePassword(TestDatabase db)
            throws SQLException {
        DataSource dead = deadDataSource(db);
        Throwable thrown = catchThrowable(() -> JdbcStorage.builder(dead).build());
        assertThat(thrown)
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("jdbc detect dialect failed: ");
        assertThat(everything(thrown)).doesNotContain(PASSWORD);
    }

    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void unreachable_withTheDialectSet_buildsAndHealthIsDownWithoutThrowing(TestDatabase db) throws SQLException {
        try (JdbcStorage storage =
                JdbcStorage.builder(deadDataSource(db)).dialect(dialectOf(db)).build()) {
            StorageHealth health = storage.health();
            assertThat(health.up()).isFalse();
            assertThat(health.detail())
                    .startsWith("jdbc health failed: " + dialectOf(db).label())
                    .doesNotContain(PASSWORD);
            assertThatThrownBy(storage::createSchema)
                    .isInstanceOf(GuardStorageException.class)
                    .satisfies(e -> assertThat(everything(e)).doesNotContain(PASSWORD));
        }
    }

    /** failOpen(), the default: allowed, marked degraded and STORAGE_UNAVAILABLE; administration throws. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void unreachable_failOpen_allowsDegraded_andAdministrationThrows(TestDatabase db) throws SQLException {
        try (JdbcStorage storage =
                JdbcStorage.builder(deadDataSource(db)).dialect(dialectOf(db)).build()) {
            Guard<Update> guard = perUserBucket(storage, ManualTicker.create(), 1);
            for (int i = 0; i < 3; i++) {
                Decision d = guard.check(new Update(1, 1));
                assertThat(d.allowed()).isTrue();
                assertThat(d.degraded()).isTrue();
                assertThat(d.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
            }
            assertThatThrownBy(() -> guard.blocklist().add(1))
                    .isInstanceOf(GuardStorageException.class)
                    .satisfies(e -> assertThat(everything(e)).doesNotContain(PASSWORD));
        }
    }

    /**
     * failClosed(): rejected by filter "storage"; retryAfter() zero while the breaker is closed, then what is left of
     * its pause (5 failures, 5 s by default).
     */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void unreachable_failClosed_rejectsRetryableOnceTheBreakerLetsACallThrough(TestDatabase db) throws SQLException {
        ManualTicker clock = ManualTicker.create();
        try (JdbcStorage storage =
                JdbcStorage.builder(deadDataSource(db)).dialect(dialectOf(db)).build()) {
            Guard<Update> guard = Guard.<Update>builder()
                    .storage(storage)
                    .ticker(clock)
                    .onStorageFailure(FailurePolicy.failClosed())
                    .userId(Update::userId)
                    .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofHours(1))
                    .build();
            for (int i = 0; i < 4; i++) {
                assertThat(guard.check(new Update(1, 1)))
                        .isEqualTo(new Decision(false, "storage", Reason.STORAGE_UNAVAILABLE, Duration.ZERO, 0, true));
            }
            assertThat(guard.check(new Update(1, 1)).retryAfter())
                    .as("the fifth failure opens the breaker")
                    .isEqualTo(Duration.ofSeconds(5));
            clock.advance(Duration.ofSeconds(2));
            assertThat(guard.check(new Update(1, 1)).retryAfter()).isEqualTo(Duration.ofSeconds(3));
        }
    }

    /** fallbackTo(a local storage): the limits hold per process, every decision marked degraded. */
    @ParameterizedTest
    @EnumSource(TestDatabase.class)
    void unreachable_fallback_holdsTheLimitsLocally(TestDatabase db) throws SQLException {
        try (JdbcStorage storage =
                JdbcStorage.builder(deadDataSource(db)).dialect(dialectOf(db)).build()) {
            Guard<Update> guard = Guard.<Update>builder()
                    .storage(storage)
                    .ticker(ManualTicker.create())
                    .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                    .userId(Update::userId)
                    .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                    .build();
            assertThat(guard.check(new Update(1, 1)))
                    .isEqualTo(new Decision(true, null, Reason.ALLOWED, Duration.ZERO, 1, true));
            assertThat(guard.check(new Update(1, 1)))
                    .isEqualTo(new Decision(true, null, Reason.ALLOWED, Duration.ZERO, 0, true));
            assertThat(guard.check(new Update(1, 1)))
                    .isEqualTo(new Decision(false, "per-user", Reason.RATE_LIMITED, Duration.ofHours(1), 0, true));
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // helpers

    /** A guard on {@code storage}: one token bucket per user of {@code capacity}, refilled by one an hour. */
    private static Guard<Update> perUserBucket(JdbcStorage storage, ManualTicker clock, long capacity) {
        return Guard.<Update>builder()
                .storage(storage)
                .ticker(clock)
                .userId(Update::userId)
                .tokenBucket("per-user", KeyBy.USER, capacity, 1, Duration.ofHours(1))
                .build();
    }

    /** The health of a current schema: up, naming the dialect and the table. */
    private static void assertUp(JdbcStorage storage) {
        StorageHealth health = storage.health();
        assertThat(health)
                .isEqualTo(StorageHealth.up(health.latency(), storage.dialect().label() + " " + storage.table()));
    }

    static JdbcDialect dialectOf(TestDatabase db) {
        return switch (db) {
            case H2 -> JdbcDialect.H2;
            case POSTGRES -> JdbcDialect.POSTGRESQL;
            case MARIADB -> JdbcDialect.MARIADB;
        };
    }

    /** A data source of {@code db}'s kind whose server is a port where nothing listens, with a password. */
    static DataSource deadDataSource(TestDatabase db) throws SQLException {
        switch (db) {
            case POSTGRES -> {
                PGSimpleDataSource ds = new PGSimpleDataSource();
                ds.setServerNames(new String[] {"127.0.0.1"});
                ds.setPortNumbers(new int[] {1});
                ds.setDatabaseName("test");
                ds.setUser("bot");
                ds.setPassword(PASSWORD);
                return ds;
            }
            case MARIADB -> {
                return new MariaDbDataSource("jdbc:mariadb://127.0.0.1:1/test?user=bot&password=" + PASSWORD);
            }
            default -> {
                JdbcDataSource ds = new JdbcDataSource();
                ds.setURL("jdbc:h2:tcp://127.0.0.1:1/mem:walk");
                ds.setUser("bot");
                ds.setPassword(PASSWORD);
                return ds;
            }
        }
    }

    /** The messages of {@code t} and its causes, and their string forms. */
    private static String everything(Throwable t) {
        StringBuilder all = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            all.append(c).append('\n');
        }
        return all.toString();
    }

    private static String shown(Object id) {
        String text = String.valueOf(id);
        return text.length() > 20 ? text.length() + " chars" : text;
    }

    /** A table name no other test uses. */
    static String uniqueTable() {
        return "walk_" + UUID.randomUUID().toString().replace("-", "").substring(0, 16);
    }

    /** Runs {@code script}'s statements, separated by {@code -- statement} lines as in the shipped DDL. */
    private static void runScript(TestDatabase db, String script) throws SQLException {
        try (Connection c = db.dataSource().getConnection();
                Statement s = c.createStatement()) {
            for (String statement : script.split("\n-- statement\n")) {
                s.execute(statement);
            }
            if (!c.getAutoCommit()) {
                c.commit();
            }
        }
    }

    /** How many rows {@code table} (as written in SQL) holds. */
    private static long rows(TestDatabase db, String table) {
        try (Connection c = db.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM " + table)) {
            rs.next();
            long n = rs.getLong(1);
            if (!c.getAutoCommit()) {
                c.commit();
            }
            return n;
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** PostgreSQL's relpersistence of {@code table}: p for a logged table, u for an unlogged one. */
    private static String persistence(TestDatabase db, String table) throws SQLException {
        try (Connection c = db.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT relpersistence FROM pg_class WHERE oid = '"
                        + table.toLowerCase(Locale.ROOT) + "'::regclass")) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** Drops {@code table} (as written in SQL) and, on PostgreSQL, the functions named after it. */
    static void drop(TestDatabase db, String table) {
        try (Connection c = db.dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + table);
            if (db == TestDatabase.POSTGRES) {
                String prefix = table.replace("\"", "").toLowerCase(Locale.ROOT);
                List<String> functions = new ArrayList<>();
                try (ResultSet rs = s.executeQuery("SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n"
                        + " ON n.oid = p.pronamespace WHERE n.nspname = current_schema() AND p.proname LIKE '"
                        + prefix + "\\_%'")) {
                    while (rs.next()) {
                        functions.add(rs.getString(1));
                    }
                }
                for (String f : functions) {
                    s.execute("DROP FUNCTION IF EXISTS " + f);
                }
            }
            if (!c.getAutoCommit()) {
                c.commit();
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }
}
