package dev.guard.storage.jdbc;

/** The JDBC suite on a real MariaDB ({@code GUARD_MARIADB_URL}): lock and read, write, commit. */
class MariaDbJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.MARIADB;
    }

    @Override
    int roundTripsPerDecision() {
        return 3;
    }
}
