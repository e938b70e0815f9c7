package dev.guard.examples;

import dev.guard.spi.Storage;
import dev.guard.storage.memory.MemoryStorage;

/** Opens the storage the demo's {@code --storage} option names. */
final class Storages {
    private Storages() {}

    /**
     * {@code memory} (the default), a {@code redis://} URI or a {@code jdbc:} URL.
     *
     * @throws IllegalArgumentException for anything else
     */
    static Storage open(String spec) {
        if (spec.equals("memory")) {
            return MemoryStorage.create();
        }
        throw new IllegalArgumentException(
                "--storage must be memory, a redis:// URI or a jdbc: URL but was '" + spec + "'");
    }
}
