package dev.guard.metrics;

import dev.guard.Decision;
import dev.guard.GuardListener;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;

/**
 * Publishes a guard's decisions to Micrometer: a counter {@code guard.decisions} tagged with {@code guard}, {@code
 * outcome} (allowed/rejected), {@code reason}, {@code filter} and {@code degraded} ({@code true} for a decision made
 * while the storage failed: failed open or closed, or made on the {@link dev.guard.FailurePolicy#fallbackTo
 * fallback}, which answers with the reason of its own limits), and a timer {@code guard.decision.latency} (from the
 * call of {@code check} until the decision is made, before the reject listeners run).
 * Register it with {@code Guard.Builder#listener}. Needs {@code io.micrometer:micrometer-core} on the classpath
 * (an optional dependency of guard-core). Thread-safe; meters are created once per combination and then cached.
 *
 * <pre>{@code
 * Guard<Update> guard = Guard.<Update>builder()
 *         .storage(storage)
 *         .userId(Update::userId)
 *         .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
 *         .listener(new GuardMetrics(registry, "support-bot"))
 *         .build();
 * }</pre>
 */
public final class GuardMetrics implements GuardListener<Object> {
    private final MeterRegistry registry;
    private final String guardName;
    private final Timer latency;
    private final ConcurrentMap<String, Counter> counters = new ConcurrentHashMap<>();

    /**
     * Creates the listener.
     *
     * @param registry where to publish
     * @param guardName the value of the {@code guard} tag, to tell several guards apart
     */
    public GuardMetrics(MeterRegistry registry, String guardName) {
        this.registry = Objects.requireNonNull(registry, "registry must not be null");
        this.guardName = Objects.requireNonNull(guardName, "guardName must not be null");
        this.latency = Timer.builder("guard.decision.latency")
                .description("time to decide one message")
                .tag("guard", guardName)
                .register(registry);
    }

    @Override
    public void onDecision(Object message, Decision decision, long nanos) {
        latency.record(nanos, TimeUnit.NANOSECONDS);
        String filter = decision.filter() == null ? "none" : decision.filter();
        String key = decision.reason().name() + '\0' + filter + '\0' + decision.allowed() + '\0' + decision.degraded();
        Counter counter = counters.get(key);
        if (counter == null) {
            counter = counters.computeIfAbsent(key, k -> Counter.builder("guard.decisions")
                    .description("decisions by outcome, reason and filter")
                    .tag("guard", guardName)
                    .tag("outcome", decision.allowed() ? "allowed" : "rejected")
                    .tag("reason", decision.reason().name().toLowerCase(java.util.Locale.ROOT))
                    .tag("filter", filter)
                    .tag("degraded", Boolean.toString(decision.degraded()))
                    .register(registry));
        }
        counter.increment();
    }
}
