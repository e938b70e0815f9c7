package dev.guard.storage.tck;

import dev.guard.spi.Storage;
import java.util.ArrayList;
import java.util.List;

/** The storages a test opened, closed together after it: one failure to close does not leak the others. */
final class OpenedStorages {
    private final List<Storage> opened = new ArrayList<>();

    /** Remembers {@code storage} for {@link #closeAll()} and returns it. */
    Storage add(Storage storage) {
        opened.add(storage);
        return storage;
    }

    /** How many storages are open. */
    int size() {
        return opened.size();
    }

    /** Closes every storage, rethrowing the first failure with the others suppressed. */
    void closeAll() {
        RuntimeException failure = null;
        for (Storage s : opened) {
            try {
                s.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        opened.clear();
        if (failure != null) {
            throw failure;
        }
    }
}
