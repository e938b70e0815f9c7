package dev.guard;

/**
 * A handler behind a guard: {@link #handle} checks the message and runs the wrapped handler only when allowed.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface GuardedHandler<M> {
    /**
     * Checks {@code message} and, when allowed, runs the wrapped handler.
     *
     * @return the guard's decision
     * @throws Exception what the wrapped handler threw; the guard's own check throws only what {@link Guard#check}
     *     does (a null message, an {@link Error} from a filter, extractor or listener): a failing storage or a filter
     *     that throws an exception is a decision, not a throw
     */
    Decision handle(M message) throws Exception;
}
