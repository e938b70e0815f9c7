package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * The lock-free holders that keep a limit's state in their word ({@link WindowHolder}, {@link BucketHolder}) give the
 * reference's decisions on generated histories of one key whose clock also goes back, by up to three windows or
 * refill periods: single steps (the lock-free path) and two-step batches (the owned path) in any mix.
 *
 * <p>The clock moves forward by at most half a window per step, so that the key is used before the cache could drop it
 * (the storage may drop state that expired on the newest clock it has seen, which the reference never does).
 */
class PackedHolderPropertyTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    /** One call: move the clock by {@code delta} (negative: back), then take {@code permits}, alone or in a batch. */
    record Move(long delta, long permits, boolean batch) {}

    record History(LimitSpec spec, long periodMicros, List<Move> moves) {}

    @Provide
    Arbitrary<History> windows() {
        Arbitrary<FixedWindow> specs = Combinators.combine(
                        Arbitraries.longs().between(1, 6), Arbitraries.of(1L, 7L, 1_000L, 250_000L, 1_000_000L))
                .as((limit, micros) -> new FixedWindow(limit, Duration.ofNanos(micros * 1_000)));
        return specs.flatMap(w -> moves(w.limit(), w.windowMicros()).map(m -> new History(w, w.windowMicros(), m)));
    }

    @Provide
    Arbitrary<History> buckets() {
        Arbitrary<TokenBucket> specs = Combinators.combine(
                        Arbitraries.longs().between(1, 6),
                        Arbitraries.longs().between(1, 4),
                        Arbitraries.of(3L, 1_000L, 700_000L, 1_000_000L))
                .as((capacity, refill, micros) -> new TokenBucket(capacity, refill, Duration.ofNanos(micros * 1_000)));
        return specs.flatMap(b -> {
            long period = b.refillPeriod().toNanos() / 1_000;
            return moves(b.capacity(), period).map(m -> new History(b, period, m));
        });
    }

    private static Arbitrary<List<Move>> moves(long limit, long periodMicros) {
        Arbitrary<Long> delta = Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.longs().between(0, Math.max(1, periodMicros / 2))),
                Tuple.of(1, Arbitraries.longs().between(-3 * periodMicros, -1)));
        return Combinators.combine(delta, Arbitraries.longs().between(0, limit + 1), Arbitraries.of(false, true))
                .as(Move::new)
                .list()
                .ofMinSize(1)
                .ofMaxSize(60);
    }

    @Property(tries = 1_000)
    void fixedWindow_historiesWithClockRegressions_answerAsTheReference(@ForAll("windows") History history) {
        replay(history, WindowHolder.class);
    }

    @Property(tries = 1_000)
    void tokenBucket_historiesWithClockRegressions_answerAsTheReference(@ForAll("buckets") History history) {
        replay(history, BucketHolder.class);
    }

    private static void replay(History history, Class<? extends Holder> packed) {
        StateKey key = new StateKey("limit", "user");
        // The batch's other step: never refuses, so the batch's outcome is the key's.
        Step other = new Step(new StateKey("other", "user"), new TokenBucket(1_000_000, 1, Duration.ofSeconds(1)), 0);
        MemoryStorage storage = MemoryStorage.create();
        ReferenceStorage reference = ReferenceStorage.create();
        try {
            long now = T0;
            int i = 0;
            for (Move move : history.moves()) {
                now += move.delta();
                String what = "move " + i++ + " of " + history + " at " + now;
                if (move.batch()) {
                    Batch batch = Batch.of(new Step(key, history.spec(), move.permits()), other);
                    assertThat(storage.evaluate(batch, now)).as(what).isEqualTo(reference.evaluate(batch, now));
                } else {
                    long actual = storage.acquire(key, history.spec(), move.permits(), now);
                    long expected = reference.acquire(key, history.spec(), move.permits(), now);
                    assertThat(Outcome.toString(actual)).as(what).isEqualTo(Outcome.toString(expected));
                }
                // Still the packed holder: the history ran on the path it is meant to test.
                Holder holder = storage.holder(key);
                if (holder != null) {
                    assertThat(holder).as(what).isInstanceOf(packed);
                }
            }
        } finally {
            storage.close();
        }
    }
}
