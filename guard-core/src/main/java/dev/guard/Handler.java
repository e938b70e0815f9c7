package dev.guard;

/**
 * A bot's message handler, as {@link Guard#wrap} takes it.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface Handler<M> {
    /**
     * Handles one message.
     *
     * @throws Exception whatever the bot's handling throws; the {@link GuardedHandler} that {@link Guard#wrap} makes
     *     rethrows it
     */
    void handle(M message) throws Exception;
}
