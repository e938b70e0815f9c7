package dev.guard;

/**
 * A custom, local filter: a predicate over the message, run in the caller's thread before the storage call, in the
 * order the filters were added. Rejections carry {@link Reason#CUSTOM} and the filter's name. Implementations must
 * be thread-safe and cheap; a filter that throws counts as a rejection and is logged (whatever it throws: a checked
 * exception thrown undeclared or a bare {@link Throwable} too, as Kotlin code may throw), except an {@link Error},
 * which reaches the caller of the check.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface Filter<M> {
    /** Whether {@code message} may pass. */
    boolean allows(M message);
}
