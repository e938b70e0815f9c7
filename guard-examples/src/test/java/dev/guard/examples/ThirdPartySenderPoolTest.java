package dev.guard.examples;

import dev.guard.spi.Storage;
import dev.guard.storage.tck.SenderPoolContractTest;

/** The sender pool's contract suite run against {@link KeyValueStorage}: two pools over two clients of one store. */
class ThirdPartySenderPoolTest extends SenderPoolContractTest {
    /** One store per test, shared by every client the test opens. */
    private final KeyValueStorage.Server server = new KeyValueStorage.Server();

    @Override
    protected Storage open() {
        return new KeyValueStorage(server);
    }
}
