package dev.guard;

/**
 * A custom, local filter: a predicate over the message, run in the caller's thread before the storage call, in the
 * order the filters were added. Rejections carry {@link Reason#CUSTOM} and the filter's name. Implementations must
 * be thread-safe and cheap; a filter that throws counts as a rejection and is logged.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface Filter<M> {
    /** Whether {@code message} may pass. */
    boolean allows(M message);
}
