package dev.guard.spi;

import dev.guard.limit.LimitSpec;
import java.util.Objects;

/**
 * One step of a {@link Batch}: take {@code permits} from the limit {@code spec} at {@code key}.
 *
 * @param key where the state lives
 * @param spec the limit and its semantics
 * @param permits how many permits to take (zero only looks); for a {@link dev.guard.limit.DuplicateWindow}, the item
 *     (a content fingerprint in {@code [0, 2^53)}), which zero is like any other
 */
public record Step(StateKey key, LimitSpec spec, long permits) {
    /**
     * Creates a step.
     *
     * @throws IllegalArgumentException if {@code permits} is negative
     * @throws NullPointerException if {@code key} or {@code spec} is null
     */
    public Step {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(spec, "spec must not be null");
        if (permits < 0) {
            throw new IllegalArgumentException("permits must not be negative but was " + permits);
        }
    }
}
