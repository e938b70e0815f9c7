package dev.guard.spi;

import java.util.List;
import java.util.Objects;

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
     * @throws NullPointerException if {@code steps} or one of them is null, naming it ({@code step 0 must not be
     *     null})
     */
    public Batch {
        Objects.requireNonNull(steps, "steps must not be null");
        try {
            steps = List.copyOf(steps);
        } catch (NullPointerException e) {
            throw nullStep(steps.toArray(), e);
        }
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

    /**
     * A batch of the given steps.
     *
     * @throws IllegalArgumentException if there are none or they name one key twice
     * @throws NullPointerException if {@code steps} or one of them is null, naming it
     */
    public static Batch of(Step... steps) {
        Objects.requireNonNull(steps, "steps must not be null");
        List<Step> list;
        try {
            list = List.of(steps);
        } catch (NullPointerException e) {
            throw nullStep(steps, e);
        }
        return new Batch(list);
    }

    /**
     * The error for a null among {@code steps}, which a copy refused without naming it: looked for only then, so that
     * a batch without one pays nothing. {@code cause} itself if there is none (the list failed otherwise).
     */
    private static NullPointerException nullStep(Object[] steps, NullPointerException cause) {
        for (int i = 0; i < steps.length; i++) {
            if (steps[i] == null) {
                return new NullPointerException("step " + i + " must not be null");
            }
        }
        return cause;
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
