package dev.guard.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.spi.ReferenceStorage;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
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
}
