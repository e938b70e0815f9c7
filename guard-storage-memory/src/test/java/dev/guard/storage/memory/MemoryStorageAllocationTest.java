package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Paths on existing keys that allocate nothing, measured by the JVM's per-thread counter. */
class MemoryStorageAllocationTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    private final MemoryStorage storage = MemoryStorage.create();

    private static long allocatedBytes() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }

    /**
     * Asserts that {@code allocated} bytes, what the last round of {@code calls} storage calls allocated, are fewer
     * than one per call: a path that allocates does so on every call, 16 bytes or more each. Not zero: runs beside
     * other builds saw a few hundred bytes in a round (152 and 344) that no path of the storage allocates per call,
     * at moments that depend on the machine's load; most likely the JVM's own (objects that compiled code kept in
     * registers, rebuilt when that code is dropped), not proven.
     */
    private static void assertAllocatesNothingPerCall(long allocated, long calls, String what) {
        long before = allocatedBytes();
        long reading = allocatedBytes() - before;
        assertThat(allocated - reading)
                .as("bytes allocated by %,d %s", calls, what)
                .isLessThan(calls);
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
        assertAllocatesNothingPerCall(allocated, 200_000, "acquires");
        assertThat(sink).isNotZero();
    }

    @Test
    void logsCommittedAfterTheirWindow_allocateNothing() {
        // A user who writes less often than the windows: every commit finds the log's entries gone. The user's
        // registration lives for ever, so the subject's entry never needs renewing.
        storage.addMember(new StateKey("registered", "user-1"), Long.MAX_VALUE, T0);
        List<LimitSpec> specs =
                List.of(new DuplicateWindow(Duration.ofMillis(1), 8), new SlidingWindowLog(3, Duration.ofMillis(1)));
        StateKey[] keys = {new StateKey("duplicates", "user-1"), new StateKey("per-minute", "user-1")};
        long now = T0;
        long admitted = 0;
        long allocated = -1;
        for (int round = 0; round < 3; round++) {
            // As above: the last round is measured.
            long before = allocatedBytes();
            for (int i = 0; i < 20_000; i++) {
                now += 2_000;
                admitted += Outcome.isAdmitted(storage.acquire(keys[0], specs.get(0), i & 7, now)) ? 1 : 0;
                admitted += Outcome.isAdmitted(storage.acquire(keys[1], specs.get(1), 1, now)) ? 1 : 0;
            }
            allocated = allocatedBytes() - before;
        }
        assertAllocatesNothingPerCall(allocated, 40_000, "commits on expired logs");
        assertThat(admitted).isEqualTo(3 * 40_000);
    }
}
