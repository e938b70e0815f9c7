package dev.guard.examples;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.StorageContractTest;

/**
 * The storage contract suite run against {@link KeyValueStorage}, a storage written from the SPI's Javadoc the way a
 * third party would write one: the suite keeps those docs honest.
 */
class ThirdPartyStorageTest extends StorageContractTest {
    /** One store per test, shared by every client the test opens. */
    private final KeyValueStorage.Server server = new KeyValueStorage.Server();

    @Override
    protected Storage open() {
        return new KeyValueStorage(server);
    }
}
