package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;

/**
 * The sender pool's sharing contract on a real MariaDB (GUARD_MARIADB_URL): every pool gets its own JdbcStorage over
 * one database.
 */
class MariaDbSenderPoolServerTest extends SenderPoolContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.MARIADB.builder().build();
    }
}
