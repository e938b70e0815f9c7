package dev.guard.storage.jdbc;

/**
 * The JDBC suite with the MySQL dialect, run on MariaDB (which speaks MySQL's SQL too): no {@code RETURNING}, so
 * the locked rows are read by one more statement. No MySQL server runs in this project's CI; this proves the path.
 */
class MariaDbAsMySqlJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.MARIADB;
    }

    @Override
    JdbcStorage.Builder configure(JdbcStorage.Builder builder) {
        return builder.dialect(JdbcDialect.MYSQL);
    }

    @Override
    int roundTripsPerDecision() {
        return 4;
    }
}
