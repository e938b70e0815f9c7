package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
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

    /** What {@link #gateOrSet} does: raise a gate. */
    static final int RAISE = 0;

    /** What {@link #gateOrSet} does: add a member. */
    static final int ADD = 1;

    /** What {@link #gateOrSet} does: read a membership, then remove it. */
    static final int READ_AND_REMOVE = 2;

    /**
     * On both sides, {@code what} to {@code key}: {@link #RAISE} its gate until {@code deadline}, {@link #ADD} it as a
     * member until then, or {@link #READ_AND_REMOVE} its membership; every answer compared.
     */
    final void gateOrSet(int what, StateKey key, long deadline) {
        switch (what) {
            case RAISE ->
                check("raiseGate", storage.raiseGate(key, deadline, now), reference.raiseGate(key, deadline, now));
            case ADD -> {
                storage.addMember(key, deadline, now);
                reference.addMember(key, deadline, now);
            }
            case READ_AND_REMOVE -> {
                check("isMember", storage.isMember(key, now), reference.isMember(key, now));
                check("removeMember", storage.removeMember(key), reference.removeMember(key));
            }
            default -> throw new IllegalArgumentException("what must be RAISE, ADD or READ_AND_REMOVE but was " + what);
        }
    }

    /** Asserts that the memory storage's {@code actual} answer is the reference's {@code expected}. */
    final void check(String what, Object actual, Object expected) {
        assertThat(actual)
                .as("seed %d, step %d, now %d: %s", seed, step, now, what)
                .isEqualTo(expected);
    }
}
