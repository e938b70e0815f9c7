package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A key converted between two kinds of holder while another thread removes it from its subject's group: the
 * conversion's caller finds the key gone and must look it up again, not fail.
 */
class MemoryStorageConversionRaceTest {
    @Test
    void conversionRacingTheKeysRemoval_neverFails() throws InterruptedException {
        long now = ManualTicker.create().epochMicros();
        MemoryStorage storage = MemoryStorage.create();
        StateKey key = new StateKey("limit", "u");
        // Another key of the subject, so that its keys live in one group.
        storage.putRecord(new StateKey("profile", "u"), new byte[] {1}, 0);
        // The same key under other parameters: every second step converts it.
        TokenBucket a = new TokenBucket(5, 1, Duration.ofSeconds(1));
        TokenBucket b = new TokenBucket(7, 1, Duration.ofSeconds(1));
        AtomicBoolean stop = new AtomicBoolean();
        Thread remover = new Thread(() -> {
            while (!stop.get()) {
                storage.removeMember(key);
            }
        });
        remover.start();
        Throwable failure = null;
        int steps = 0;
        try {
            // Before the fix, this failed with a NullPointerException within about a million steps, every run.
            for (; steps < 2_000_000 && failure == null; steps++) {
                try {
                    // Drained or refilled by the removals, either outcome is right: what must not happen is a throw.
                    storage.acquire(key, a, 1, now);
                    storage.acquire(key, b, 1, now);
                } catch (RuntimeException e) {
                    failure = e;
                }
            }
        } finally {
            stop.set(true);
            remover.join();
        }
        assertThat(failure).as("after %d steps", steps).isNull();
    }
}
