package dev.guard.storage.jdbc;

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
}
