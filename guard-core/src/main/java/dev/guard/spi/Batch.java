package dev.guard.spi;

import java.util.List;

/**
 * The stateful steps of one decision, evaluated by {@link Storage#evaluate} atomically and all-or-nothing: either
 * every step admits and every step consumes, or nothing changes. Keys are distinct within a batch.
 *
 * @param steps the steps in chain order; the first rejecting step is the one a decision reports
 */
public record Batch(List<Step> steps) {
    /**
     * Creates a batch.
     *
     * @throws IllegalArgumentException if {@code steps} is empty or names one key twice
     */
    public Batch {
        steps = List.copyOf(steps);
        if (steps.isEmpty()) {
            throw new IllegalArgumentException("steps must not be empty");
        }
        // Chains are short: pairwise comparison beats hashing into a fresh set on the per-message path.
        for (int i = 1; i < steps.size(); i++) {
            StateKey key = steps.get(i).key();
            int hash = key.hashCode();
            for (int j = 0; j < i; j++) {
                StateKey other = steps.get(j).key();
                if (other.hashCode() == hash && other.equals(key)) {
                    throw new IllegalArgumentException("key " + key + " appears twice in one batch");
                }
            }
        }
    }

    /** A batch of the given steps. */
    public static Batch of(Step... steps) {
        return new Batch(List.of(steps));
    }

    /** The number of steps. */
    public int size() {
        return steps.size();
    }

    /** The step at {@code index}. */
    public Step step(int index) {
        return steps.get(index);
    }
}
