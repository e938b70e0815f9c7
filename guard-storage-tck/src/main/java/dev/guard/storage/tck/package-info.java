/**
 * The storage contract suite: {@link dev.guard.storage.tck.StorageContractTest}, an abstract JUnit 5 class that a
 * {@link dev.guard.spi.Storage} backend's test extends, {@link dev.guard.storage.tck.SenderPoolContractTest}, which a
 * second test extends the same way to prove that two sender pools over two clients of the backend share their state,
 * and {@link dev.guard.storage.tck.RequiredServer} for tests that need a real server. Published as a normal jar so that
 * third parties can prove their own backends: guard-examples' {@code ThirdPartyStorageTest} is one, a storage written
 * from the SPI's Javadoc alone.
 *
 * <p>Why the suite is shaped this way: every expected value is computed by hand in the test (the reference is only
 * the other side of the differential test, never the source of an expectation); every test works under a fresh
 * random namespace so that one server can serve many concurrent runs without cleanup; time is always passed
 * explicitly; and sizes that cost round trips (races, differential histories) are hooks a remote backend may lower.
 */
package dev.guard.storage.tck;
