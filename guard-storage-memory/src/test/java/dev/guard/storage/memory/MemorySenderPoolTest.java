package dev.guard.storage.memory;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;

/** The sender pool's sharing contract on one MemoryStorage shared by every pool (pools of one process). */
class MemorySenderPoolTest extends SenderPoolContractTest {
    private final MemoryStorage shared = MemoryStorage.create();

    @Override
    protected Storage open() {
        return shared;
    }
}
