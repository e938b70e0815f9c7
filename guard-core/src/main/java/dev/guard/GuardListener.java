package dev.guard;

/**
 * Observes every decision, for metrics and logs. Runs in the thread that made the decision, after it; must be
 * thread-safe and cheap. A listener that throws is logged and ignored, whatever it throws but an {@link Error}.
 *
 * @param <M> the bot's update type
 */
@FunctionalInterface
public interface GuardListener<M> {
    /**
     * Called once per checked message.
     *
     * @param message the message
     * @param decision the decision
     * @param nanos how long the decision took, from {@link System#nanoTime()}: from the call of {@code check} (or
     *     {@code checkAsync}) until the decision was made, before the reject listeners and the reject notice ran
     */
    void onDecision(M message, Decision decision, long nanos);
}
