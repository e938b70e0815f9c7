package dev.guard.storage.memory;

import java.util.concurrent.ForkJoinPool;

/**
 * The contract suite on a memory storage whose cache maintenance (eviction) runs on another thread, racing every
 * decision of the suite, where the default runs it on the callers.
 */
class MemoryStorageBackgroundMaintenanceTest extends MemoryStorageTest {
    @Override
    MemoryStorage newStorage() {
        return MemoryStorage.builder().executor(ForkJoinPool.commonPool()).build();
    }
}
