package dev.guard.route;

/**
 * Receives the pool's {@link PoolEvent}s (sender blocked, cooling started and ended, warm-up advanced or stepped
 * back, pool exhausted, ...).
 *
 * <p>Called synchronously and outside the pool's locks, on the thread that caused the event or on one handing over an
 * earlier event of the same sender (see below); keep it short (hand off to a queue for slow work). Whatever a listener
 * throws but an {@link Error} (a {@link RuntimeException}, a checked exception thrown undeclared, as Kotlin code
 * does, or a bare {@link Throwable}) is logged and swallowed: it never breaks routing. An {@code Error} is not
 * caught: it reaches the thread that handed the event over, and the sender's events after it wait until the pool
 * hands its events over again (at its next change). Implementations must be thread-safe when the pool is used by
 * several threads.
 *
 * <p>The events of a sender's status, warm-up stage and ejection come in the order of the changes they tell of, one
 * at a time: while a thread hands them to the listeners, another thread's event of the same sender waits in a queue,
 * and the first thread hands it over next (perhaps after the call that caused it has returned).
 */
@FunctionalInterface
public interface PoolListener {
    /** Handles one event. */
    void onEvent(PoolEvent event);
}
