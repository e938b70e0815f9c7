package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Cooldown;
import dev.guard.spi.Batch;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.StorageHealth;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/** The JDBC suite on a real PostgreSQL ({@code GUARD_POSTGRES_URL}): one statement per decision, two for a single bucket's first touch or rejection. */
class PostgresJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    int roundTripsPerDecision() {
        return 1;
    }

    /** The plain UPDATE that found nothing to admit, then the upsert that decides. */
    @Override
    int roundTripsPerBucketMiss() {
        return 2;
    }

    /**
     * createSchema() creates the subject index where it is missing, in the table's schema, as CREATE INDEX IF NOT
     * EXISTS does: a relation of the index's name in another schema is not the index.
     */
    @Test
    void createSchema_indexMissing_createsItInTheTablesSchema() throws SQLException {
        String table = "guard_index_test";
        try (JdbcStorage storage = database().builder(table).build();
                Connection c = database().dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute("CREATE SCHEMA IF NOT EXISTS guard_elsewhere");
            s.execute("CREATE TABLE IF NOT EXISTS guard_elsewhere." + table + "_subject (id int)");
            s.execute("DROP INDEX " + table + "_subject");
            assertThat(subjectIndexes(s, table)).isZero();

            try {
                storage.createSchema();
                assertThat(subjectIndexes(s, table)).isOne();
                storage.createSchema();
                assertThat(subjectIndexes(s, table)).isOne();
            } finally {
                s.execute("DROP SCHEMA guard_elsewhere CASCADE");
            }
        }
    }

    /** The indexes named {@code <table>_subject} on {@code table} in the current schema: 0 or 1. */
    private static int subjectIndexes(Statement s, String table) throws SQLException {
        try (ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()"
                + " AND tablename = '" + table + "' AND indexname = '" + table + "_subject'")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * A table whose evaluate function is missing (an upgrade that did not run the schema again, or a migration that
     * copied the table alone) fails every chain: health says so, until createSchema() installs the function. Without
     * the stored function the same table is healthy.
     */
    @Test
    void health_evaluateFunctionMissing_isDownUntilCreateSchema() throws SQLException {
        String table = "guard_health_function_test";
        try (JdbcStorage storage = database().builder(table).build();
                JdbcStorage javaPath =
                        database().builder(table).storedFunction(false).build()) {
            storage.createSchema();
            try (Connection c = database().dataSource().getConnection();
                    Statement s = c.createStatement()) {
                s.execute("DROP FUNCTION " + table + "_evaluate(bytea[], bytea[], text[], text[], int[], bigint[],"
                        + " int[], bigint[], boolean, int)");
                if (!c.getAutoCommit()) {
                    c.commit();
                }
            }
            Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
            String scope = "health-chain-" + UUID.randomUUID();
            Batch chain = Batch.of(
                    new Step(new StateKey(scope, "a"), cooldown, 1), new Step(new StateKey(scope, "b"), cooldown, 1));
            assertThatThrownBy(() -> storage.evaluate(chain, 1_000_000)).isInstanceOf(GuardStorageException.class);

            StorageHealth health = storage.health();
            assertThat(health.up()).as("health without the evaluate function").isFalse();
            assertThat(health.detail())
                    .startsWith("jdbc health failed: postgresql sqlstate 42883: ")
                    .contains(table + "_evaluate");
            assertThat(javaPath.health().up())
                    .as("the Java path needs no function")
                    .isTrue();

            storage.createSchema();
            assertThat(storage.health().up()).isTrue();
            assertThat(storage.evaluate(chain, 1_000_000).admitted()).isTrue();
        }
    }
}
