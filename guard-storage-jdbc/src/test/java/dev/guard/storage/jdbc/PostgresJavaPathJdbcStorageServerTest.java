package dev.guard.storage.jdbc;

/**
 * The JDBC suite on a real PostgreSQL without the stored function: decisions evaluated in Java between the locking
 * insert and the write, as on the other databases. Pool in auto-commit, so the switch costs two more calls (which
 * pgjdbc does not send to the server: its BEGIN rides along with the first statement).
 */
class PostgresJavaPathJdbcStorageServerTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.POSTGRES;
    }

    @Override
    JdbcStorage.Builder configure(JdbcStorage.Builder builder) {
        return builder.storedFunction(false);
    }

    @Override
    int roundTripsPerDecision() {
        return 5;
    }
}
