package dev.guard.storage.memory;

import java.util.concurrent.CountDownLatch;

/** Waits of the race tests' threads, which are never interrupted: an interrupt fails the test at once. */
final class Uninterrupted {
    private Uninterrupted() {}

    static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
