package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Histories.Scenario;
import java.time.Duration;
import java.util.List;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.LongRange;

/** Invariants of {@link TokenBucket} on generated histories, in exact integer arithmetic. */
class TokenBucketPropertyTest {
    private static final int TRIES = 200;

    @Provide
    Arbitrary<Scenario> monotone() {
        return Histories.monotone(Histories.tokenBuckets());
    }

    @Provide
    Arbitrary<Scenario> skewed() {
        return Histories.skewed(Histories.tokenBuckets());
    }

    /**
     * Over any closed interval {@code [a, b]} the admitted permits are at most {@code capacity + rate * (b - a)}.
     * In ticks, where a token is {@code ticksPerToken} and a microsecond refills {@code ticksPerMicro}, that is
     * {@code permits * ticksPerToken <= capacityTicks + ticksPerMicro * (b - a)}, with no rounding anywhere.
     */
    @Property(tries = TRIES)
    void admitted_anyIntervalOfLengthT_isAtMostCapacityPlusRateTimesT(@ForAll("monotone") Scenario scenario) {
        TokenBucket bucket = (TokenBucket) scenario.spec();
        List<Request> admitted = Replay.of(scenario).admitted();
        for (int from = 0; from < admitted.size(); from++) {
            long permits = 0;
            for (int to = from; to < admitted.size(); to++) {
                permits += admitted.get(to).permits();
                long length = admitted.get(to).atMicros() - admitted.get(from).atMicros();
                long allowed =
                        Math.addExact(bucket.capacityTicks(), Math.multiplyExact(bucket.ticksPerMicro(), length));
                assertThat(Math.multiplyExact(permits, bucket.ticksPerToken()))
                        .as("%s admitted between %s and %s", permits, admitted.get(from), admitted.get(to))
                        .isLessThanOrEqualTo(allowed);
            }
        }
    }

    /**
     * The bucket decides exactly like the textbook GCRA: a theoretical arrival time that each admitted permit
     * pushes back by {@code ticksPerToken}, admitting while it stays within {@code capacityTicks} of now.
     */
    @Property(tries = TRIES)
    void decisions_steadyClock_matchTheGcraFormulation(@ForAll("monotone") Scenario scenario) {
        TokenBucket bucket = (TokenBucket) scenario.spec();
        Replay replay = new Replay(bucket);
        long origin = scenario.requests().get(0).atMicros();
        long tat = Long.MIN_VALUE;
        for (Request request : scenario.requests()) {
            long now = Math.multiplyExact(request.atMicros() - origin, bucket.ticksPerMicro());
            long expected;
            if (request.permits() > bucket.capacity()) {
                expected = Outcome.NEVER;
            } else {
                long next = Math.max(tat, now) + request.permits() * bucket.ticksPerToken();
                long debt = next - now;
                if (debt <= bucket.capacityTicks()) {
                    expected = Outcome.admitted((bucket.capacityTicks() - debt) / bucket.ticksPerToken());
                    tat = next;
                } else {
                    expected = Outcome.rejected(
                            TokenBucket.ceilDiv(debt - bucket.capacityTicks(), bucket.ticksPerMicro()));
                }
            }
            assertThat(Outcome.toString(replay.offer(request)))
                    .as("%s", request)
                    .isEqualTo(Outcome.toString(expected));
        }
    }

    /** The ttl is the time to full: one microsecond earlier a full burst is still refused. */
    @Property(tries = TRIES)
    void ttl_anyState_isTheTimeUntilAFullBurstPasses(@ForAll("skewed") Scenario scenario) {
        TokenBucket bucket = (TokenBucket) scenario.spec();
        Replay replay = new Replay(bucket);
        for (Request request : scenario.requests()) {
            replay.offer(request);
            long ttl = bucket.ttlMicros(replay.state(), request.atMicros());
            long full = request.atMicros() + ttl;
            assertThat(bucket.evaluate(replay.state(), full, bucket.capacity())).isEqualTo(0);
            if (ttl > 0) {
                assertThat(Outcome.isAdmitted(bucket.evaluate(replay.state(), full - 1, bucket.capacity())))
                        .as("a full burst 1us before the ttl after %s", request)
                        .isFalse();
            }
        }
    }

    /**
     * Whatever the state holds (another bucket's level under the same key, above this one's capacity, updated by a
     * clock ahead of this one), the bucket holds at most its capacity, its ttl is never negative, and a state full at
     * now decides and commits exactly as an absent one: a new bucket starting at now.
     */
    @Property(tries = TRIES)
    void anyStateOfABucketsShape_holdsAtMostCapacity_andFullIsAbsent(
            @ForAll @LongRange(min = 1, max = 1_000) long capacity,
            @ForAll @LongRange(min = 1, max = 1_000) long refill,
            @ForAll @LongRange(min = 1, max = 100_000_000) long periodMicros,
            @ForAll @LongRange(min = -1_000_000_000_000L, max = 1_000_000_000_000L) long level,
            @ForAll @LongRange(min = -86_400_000_000L, max = 86_400_000_000L) long lastFromNow,
            @ForAll @LongRange(min = 0, max = 1_000) long permits) {
        TokenBucket bucket = new TokenBucket(capacity, refill, Duration.ofNanos(periodMicros * 1_000));
        long now = 1_780_000_000_000_000L;
        long[] state = {level, now + lastFromNow};
        long at = bucket.level(state.clone(), now);
        assertThat(at).isLessThanOrEqualTo(bucket.capacityTicks());
        assertThat(bucket.ttlMicros(state.clone(), now)).isNotNegative();
        long outcome = bucket.evaluate(state.clone(), now, permits);
        if (Outcome.isAdmitted(outcome)) {
            assertThat(Outcome.remaining(outcome)).isLessThanOrEqualTo(capacity - permits);
        }
        if (at == bucket.capacityTicks()) {
            assertThat(outcome).isEqualTo(bucket.evaluate(null, now, permits));
            if (permits <= capacity) {
                assertThat(bucket.commit(state.clone(), now, permits))
                        .containsExactly(bucket.commit(null, now, permits));
            }
        }
    }
}
