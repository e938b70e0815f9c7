package dev.guard.route;

/**
 * Receives the pool's {@link PoolEvent}s (sender blocked, cooling started and ended, warm-up advanced or stepped
 * back, pool exhausted, ...).
 *
 * <p>Called synchronously on the thread that caused the event, outside the pool's locks; keep it short (hand off to a
 * queue for slow work). An exception thrown by a listener is logged and swallowed: it never breaks routing.
 * Implementations must be thread-safe when the pool is used by several threads.
 */
@FunctionalInterface
public interface PoolListener {
    /** Handles one event. */
    void onEvent(PoolEvent event);
}
