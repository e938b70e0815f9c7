package dev.guard.storage.memory;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/** The contract suite on the memory storage; every client of one test shares one instance. */
class MemoryStorageTest extends StorageContractTest {
    private final MemoryStorage shared = MemoryStorage.create();

    @Override
    protected Storage open() {
        return shared;
    }

    @Override
    protected void maintain(Storage storage, long nowMicros) {
        ((MemoryStorage) storage).cleanUp(nowMicros);
    }
}
