package dev.guard.storage.jdbc;

/** The JDBC suite on embedded H2: lock and read, write, commit. */
class H2JdbcStorageTest extends JdbcStorageSuite {
    @Override
    TestDatabase database() {
        return TestDatabase.H2;
    }

    @Override
    int roundTripsPerDecision() {
        // H2 runs in-process: these are statements, not network round trips.
        return 3;
    }
}
