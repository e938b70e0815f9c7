package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The schema version that {@link JdbcStorage#SCHEMA_VERSION} names and the DDL records: pinned to the DDL's text, so
 * that the DDL cannot change without the version, and read back from a table's comment.
 */
class SchemaVersionTest {
    /**
     * The SHA-256 of the DDL's statements ({@link #statementsHash()}) at each schema version. A version that was
     * released keeps its hash forever: a change of the DDL is a new version.
     */
    private static final Map<Integer, String> PINNED =
            Map.of(1, "b236723be3b8020873d7f4fb7b7378569d8a3b180cee2688acc8d91498e3a37d");

    private static final List<String> FILES = List.of("h2.sql", "mariadb.sql", "postgresql.sql");

    @Test
    void ddl_unchangedSinceItsVersionWasPinned() throws NoSuchAlgorithmException {
        int version = JdbcStorage.SCHEMA_VERSION;
        String hash = statementsHash();
        assertThat(hash)
                .as(
                        "The schema DDL (%s) hashes to %s, not to the hash pinned for schema version %d. If you"
                                + " changed what it installs (a table, a column, an index, a function's body or"
                                + " signature), users must run it again: bump JdbcStorage.SCHEMA_VERSION to %d, write"
                                + " 'Guard schema version %d' in the statement that records the version in each of the"
                                + " three files, run this test again and pin %d -> the hash it then prints in"
                                + " SchemaVersionTest.PINNED, keeping the older versions' hashes as they are. Comments"
                                + " and whitespace do not count here: a change to them alone needs no new version.",
                        String.join(", ", FILES), hash, version, version + 1, version + 1, version + 1)
                .isEqualTo(PINNED.get(version));
        assertThat(version)
                .as("SCHEMA_VERSION is the newest pinned version")
                .isEqualTo(Collections.max(PINNED.keySet()));
    }

    @Test
    void ddl_everyFileRecordsTheVersionInTheTablesComment() {
        for (String file : FILES) {
            assertThat(TableSql.resource(file))
                    .as(file)
                    .contains("'Guard schema version " + JdbcStorage.SCHEMA_VERSION + "'");
        }
    }

    @Test
    void version_fromTheTablesComment_readsOnlyGuardsMarker() {
        assertThat(TableSql.schemaVersion("Guard schema version 1")).isEqualTo(1);
        assertThat(TableSql.schemaVersion("Guard schema version 27")).isEqualTo(27);
        assertThat(TableSql.schemaVersion("Guard schema version 3: a later one explains more"))
                .isEqualTo(3);
        assertThat(TableSql.schemaVersion("Guard schema version 0")).isZero();
        assertThat(TableSql.schemaVersion("Guard schema version 12a")).isZero();
        assertThat(TableSql.schemaVersion("old Guard schema version 1")).isZero();
        assertThat(TableSql.schemaVersion(null)).isZero();
        assertThat(TableSql.schemaVersion("")).isZero();
        assertThat(TableSql.schemaVersion("rate limits of the bot")).isZero();
        assertThat(TableSql.schemaVersion("Guard schema version x")).isZero();
        assertThat(TableSql.schemaVersion("Guard schema version 99999999999999999999"))
                .isZero();
    }

    @Test
    void mismatch_olderSchema_namesBothVersionsAndTheFix() {
        assertThat(JdbcStorage.schemaMismatch(JdbcDialect.POSTGRESQL, "bot_limits", 2, 2))
                .isNull();
        assertThat(JdbcStorage.schemaMismatch(JdbcDialect.POSTGRESQL, "bot_limits", 1, 2))
                .isEqualTo("postgresql table bot_limits has schema version 1, this Guard needs version 2: run"
                        + " createSchema() or postgresql.sql again");
        assertThat(JdbcStorage.schemaMismatch(JdbcDialect.MYSQL, "bot_limits", 0, 2))
                .isEqualTo("mysql table bot_limits has no schema version (a schema from before versions), this"
                        + " Guard needs version 2: run createSchema() or mariadb.sql again");
    }

    /**
     * The SHA-256 of the three files' statements without their comments and with whitespace collapsed: what the
     * files install, not how they explain it.
     */
    private static String statementsHash() throws NoSuchAlgorithmException {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (String file : FILES) {
            String statements = TableSql.resource(file)
                    .replaceAll("--[^\n]*", " ")
                    .replaceAll("\\s+", " ")
                    .strip();
            sha.update((file + "\n" + statements + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return HexFormat.of().formatHex(sha.digest());
    }
}
