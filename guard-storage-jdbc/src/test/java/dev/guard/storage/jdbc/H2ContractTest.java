package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/** The storage contract suite on embedded H2; every client is a new JdbcStorage over the shared pool. */
class H2ContractTest extends StorageContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.H2.builder().build();
    }
}
