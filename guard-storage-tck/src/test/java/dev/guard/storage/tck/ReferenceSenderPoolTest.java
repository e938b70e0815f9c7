package dev.guard.storage.tck;

import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.Storage;

/** The sender pool's sharing contract on the reference model: proves the contract itself. */
class ReferenceSenderPoolTest extends SenderPoolContractTest {
    private final ReferenceStorage shared = ReferenceStorage.create();

    @Override
    protected Storage open() {
        return shared;
    }
}
