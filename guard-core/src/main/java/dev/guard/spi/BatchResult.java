package dev.guard.spi;

import dev.guard.limit.Outcome;
import java.util.Arrays;
import java.util.Objects;

/**
 * What {@link Storage#evaluate} answers: one {@link Outcome} per step, each computed against the state as it was
 * before the batch, and whether the whole batch was admitted (and so consumed).
 */
public final class BatchResult {
    private final long[] outcomes;
    private final int firstRejected;

    private BatchResult(long[] outcomes, int firstRejected) {
        this.outcomes = outcomes;
        this.firstRejected = firstRejected;
    }

    /**
     * A result from per-step outcomes, in step order. The batch is admitted when every outcome admits.
     *
     * @throws IllegalArgumentException if {@code outcomes} is empty
     * @throws NullPointerException if {@code outcomes} is null
     */
    public static BatchResult of(long... outcomes) {
        if (Objects.requireNonNull(outcomes, "outcomes must not be null").length == 0) {
            throw new IllegalArgumentException("outcomes must not be empty");
        }
        return new BatchResult(outcomes.clone(), firstRejected(outcomes, outcomes.length));
    }

    /** The index of the first of {@code outcomes[0..size)} that rejects, or -1 when all admit. */
    static int firstRejected(long[] outcomes, int size) {
        for (int i = 0; i < size; i++) {
            if (!Outcome.isAdmitted(outcomes[i])) {
                return i;
            }
        }
        return -1;
    }

    /** The largest retry-after among {@code outcomes[0..size)}, as {@link #retryAfterMicros()} documents it. */
    static long retryAfterMicros(long[] outcomes, int size) {
        long max = 0;
        for (int i = 0; i < size; i++) {
            max = Math.max(max, Outcome.retryAfterMicros(outcomes[i]));
        }
        return max;
    }

    /** Whether every step admitted, so the batch consumed its permits. */
    public boolean admitted() {
        return firstRejected < 0;
    }

    /** The index of the first rejecting step in chain order, or -1 when the batch was admitted. */
    public int firstRejected() {
        return firstRejected;
    }

    /** The number of steps. */
    public int size() {
        return outcomes.length;
    }

    /** The outcome of step {@code index} as an {@link Outcome} value. */
    public long outcome(int index) {
        return outcomes[index];
    }

    /**
     * The wait after which every step that rejected would admit again: the largest retry-after among them; zero when
     * admitted, {@link Long#MAX_VALUE} when some step can never admit.
     */
    public long retryAfterMicros() {
        return retryAfterMicros(outcomes, outcomes.length);
    }

    /** The fewest permits that remain across the steps; meaningful when admitted. */
    public long remaining() {
        long min = Long.MAX_VALUE;
        for (long outcome : outcomes) {
            min = Math.min(min, Outcome.remaining(outcome));
        }
        return min;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BatchResult r && Arrays.equals(r.outcomes, outcomes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(outcomes);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("BatchResult[");
        for (int i = 0; i < outcomes.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(Outcome.toString(outcomes[i]));
        }
        return sb.append(']').toString();
    }
}
