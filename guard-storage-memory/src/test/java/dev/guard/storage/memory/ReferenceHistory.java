package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.spi.ReferenceStorage;
import java.util.Random;

/**
 * A seeded random history played on a memory storage and on the reference side by side: what every such test keeps
 * (the seed, its random numbers, both storages, the clock, the step) and the check that names them all on a failure,
 * so that the same seed repeats it.
 */
abstract class ReferenceHistory {
    final long seed;
    final Random random;
    final MemoryStorage storage;
    final ReferenceStorage reference = ReferenceStorage.create();
    long now;
    int step;

    /** A history of {@code seed} on a storage of the defaults, from {@code startMicros}. */
    ReferenceHistory(long seed, long startMicros) {
        this(seed, startMicros, MemoryStorage.create());
    }

    /** A history of {@code seed} on {@code storage}, from {@code startMicros}. */
    ReferenceHistory(long seed, long startMicros, MemoryStorage storage) {
        this.seed = seed;
        this.storage = storage;
        this.random = new Random(seed);
        this.now = startMicros;
    }

    /** Asserts that the memory storage's {@code actual} answer is the reference's {@code expected}. */
    final void check(String what, Object actual, Object expected) {
        assertThat(actual)
                .as("seed %d, step %d, now %d: %s", seed, step, now, what)
                .isEqualTo(expected);
    }
}
