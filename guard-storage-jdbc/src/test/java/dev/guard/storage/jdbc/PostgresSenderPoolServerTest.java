package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;

/**
 * The sender pool's sharing contract on a real PostgreSQL (GUARD_POSTGRES_URL): every pool gets its own JdbcStorage
 * over one database.
 */
class PostgresSenderPoolServerTest extends SenderPoolContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.POSTGRES.builder().build();
    }
}
