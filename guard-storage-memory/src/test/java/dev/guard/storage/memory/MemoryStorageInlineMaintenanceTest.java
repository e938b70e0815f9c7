package dev.guard.storage.memory;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/**
 * The contract suite on a memory storage whose cache maintenance (eviction) runs on the calling threads, after every
 * operation that asks for it, so that eviction races every decision of the suite.
 */
class MemoryStorageInlineMaintenanceTest extends StorageContractTest {
    private final MemoryStorage shared =
            MemoryStorage.builder().executor(Runnable::run).build();

    @Override
    protected Storage open() {
        return shared;
    }

    @Override
    protected void maintain(Storage storage, long nowMicros) {
        ((MemoryStorage) storage).cleanUp(nowMicros);
    }
}
