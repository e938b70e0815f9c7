package dev.guard.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.FailurePolicy;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.Storage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.lang.reflect.Proxy;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class GuardMetricsTest {
    record Msg(long user) {}

    @Test
    void onDecision_countsByOutcomeReasonAndFilter() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(ReferenceStorage.create())
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 2, Duration.ofMinutes(1))
                .listener(new GuardMetrics(registry, "test-bot"))
                .build();

        for (int i = 0; i < 5; i++) {
            guard.check(new Msg(1));
        }

        assertThat(registry.get("guard.decisions")
                        .tag("outcome", "allowed")
                        .tag("guard", "test-bot")
                        .counter()
                        .count())
                .isEqualTo(2.0);
        assertThat(registry.get("guard.decisions")
                        .tag("outcome", "rejected")
                        .tag("reason", "throttled")
                        .tag("filter", "per-user")
                        .counter()
                        .count())
                .isEqualTo(3.0);
        assertThat(registry.get("guard.decision.latency").timer().count()).isEqualTo(5);
    }

    @Test
    void onDecision_decisionsMadeOnTheFallback_areTaggedDegraded() {
        // A storage that fails every call: the fallback decides, with its own limits' reasons; an operator must still
        // see that the bot runs on it.
        Storage down = (Storage) Proxy.newProxyInstance(
                Storage.class.getClassLoader(), new Class<?>[] {Storage.class}, (proxy, method, args) -> {
                    throw new IllegalStateException("storage down");
                });
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(down)
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 2, Duration.ofMinutes(1))
                .listener(new GuardMetrics(registry, "test-bot"))
                .build();

        for (int i = 0; i < 3; i++) {
            guard.check(new Msg(1));
        }

        assertThat(registry.get("guard.decisions")
                        .tag("outcome", "allowed")
                        .tag("degraded", "true")
                        .counter()
                        .count())
                .isEqualTo(2.0);
        assertThat(registry.get("guard.decisions")
                        .tag("reason", "throttled")
                        .tag("degraded", "true")
                        .counter()
                        .count())
                .isEqualTo(1.0);
        assertThat(registry.find("guard.decisions").tag("degraded", "false").counters())
                .isEmpty();
    }

    @Test
    void decisionLatency_endsWhenTheDecisionIsMade_beforeTheBotsRejectListenerRuns() {
        // The reject listener (the bot's "slow down" reply) runs after the decision; the latency must not hold it. The
        // listener takes longer than the check took until it began, so a latency that held it would exceed the bound.
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        long[] beforeCheck = new long[1];
        long[] rejectListenerEntered = new long[1];
        long[] rejectedNanos = new long[1];
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(ReferenceStorage.create())
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .onReject((message, decision) -> {
                    long entered = System.nanoTime();
                    rejectListenerEntered[0] = entered;
                    while (System.nanoTime() - entered <= entered - beforeCheck[0]) {
                        Thread.onSpinWait();
                    }
                })
                .listener(new GuardMetrics(registry, "test-bot"))
                .listener((message, decision, nanos) -> rejectedNanos[0] = decision.rejected() ? nanos : -1)
                .build();
        guard.check(new Msg(1));

        beforeCheck[0] = System.nanoTime();
        assertThat(guard.check(new Msg(1)).rejected()).isTrue();

        assertThat(registry.get("guard.decision.latency").timer().count()).isEqualTo(2);
        assertThat(rejectedNanos[0])
                .as("the rejection's latency: at most the time from the call of check to the reject listener")
                .isBetween(0L, rejectListenerEntered[0] - beforeCheck[0]);
    }
}
