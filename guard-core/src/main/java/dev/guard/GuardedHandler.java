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
     * @throws Exception what the wrapped handler threw; the guard itself never throws here
     */
    Decision handle(M message) throws Exception;
}
