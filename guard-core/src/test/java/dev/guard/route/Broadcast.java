package dev.guard.route;

import static org.assertj.core.api.Assertions.fail;

import dev.guard.ManualTicker;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;

/**
 * Drives messages through a pool and a {@link SimulatedPlatform} the way a bot would: acquire, send through the
 * granted sender, report the platform's answer, and on a delay move the manual clock to the time the pool named.
 * Every message is eventually delivered or the test fails.
 */
final class Broadcast {
    private static final int MAX_TRIES_PER_MESSAGE = 1_000;

    private final SenderPool pool;
    private final SimulatedPlatform platform;
    private final ManualTicker ticker;
    private final Map<String, Integer> delivered = new LinkedHashMap<>();
    private IntConsumer beforeMessage = i -> {};
    private int delays;

    Broadcast(SenderPool pool, SimulatedPlatform platform, ManualTicker ticker) {
        this.pool = pool;
        this.platform = platform;
        this.ticker = ticker;
    }

    /** Runs {@code hook} with the index of each message before it is first acquired. */
    Broadcast beforeMessage(IntConsumer hook) {
        this.beforeMessage = hook;
        return this;
    }

    /** Delivers messages {@code from} (inclusive) to {@code to} (exclusive). */
    Broadcast run(int from, int to, IntFunction<OutboundMessage> message) {
        for (int i = from; i < to; i++) {
            beforeMessage.accept(i);
            OutboundMessage m = message.apply(i);
            deliver(m, i);
        }
        return this;
    }

    private void deliver(OutboundMessage m, int index) {
        for (int tries = 0; tries < MAX_TRIES_PER_MESSAGE; tries++) {
            SendDecision d = pool.acquire(m);
            if (d instanceof SendDecision.Granted g) {
                SimulatedPlatform.Response r = platform.send(g.sender(), m.chat(), m.kind());
                if (r.status() == 200) {
                    g.delivered(Duration.ofMillis(40));
                    delivered.merge(g.sender(), 1, Integer::sum);
                    return;
                }
                if (r.status() == 429) {
                    g.retryAfter(Duration.ofSeconds(r.retryAfterSeconds()));
                } else {
                    g.blocked();
                }
            } else if (d instanceof SendDecision.Delayed later) {
                delays++;
                ticker.advanceMicros(Math.max(1, SenderPool.micros(later.retryAfter())));
            } else {
                fail("message " + index + " was rejected: " + d);
            }
        }
        fail("message " + index + " was not delivered after " + MAX_TRIES_PER_MESSAGE + " tries");
    }

    Map<String, Integer> delivered() {
        return delivered;
    }

    int delivered(String sender) {
        return delivered.getOrDefault(sender, 0);
    }

    int delays() {
        return delays;
    }
}
