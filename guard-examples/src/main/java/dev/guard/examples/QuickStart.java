package dev.guard.examples;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.GuardedHandler;
import dev.guard.KeyBy;
import dev.guard.storage.memory.MemoryStorage;
import java.time.Duration;

/** The README's first example, compiled and run here so that it cannot rot. */
public final class QuickStart {
    private QuickStart() {}

    /** Builds the guard of the README, runs two updates through it, and prints the decisions. */
    public static void main(String[] args) throws Exception {
        // README:quickstart:begin
        Guard<Update> guard = Guard.<Update>builder()
                .storage(MemoryStorage.create())
                .userId(Update::userId)
                .chatId(Update::chatId)
                .filter("no-bots", update -> !update.fromBot())
                .blocklist()
                .duplicates(Duration.ofSeconds(2), Update::text)
                .throttle("per-chat", KeyBy.CHAT, 20, Duration.ofMinutes(1))
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .slidingWindow("per-user-minute", KeyBy.USER, 30, Duration.ofMinutes(1))
                .rejectNotice(
                        Duration.ofSeconds(30),
                        (update, decision) -> System.out.println(
                                decision.retryAfter().equals(Decision.NEVER) // blocked for good: waiting does not help
                                        ? "to " + update.userId() + ": not allowed (" + decision.reason() + ")"
                                        : "to " + update.userId() + ": slow down, try again in "
                                                + decision.retryAfterSeconds() + " s"))
                .build();

        GuardedHandler<Update> handler = guard.wrap(update -> System.out.println("handled: " + update.text()));

        Decision first = handler.handle(Update.text(42, 42, "/start"));
        Decision copy = handler.handle(Update.text(42, 42, "/start")); // rejected: DUPLICATE
        // README:quickstart:end
        System.out.println(first);
        System.out.println(copy);
    }
}
