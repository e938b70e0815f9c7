package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The sync {@code acquire} path on an existing key allocates nothing, measured by the JVM's per-thread counter. */
class MemoryStorageAllocationTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    private final MemoryStorage storage = MemoryStorage.create();

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    @Test
    void acquire_existingKey_allocatesNothing() {
        List<LimitSpec> specs = List.of(
                new TokenBucket(1_000, 1_000, Duration.ofSeconds(1)),
                new FixedWindow(1_000_000, Duration.ofSeconds(1)),
                new Cooldown(Duration.ofMillis(1)),
                Membership.MUST_BE_ABSENT);
        StateKey[] keys = new StateKey[specs.size()];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = new StateKey("limit-" + i, "user-1");
        }
        storage.addMember(keys[3], Long.MAX_VALUE, T0);
        long now = T0;
        long sink = 0;
        long allocated = -1;
        for (int round = 0; round < 3; round++) {
            // The first rounds warm up (class loading, the cache's buffers); the last one is measured.
            long before = allocatedBytes();
            for (int i = 0; i < 50_000; i++) {
                now += 7;
                for (int k = 0; k < keys.length; k++) {
                    sink += storage.acquire(keys[k], specs.get(k), 1, now);
                }
            }
            allocated = allocatedBytes() - before;
        }
        // Reading the counter allocates a little itself: subtract what two reads in a row cost.
        long before = allocatedBytes();
        long measuring = allocatedBytes() - before;
        assertThat(allocated - measuring)
                .as("bytes allocated by 200,000 acquires")
                .isZero();
        assertThat(sink).isNotZero();
    }
}
