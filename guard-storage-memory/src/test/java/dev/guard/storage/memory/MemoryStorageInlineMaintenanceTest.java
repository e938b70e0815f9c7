package dev.guard.storage.memory;

/**
 * The contract suite on a memory storage whose cache maintenance (eviction) runs on the calling threads, after every
 * operation that asks for it, so that eviction races every decision of the suite.
 */
class MemoryStorageInlineMaintenanceTest extends MemoryStorageTest {
    @Override
    MemoryStorage newStorage() {
        return MemoryStorage.builder().executor(Runnable::run).build();
    }
}
