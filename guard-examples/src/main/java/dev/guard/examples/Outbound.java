package dev.guard.examples;

import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.SendDecision;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.route.WarmUpSchedule;
import dev.guard.spi.Storage;
import java.time.Duration;

/** The README's example of the sender pool, compiled here so that it cannot rot ({@code ReadmeTest} runs it). */
public final class Outbound {
    private Outbound() {}

    /** Builds the README's pool over {@code storage} and sends one message to {@code chatId} through it. */
    public static SendDecision send(Storage storage, long chatId) {
        // README:outbound:begin
        SenderPool pool = SenderPool.builder(storage) // the guard's storage will do; MemoryStorage for one process
                .preset(PlatformPreset.telegram()) // the default
                .sender(Sender.of("bot-a"))
                .sender(Sender.builder("bot-new")
                        .warmUp(WarmUpSchedule.sendGrid())
                        .build())
                .build();

        SendDecision decision = pool.acquire(OutboundMessage.to(chatId)); // a Telegram chat id, or its text
        if (decision instanceof SendDecision.Granted granted) {
            // Send through the bot whose id is granted.sender(), then report what the platform answered:
            granted.delivered(Duration.ofMillis(40)); // or retryAfter(...) on a 429, failed(cause), blocked(), ...
        } else if (decision instanceof SendDecision.Delayed delayed) {
            // Nothing was consumed: acquire again after delayed.retryAfter() (rounded up, never down).
        } else if (decision instanceof SendDecision.Rejected rejected) {
            // No sender will take it without a change: rejected.reason() and rejected.detail() say why.
        }
        // README:outbound:end
        return decision;
    }
}
