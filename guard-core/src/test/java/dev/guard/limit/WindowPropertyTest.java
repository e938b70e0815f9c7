package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Histories.Scenario;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Invariants of the window kinds ({@link SlidingWindowLog}, {@link SlidingWindowCounter}, {@link FixedWindow}) on
 * generated histories with a steady clock, against models that count admitted requests directly.
 */
class WindowPropertyTest {
    private static final int TRIES = 200;

    @Provide
    Arbitrary<Scenario> logs() {
        return Histories.monotone(Histories.slidingLogs());
    }

    @Provide
    Arbitrary<Scenario> counters() {
        return Histories.monotone(Histories.slidingCounters());
    }

    @Provide
    Arbitrary<Scenario> fixedWindows() {
        return Histories.monotone(Histories.fixedWindows());
    }

    @Property(tries = TRIES)
    void log_anyIntervalOfLengthWindow_admitsAtMostLimit(@ForAll("logs") Scenario scenario) {
        SlidingWindowLog log = (SlidingWindowLog) scenario.spec();
        assertAtMostLimitPerWindow(Replay.of(scenario).admitted(), log.windowMicros(), log.limit());
    }

    @Property(tries = TRIES)
    void counter_anyIntervalOfLengthWindow_admitsAtMostLimit(@ForAll("counters") Scenario scenario) {
        SlidingWindowCounter counter = (SlidingWindowCounter) scenario.spec();
        long windowMicros = counter.bucketMicros() * counter.buckets();
        assertAtMostLimitPerWindow(Replay.of(scenario).admitted(), windowMicros, counter.limit());
    }

    /** The log is exact: it admits exactly when the permits of the last {@code window} leave room. */
    @Property(tries = TRIES)
    void log_decisions_matchTheExactWindow(@ForAll("logs") Scenario scenario) {
        SlidingWindowLog log = (SlidingWindowLog) scenario.spec();
        Replay replay = new Replay(log);
        List<Request> admitted = new ArrayList<>();
        for (Request request : scenario.requests()) {
            long expected = exactWindow(admitted, log.windowMicros(), log.limit(), request);
            long outcome = replay.offer(request);
            assertThat(Outcome.toString(outcome)).as("%s", request).isEqualTo(Outcome.toString(expected));
            if (Outcome.isAdmitted(outcome)) {
                admitted.add(request);
            }
        }
    }

    /**
     * The documented error bound: the counter admits only what an exact window of {@code window} admits, and
     * admits everything an exact window of {@code window + window/buckets} admits; its retry-after lies between
     * theirs. So it may reject up to {@code window/buckets} early, never late.
     */
    @Property(tries = TRIES)
    void counter_decisions_lieBetweenExactWindowsOfWindowAndWindowPlusOneBucket(@ForAll("counters") Scenario scenario) {
        SlidingWindowCounter counter = (SlidingWindowCounter) scenario.spec();
        long window = counter.bucketMicros() * counter.buckets();
        long wider = window + counter.bucketMicros();
        Replay replay = new Replay(counter);
        List<Request> admitted = new ArrayList<>();
        for (Request request : scenario.requests()) {
            long exact = exactWindow(admitted, window, counter.limit(), request);
            long loose = exactWindow(admitted, wider, counter.limit(), request);
            long outcome = replay.offer(request);
            if (Outcome.isAdmitted(outcome)) {
                assertThat(Outcome.isAdmitted(exact))
                        .as("exact window admits %s", request)
                        .isTrue();
                admitted.add(request);
            } else {
                assertThat(Outcome.isAdmitted(loose))
                        .as("wider window rejects %s", request)
                        .isFalse();
                assertThat(Outcome.retryAfterMicros(outcome))
                        .as("retry-after of %s", request)
                        .isBetween(Outcome.retryAfterMicros(exact), Outcome.retryAfterMicros(loose));
            }
        }
    }

    @Property(tries = TRIES)
    void fixed_decisions_matchTheEpochAlignedWindows(@ForAll("fixedWindows") Scenario scenario) {
        FixedWindow fixed = (FixedWindow) scenario.spec();
        long w = fixed.windowMicros();
        Replay replay = new Replay(fixed);
        Map<Long, Long> counts = new HashMap<>();
        for (Request request : scenario.requests()) {
            long index = Math.floorDiv(request.atMicros(), w);
            long count = counts.getOrDefault(index, 0L);
            long expected;
            if (request.permits() > fixed.limit()) {
                expected = Outcome.NEVER;
            } else if (count + request.permits() <= fixed.limit()) {
                expected = Outcome.admitted(fixed.limit() - count - request.permits());
            } else {
                expected = Outcome.rejected((index + 1) * w - request.atMicros());
            }
            long outcome = replay.offer(request);
            assertThat(Outcome.toString(outcome)).as("%s", request).isEqualTo(Outcome.toString(expected));
            if (Outcome.isAdmitted(outcome)) {
                counts.merge(index, request.permits(), Long::sum);
            }
        }
    }

    @Property(tries = TRIES)
    void fixed_anyEpochAlignedWindow_admitsAtMostLimit(@ForAll("fixedWindows") Scenario scenario) {
        FixedWindow fixed = (FixedWindow) scenario.spec();
        Map<Long, Long> counts = new HashMap<>();
        for (Request request : Replay.of(scenario).admitted()) {
            counts.merge(Math.floorDiv(request.atMicros(), fixed.windowMicros()), request.permits(), Long::sum);
        }
        assertThat(counts.values()).allSatisfy(count -> assertThat(count).isLessThanOrEqualTo(fixed.limit()));
    }

    /** Every window ending at an admitted request holds at most {@code limit} permits, which covers every window. */
    private static void assertAtMostLimitPerWindow(List<Request> admitted, long windowMicros, long limit) {
        for (Request last : admitted) {
            assertThat(permitsIn(admitted, last.atMicros(), windowMicros))
                    .as("permits in the window ending at %s", last)
                    .isLessThanOrEqualTo(limit);
        }
    }

    /** Permits admitted in {@code (endMicros - windowMicros, endMicros]}. */
    private static long permitsIn(List<Request> admitted, long endMicros, long windowMicros) {
        long sum = 0;
        for (Request r : admitted) {
            if (r.atMicros() > endMicros - windowMicros && r.atMicros() <= endMicros) {
                sum += r.permits();
            }
        }
        return sum;
    }

    /**
     * What an exact sliding window of {@code windowMicros} answers to {@code request} after {@code admitted}: the
     * retry-after is the first moment an admitted request leaves enough room by leaving the window.
     */
    private static long exactWindow(List<Request> admitted, long windowMicros, long limit, Request request) {
        long now = request.atMicros();
        if (request.permits() > limit) {
            return Outcome.NEVER;
        }
        long room = limit - permitsIn(admitted, now, windowMicros) - request.permits();
        if (room >= 0) {
            return Outcome.admitted(room);
        }
        long best = Long.MAX_VALUE;
        for (Request r : admitted) {
            long leaves = r.atMicros() + windowMicros;
            if (leaves > now && permitsIn(admitted, leaves, windowMicros) + request.permits() <= limit) {
                best = Math.min(best, leaves - now);
            }
        }
        return Outcome.rejected(best);
    }
}
