package dev.guard.internal;

/**
 * What Guard does with an {@link InterruptedException} that code of the bot's (a handler, a filter, a listener, a
 * storage of its own, a sender pool's listener) let through undeclared, as Kotlin code does, where Guard catches
 * whatever such code throws.
 */
public final class Interrupts {
    private Interrupts() {}

    /**
     * Sets the current thread's interrupt status again if {@code thrown} is an {@link InterruptedException}: throwing
     * one cleared it, and Guard, which goes on instead of rethrowing, must not hide from the code that runs the thread
     * (an executor shut down with {@code shutdownNow()}, a task cancelled) that it was asked to stop.
     */
    public static void keep(Throwable thrown) {
        if (thrown instanceof InterruptedException) {
            Thread.currentThread().interrupt();
        }
    }
}
