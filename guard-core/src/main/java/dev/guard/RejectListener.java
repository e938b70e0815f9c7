package dev.guard;

/**
 * Called when a message is rejected, with the decision, so that a bot can answer "slow down, try again in 7 s".
 * Runs in the thread that made the decision; must not block for long. A listener that throws is logged and ignored,
 * whatever it throws but an {@link Error}.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface RejectListener<M> {
    /** Called for a rejected {@code message}. */
    void onReject(M message, Decision decision);
}
