package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/**
 * The storage contract suite on a real MariaDB (GUARD_MARIADB_URL); every client is a new JdbcStorage over the shared
 * pool.
 */
class MariaDbContractServerTest extends StorageContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.MARIADB.builder().build();
    }
}
