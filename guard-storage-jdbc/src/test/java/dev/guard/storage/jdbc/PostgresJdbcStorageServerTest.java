package dev.guard.storage.jdbc;

/** The JDBC suite on a real PostgreSQL ({@code GUARD_POSTGRES_URL}): one function call per decision. */
class PostgresJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    int roundTripsPerDecision() {
        return 1;
    }
}
