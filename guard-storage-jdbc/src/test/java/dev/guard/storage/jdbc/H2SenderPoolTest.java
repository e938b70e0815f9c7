package dev.guard.storage.jdbc;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;

/** The sender pool's sharing contract on H2 in memory: every pool gets its own JdbcStorage over one database. */
class H2SenderPoolTest extends SenderPoolContractTest {
    @Override
    protected Storage open() {
        return TestDatabase.H2.builder().build();
    }
}
