package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.GuardSingleStepTest.Switchable;
import dev.guard.limit.LimitSpec;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A guard with one global limit, no local filter, no id extractor and nobody listening decides in {@link
 * Guard#check}'s shortest path, and {@link Guard#allows} answers it without a {@code Decision}. Both must decide as
 * the single filter's path does (the same guard with an id extractor, which takes that path), storage failures,
 * failure policies and the breaker included.
 */
class GuardPlainPathTest {
    private static Guard<Object> guard(
            Switchable storage, Ticker ticker, String filter, String policy, boolean withExtractor) {
        Guard.Builder<Object> b = Guard.builder()
                .storage(storage)
                .ticker(ticker)
                .breaker(3, Duration.ofSeconds(5))
                .onStorageFailure(GuardSingleStepTest.policy(policy));
        if (withExtractor) {
            b.userId(m -> null);
        }
        switch (filter) {
            case "throttle" -> b.throttle("f", KeyBy.GLOBAL, 3, Duration.ofSeconds(10));
            case "bucket" -> b.tokenBucket("f", KeyBy.GLOBAL, 2, 1, Duration.ofSeconds(2));
            case "window" -> b.slidingWindow("f", KeyBy.GLOBAL, 3, Duration.ofSeconds(10));
            case "cooldown" -> b.cooldown("f", KeyBy.GLOBAL, Duration.ofSeconds(3));
            case "gate" -> b.gate("f", KeyBy.GLOBAL);
            default -> throw new IllegalArgumentException(filter);
        }
        return b.build();
    }

    @ParameterizedTest(name = "{0}, fail {1}")
    @CsvSource({
        "throttle, open",
        "throttle, closed",
        "bucket, fallback",
        "bucket, closed",
        "window, open",
        "cooldown, fallback",
        "gate, closed",
    })
    void plainPath_andAllows_decideAsTheSingleFiltersPath(String filter, String policy) {
        ManualTicker ticker = ManualTicker.create();
        Switchable reference = new Switchable();
        Switchable plain = new Switchable();
        Switchable yesOrNo = new Switchable();
        Guard<Object> referenceGuard = guard(reference, ticker, filter, policy, true);
        Guard<Object> plainGuard = guard(plain, ticker, filter, policy, false);
        Guard<Object> allowsGuard = guard(yesOrNo, ticker, filter, policy, false);
        if (filter.equals("gate")) {
            for (Guard<Object> g : List.of(referenceGuard, plainGuard, allowsGuard)) {
                g.pause("f", "anything", Duration.ofSeconds(7)); // a global gate ignores the id
            }
        }
        SplittableRandom random = new SplittableRandom(filter.hashCode() * 31L + policy.hashCode());
        int failed = 0;
        int rejected = 0;
        int degraded = 0;
        for (int i = 0; i < 3_000; i++) {
            boolean fail = random.nextInt(20) == 0 || (i > 1_000 && i < 1_040);
            reference.failing = fail;
            plain.failing = fail;
            yesOrNo.failing = fail;
            failed += fail ? 1 : 0;
            Function<Guard<Object>, Guard<Object>> view = random.nextBoolean() ? g -> g : g -> g.scope("search");
            Object m = "message " + i;
            Decision expected = view.apply(referenceGuard).check(m);
            Decision actual = view.apply(plainGuard).check(m);
            boolean allowed = view.apply(allowsGuard).allows(m);
            assertThat(actual).as("message %d", i).isEqualTo(expected);
            assertThat(allowed).as("message %d, allows", i).isEqualTo(expected.allowed());
            rejected += expected.allowed() ? 0 : 1;
            degraded += expected.degraded() ? 1 : 0;
            ticker.advance(Duration.ofMillis(random.nextInt(2_000)));
        }
        assertThat(failed).isPositive();
        assertThat(rejected).isPositive();
        assertThat(degraded).isPositive();
        assertThat(plain.calls).isEqualTo(reference.calls).containsOnly("acquire");
        assertThat(yesOrNo.calls).isEqualTo(reference.calls);
    }

    /** A clock that moves by {@link #step} each time it is read: a decision that reads it twice shows. */
    static final class SteppingTicker implements Ticker {
        final ManualTicker time = ManualTicker.create();
        Duration step = Duration.ofMillis(1);
        int reads;

        @Override
        public long epochMicros() {
            reads++;
            long now = time.epochMicros();
            time.set(time.now().plus(step));
            return now;
        }
    }

    /**
     * Every decision reads the clock once (see {@link Ticker}), on this path as on the single filter's: a rejection,
     * a failure and the breaker's refusal too, and what the decision says (the breaker's wait, the fallback's time,
     * the end of time of a gate paused for ever) is of that one reading.
     */
    @ParameterizedTest(name = "{0}, fail {1}")
    @CsvSource({
        "throttle, open",
        "throttle, closed",
        "bucket, fallback",
        "window, closed",
        "cooldown, fallback",
        "gate, closed",
        "gate, fallback",
    })
    void plainPath_andAllows_readTheClockOnce_asTheSingleFiltersPath(String filter, String policy) {
        List<SteppingTicker> clocks = List.of(new SteppingTicker(), new SteppingTicker(), new SteppingTicker());
        Switchable reference = new Switchable();
        Switchable plain = new Switchable();
        Switchable yesOrNo = new Switchable();
        Guard<Object> referenceGuard = guard(reference, clocks.get(0), filter, policy, true);
        Guard<Object> plainGuard = guard(plain, clocks.get(1), filter, policy, false);
        Guard<Object> allowsGuard = guard(yesOrNo, clocks.get(2), filter, policy, false);
        if (filter.equals("gate")) {
            for (Guard<Object> g : List.of(referenceGuard, plainGuard, allowsGuard)) {
                g.pause("f", "anything", Duration.ofSeconds(7));
            }
        }
        SplittableRandom random = new SplittableRandom(filter.hashCode() * 17L + policy.hashCode());
        int rejected = 0;
        int degraded = 0;
        for (int i = 0; i < 1_000; i++) {
            boolean fail = random.nextInt(10) == 0 || (i > 300 && i < 320);
            reference.failing = fail;
            plain.failing = fail;
            yesOrNo.failing = fail;
            Object m = "message " + i;
            Decision expected = referenceGuard.check(m);
            Decision actual = plainGuard.check(m);
            boolean allowed = allowsGuard.allows(m);
            assertThat(actual).as("message %d", i).isEqualTo(expected);
            assertThat(allowed).as("message %d, allows", i).isEqualTo(expected.allowed());
            assertThat(clocks.get(1).reads).as("message %d, clock reads", i).isEqualTo(clocks.get(0).reads);
            assertThat(clocks.get(2).reads)
                    .as("message %d, allows' clock reads", i)
                    .isEqualTo(clocks.get(0).reads);
            rejected += expected.allowed() ? 0 : 1;
            degraded += expected.degraded() ? 1 : 0;
            Duration step = Duration.ofMillis(random.nextInt(2_000));
            clocks.forEach(c -> c.time.advance(step));
        }
        assertThat(rejected).isPositive();
        assertThat(degraded).isPositive();
        assertThat(plain.calls).isEqualTo(reference.calls);
        assertThat(yesOrNo.calls).isEqualTo(reference.calls);
    }

    /** Failing closed, a failure that opens the breaker asks to retry when it will let a call through: 5 s. */
    @Test
    void failClosed_retryAfterIsTheBreakersPause_fromTheFailuresReading() {
        Switchable storage = new Switchable();
        storage.failing = true;
        SteppingTicker clock = new SteppingTicker();
        Guard<Object> guard = Guard.builder()
                .storage(storage)
                .ticker(clock)
                .breaker(1, Duration.ofSeconds(5))
                .onStorageFailure(FailurePolicy.failClosed())
                .throttle("f", KeyBy.GLOBAL, 3, Duration.ofSeconds(10))
                .build();

        Decision decision = guard.check("m");

        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
        assertThat(decision.retryAfter()).isEqualTo(Duration.ofSeconds(5));
        assertThat(clock.reads).isEqualTo(1);
        // The breaker open: refused at one reading, the wait from it.
        clock.time.advance(Duration.ofSeconds(2));
        assertThat(guard.check("m").retryAfter()).isEqualTo(Duration.ofMillis(2_999));
        assertThat(clock.reads).isEqualTo(2);
        assertThat(guard.allows("m")).isFalse();
        assertThat(clock.reads).isEqualTo(3);
    }

    /** A gate paused for ever rejects for good, also when the clock steps back (a wall clock set back) as it is read. */
    @Test
    void gatePausedForEver_rejectsForGood_readingTheClockOnce() {
        SteppingTicker clock = new SteppingTicker();
        clock.step = Duration.ofMillis(-1);
        Guard<Object> guard = Guard.builder()
                .storage(ReferenceStorage.create())
                .ticker(clock)
                .gate("f", KeyBy.GLOBAL)
                .build();
        guard.pause("f", "anything", ChronoUnit.FOREVER.getDuration());
        int before = clock.reads;

        assertThat(guard.check("m")).isEqualTo(Decision.rejected("f", Reason.COOLDOWN, Decision.NEVER));
        assertThat(guard.allows("m")).isFalse();
        assertThat(clock.reads - before).isEqualTo(2);
    }

    @Test
    void allows_withListeners_theyHearTheWholeDecision() {
        List<String> heard = new ArrayList<>();
        ManualTicker ticker = ManualTicker.create();
        Guard<String> guard = Guard.<String>builder()
                .storage(ReferenceStorage.create())
                .ticker(ticker)
                .userId(m -> 7L)
                .throttle("f", KeyBy.GLOBAL, 1, Duration.ofSeconds(10))
                .onReject((m, d) -> heard.add("rejected " + m + " " + d.filter() + " " + d.retryAfter()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> heard.add("notice " + m))
                .build();

        assertThat(guard.allows("a")).isTrue();
        ticker.advance(Duration.ofSeconds(4));
        assertThat(guard.allows("b")).isFalse();
        assertThat(guard.allows("c")).isFalse();

        assertThat(heard).containsExactly("rejected b f PT6S", "notice b", "rejected c f PT6S");
    }

    @Test
    void allows_null_isRefusedByName() {
        Guard<Object> guard = Guard.builder()
                .storage(ReferenceStorage.create())
                .throttle("f", KeyBy.GLOBAL, 1, Duration.ofSeconds(10))
                .build();

        assertThatThrownBy(() -> guard.allows(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("message must not be null");
        assertThatThrownBy(() -> guard.check(null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("message must not be null");
    }

    /** A storage answering -1 (no outcome: a rejection waits at least a microsecond) on every path alike. */
    @Test
    void storageAnsweringMinusOne_isARejectionOfOneMicrosecond_onEveryPath() {
        class MinusOne extends ForwardingStorage {
            MinusOne() {
                super(ReferenceStorage.create());
            }

            @Override
            public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
                return -1;
            }
        }
        Guard<Object> plain = Guard.builder()
                .storage(new MinusOne())
                .throttle("f", KeyBy.GLOBAL, 1, Duration.ofSeconds(10))
                .build();
        Guard<Object> single = Guard.builder()
                .storage(new MinusOne())
                .userId(m -> 1L)
                .throttle("f", KeyBy.USER, 1, Duration.ofSeconds(10))
                .build();

        Decision expected = Decision.rejected("f", Reason.THROTTLED, Duration.ofNanos(1_000));
        assertThat(plain.check("m")).isEqualTo(expected);
        assertThat(single.check("m")).isEqualTo(expected);
        assertThat(plain.allows("m")).isFalse();
    }
}
