package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/**
 * The storage contract suite on a real PostgreSQL (GUARD_POSTGRES_URL), through the stored function; every client is a
 * new JdbcStorage over the shared pool.
 */
class PostgresContractServerTest extends StorageContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.POSTGRES.builder().build();
    }
}
