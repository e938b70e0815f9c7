package dev.guard.limit;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Tuple;

/**
 * Generators of limit specs and of request histories for the property tests. Times are scaled to each spec (its
 * window, period or time-to-full) so that histories both fill limits and let them recover; permits go one past the
 * limit so that {@link Outcome#NEVER} is exercised too.
 */
final class Histories {
    /** 2026-01-01T00:00:00Z in epoch microseconds; generated histories start at most a few scales after it. */
    static final long START_MICROS = 1_767_225_600_000_000L;

    private static final int MAX_REQUESTS = 40;

    private Histories() {}

    /**
     * A spec and the requests to replay through it.
     *
     * @param spec the limit
     * @param requests the history, in arrival order
     */
    record Scenario(LimitSpec spec, List<Request> requests) {
        /** The time of the last request. */
        long lastMicros() {
            return requests.get(requests.size() - 1).atMicros();
        }
    }

    /** Scenarios of {@code specs} whose clock never goes backwards. */
    static Arbitrary<Scenario> monotone(Arbitrary<? extends LimitSpec> specs) {
        return scenarios(specs, false);
    }

    /** Scenarios of {@code specs} whose clock sometimes steps backwards (skewed processes sharing a key). */
    static Arbitrary<Scenario> skewed(Arbitrary<? extends LimitSpec> specs) {
        return scenarios(specs, true);
    }

    private static Arbitrary<Scenario> scenarios(Arbitrary<? extends LimitSpec> specs, boolean backwards) {
        return specs.flatMap(spec ->
                requests(scaleOf(spec), limitOf(spec) + 1, backwards).map(requests -> new Scenario(spec, requests)));
    }

    private static Arbitrary<List<Request>> requests(long scale, long maxPermits, boolean backwards) {
        Arbitrary<Long> start = Arbitraries.longs().between(0, 3 * scale).map(offset -> START_MICROS + offset);
        Arbitrary<Long> permits = Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.just(1L)),
                Tuple.of(4, Arbitraries.longs().between(0, maxPermits)));
        Arbitrary<long[]> steps =
                Combinators.combine(gaps(scale, backwards), permits).as((gap, p) -> new long[] {gap, p});
        return Combinators.combine(start, steps.list().ofMinSize(1).ofMaxSize(MAX_REQUESTS))
                .as((first, gapsAndPermits) -> {
                    List<Request> requests = new ArrayList<>(gapsAndPermits.size());
                    long at = first;
                    for (long[] step : gapsAndPermits) {
                        at += step[0];
                        requests.add(new Request(at, step[1]));
                    }
                    return requests;
                });
    }

    /** Gaps between requests: often none or a few microseconds (edges), mostly within a few scales. */
    static Arbitrary<Long> gaps(long scale, boolean backwards) {
        List<Tuple.Tuple2<Integer, Arbitrary<Long>>> gaps = new ArrayList<>();
        gaps.add(Tuple.of(2, Arbitraries.just(0L)));
        gaps.add(Tuple.of(2, Arbitraries.longs().between(1, 3)));
        gaps.add(Tuple.of(8, Arbitraries.longs().between(0, Math.max(1, scale / 4))));
        gaps.add(Tuple.of(5, Arbitraries.longs().between(0, 2 * scale)));
        gaps.add(Tuple.of(1, Arbitraries.longs().between(2 * scale, 10 * scale)));
        if (backwards) {
            gaps.add(Tuple.of(3, Arbitraries.longs().between(-2 * scale, -1)));
        }
        return Arbitraries.frequencyOf(gaps);
    }

    /** Every kind whose state {@link LimitSpec#commit} writes. */
    static Arbitrary<LimitSpec> committingSpecs() {
        return Arbitraries.oneOf(
                tokenBuckets(), fixedWindows(), slidingLogs(), slidingCounters(), cooldowns(), duplicateWindows());
    }

    /** The kinds that count permits: everything {@link #committingSpecs} holds but the cooldown and the window. */
    static Arbitrary<LimitSpec> countingSpecs() {
        return Arbitraries.oneOf(tokenBuckets(), fixedWindows(), slidingLogs(), slidingCounters());
    }

    static Arbitrary<TokenBucket> tokenBuckets() {
        Arbitrary<Long> periodMicros = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.just(1_000_000L)),
                Tuple.of(2, Arbitraries.just(3_000_000L)),
                Tuple.of(2, Arbitraries.longs().between(1, 50)),
                Tuple.of(4, Arbitraries.longs().between(1, 10_000_000)));
        return Combinators.combine(
                        Arbitraries.longs().between(1, 12), Arbitraries.longs().between(1, 40), periodMicros)
                .as((capacity, tokens, period) -> new TokenBucket(capacity, tokens, micros(period)));
    }

    static Arbitrary<FixedWindow> fixedWindows() {
        return Combinators.combine(limits(), windowMicros()).as((limit, w) -> new FixedWindow(limit, micros(w)));
    }

    static Arbitrary<SlidingWindowLog> slidingLogs() {
        return Combinators.combine(limits(), windowMicros()).as((limit, w) -> new SlidingWindowLog(limit, micros(w)));
    }

    static Arbitrary<SlidingWindowCounter> slidingCounters() {
        Arbitrary<Long> bucketMicros = Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.longs().between(1, 20)),
                Tuple.of(2, Arbitraries.longs().between(1, 1_000_000)));
        return Combinators.combine(limits(), Arbitraries.integers().between(1, 10), bucketMicros)
                .as((limit, buckets, b) -> new SlidingWindowCounter(limit, micros(b * buckets), buckets));
    }

    static Arbitrary<Cooldown> cooldowns() {
        return windowMicros().map(period -> new Cooldown(micros(period)));
    }

    /** Small capacities, so that histories (whose items go up to one past it) fill them and make them forget. */
    static Arbitrary<DuplicateWindow> duplicateWindows() {
        return Combinators.combine(windowMicros(), Arbitraries.integers().between(1, 4))
                .as((w, capacity) -> new DuplicateWindow(micros(w), capacity));
    }

    private static Arbitrary<Long> limits() {
        return Arbitraries.longs().between(1, 8);
    }

    private static Arbitrary<Long> windowMicros() {
        return Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.just(60_000_000L)),
                Tuple.of(2, Arbitraries.longs().between(1, 20)),
                Tuple.of(4, Arbitraries.longs().between(1, 5_000_000)));
    }

    static Duration micros(long micros) {
        return Duration.ofNanos(Math.multiplyExact(micros, 1_000L));
    }

    /** The time over which {@code spec} forgets a request: its window, period, or time from empty to full. */
    static long scaleOf(LimitSpec spec) {
        if (spec instanceof FixedWindow w) {
            return w.windowMicros();
        }
        if (spec instanceof SlidingWindowLog w) {
            return w.windowMicros();
        }
        if (spec instanceof Cooldown c) {
            return c.periodMicros();
        }
        if (spec instanceof DuplicateWindow w) {
            return w.windowMicros();
        }
        return spec.maxTtlMicros();
    }

    /** The most permits {@code spec} admits at once: its capacity or limit; one for a cooldown. */
    static long limitOf(LimitSpec spec) {
        if (spec instanceof TokenBucket b) {
            return b.capacity();
        }
        if (spec instanceof FixedWindow w) {
            return w.limit();
        }
        if (spec instanceof SlidingWindowLog w) {
            return w.limit();
        }
        if (spec instanceof SlidingWindowCounter c) {
            return c.limit();
        }
        if (spec instanceof DuplicateWindow w) {
            return w.capacity(); // items, not permits: 0 to one past the capacity
        }
        return 1;
    }
}
