package dev.guard;

/**
 * A bot's message handler, as {@link Guard#wrap} takes it.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface Handler<M> {
    /** Handles one message. */
    void handle(M message) throws Exception;
}
