package dev.guard.storage.tck;

import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.Storage;

/**
 * Runs the contract suite against the reference model itself: proves the suite's hand-computed expectations. Every
 * {@link #open()} answers the same instance, because clients of one backend must share its state.
 */
class ReferenceStorageContractTest extends StorageContractTest {
    private final ReferenceStorage shared = ReferenceStorage.create();

    @Override
    protected Storage open() {
        return shared;
    }
}
