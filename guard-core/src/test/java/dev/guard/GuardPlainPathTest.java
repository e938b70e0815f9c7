package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.GuardSingleStepTest.Switchable;
import dev.guard.limit.LimitSpec;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
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
            Switchable storage, ManualTicker ticker, String filter, String policy, boolean withExtractor) {
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
