package dev.guard.limit;

import static dev.guard.limit.Histories.limitOf;
import static dev.guard.limit.Histories.scaleOf;
import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Histories.Scenario;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.LongRange;

/**
 * Invariants every kind that commits state must keep, checked on generated histories: the contract of {@link
 * LimitSpec} and {@link Outcome} that the Redis and JDBC equivalents are held to as well.
 */
class LimitSpecPropertyTest {
    private static final int TRIES = 200;

    @Provide
    Arbitrary<Scenario> monotone() {
        return Histories.monotone(Histories.committingSpecs());
    }

    @Provide
    Arbitrary<Scenario> skewed() {
        return Histories.skewed(Histories.committingSpecs());
    }

    @Provide
    Arbitrary<Scenario> countingSkewed() {
        return Histories.skewed(Histories.countingSpecs());
    }

    @Property(tries = TRIES)
    void retryAfter_anyRejection_admitsExactlyThenAndNotOneMicrosecondEarlier(@ForAll("skewed") Scenario scenario) {
        Replay replay = new Replay(scenario.spec());
        LimitSpec spec = scenario.spec();
        for (Request request : scenario.requests()) {
            long[] state = replay.state();
            long outcome = replay.offer(request);
            if (Outcome.isAdmitted(outcome) || outcome == Outcome.NEVER) {
                continue;
            }
            long at = request.atMicros() + Outcome.retryAfterMicros(outcome);
            assertThat(Outcome.isAdmitted(spec.evaluate(state, at, request.permits())))
                    .as("%s retried after %s", request, Outcome.toString(outcome))
                    .isTrue();
            assertThat(Outcome.isAdmitted(spec.evaluate(state, at - 1, request.permits())))
                    .as("%s retried 1us before %s", request, Outcome.toString(outcome))
                    .isFalse();
        }
    }

    @Property(tries = TRIES)
    void never_onlyForMorePermitsThanTheLimit(@ForAll("skewed") Scenario scenario) {
        Replay replay = new Replay(scenario.spec());
        for (Request request : scenario.requests()) {
            long outcome = replay.offer(request);
            boolean tooMany = scenario.spec() instanceof Cooldown || scenario.spec() instanceof DuplicateWindow
                    ? false
                    : request.permits() > limitOf(scenario.spec());
            assertThat(outcome == Outcome.NEVER).as("%s", request).isEqualTo(tooMany);
        }
    }

    @Property(tries = TRIES)
    void ttl_stateAfterItsTtl_evaluatesLikeAbsent(
            @ForAll("skewed") Scenario scenario, @ForAll @LongRange(min = 0, max = 3000) long laterPermille) {
        Replay replay = new Replay(scenario.spec());
        LimitSpec spec = scenario.spec();
        for (Request request : scenario.requests()) {
            replay.offer(request);
            long[] state = replay.state();
            long ttl = spec.ttlMicros(state, request.atMicros());
            assertThat(ttl).isNotNegative();
            long expired = request.atMicros() + ttl;
            for (long later : new long[] {0, 1, scaleOf(spec) * laterPermille / 1000}) {
                for (long permits = 0; permits <= limitOf(spec) + 1; permits++) {
                    assertThat(Outcome.toString(spec.evaluate(state, expired + later, permits)))
                            .as("%s permits %s after the ttl of %s", permits, later, request)
                            .isEqualTo(Outcome.toString(spec.evaluate(null, expired + later, permits)));
                }
            }
        }
    }

    @Property(tries = TRIES)
    void ttl_steadyClock_neverExceedsMaxTtl(@ForAll("monotone") Scenario scenario) {
        Replay replay = new Replay(scenario.spec());
        for (Request request : scenario.requests()) {
            replay.offer(request);
            assertThat(scenario.spec().ttlMicros(replay.state(), request.atMicros()))
                    .as("ttl after %s", request)
                    .isLessThanOrEqualTo(scenario.spec().maxTtlMicros());
        }
    }

    @Property(tries = TRIES)
    void ttl_clockBehindTheNewestCommit_exceedsMaxTtlByAtMostTheSkew(@ForAll("skewed") Scenario scenario) {
        Replay replay = new Replay(scenario.spec());
        for (Request request : scenario.requests()) {
            replay.offer(request);
            long skew = Math.max(0, replay.newestCommitMicros() - request.atMicros());
            assertThat(scenario.spec().ttlMicros(replay.state(), request.atMicros()))
                    .as("ttl after %s", request)
                    .isLessThanOrEqualTo(scenario.spec().maxTtlMicros() + skew);
        }
    }

    /** A storage drops state once its ttl has run out; on a steady clock that must never change a decision. */
    @Property(tries = TRIES)
    void expiry_droppingStateAtItsTtl_changesNoDecision(@ForAll("monotone") Scenario scenario) {
        LimitSpec spec = scenario.spec();
        Replay kept = new Replay(spec);
        long[] state = null;
        long expiresAt = Long.MAX_VALUE;
        for (Request request : scenario.requests()) {
            if (state != null && request.atMicros() >= expiresAt) {
                state = null;
            }
            long outcome = spec.evaluate(state, request.atMicros(), request.permits());
            assertThat(Outcome.toString(outcome)).as("%s", request).isEqualTo(Outcome.toString(kept.offer(request)));
            if (Outcome.isAdmitted(outcome)) {
                state = spec.commit(state, request.atMicros(), request.permits());
                long ttl = spec.ttlMicros(state, request.atMicros());
                expiresAt = ttl == Long.MAX_VALUE ? Long.MAX_VALUE : request.atMicros() + ttl;
            }
        }
    }

    /** Waiting never hurts; read backwards, a clock that went back never grants more than the newest time. */
    @Property(tries = TRIES)
    void evaluate_laterWithoutRequestsBetween_isNeverWorse(
            @ForAll("skewed") Scenario scenario,
            @ForAll @LongRange(min = -2000, max = 2000) long earlierPermille,
            @ForAll @LongRange(min = 0, max = 2000) long waitPermille) {
        LimitSpec spec = scenario.spec();
        long[] state = Replay.of(scenario).state();
        long earlier = scenario.lastMicros() + scaleOf(spec) * earlierPermille / 1000;
        long later = earlier + scaleOf(spec) * waitPermille / 1000;
        for (long permits = 0; permits <= limitOf(spec) + 1; permits++) {
            long before = spec.evaluate(state, earlier, permits);
            long after = spec.evaluate(state, later, permits);
            if (Outcome.isAdmitted(before)) {
                assertThat(Outcome.isAdmitted(after))
                        .as("%s permits at %s then %s", permits, earlier, later)
                        .isTrue();
                assertThat(Outcome.remaining(after)).isGreaterThanOrEqualTo(Outcome.remaining(before));
            }
        }
    }

    @Property(tries = TRIES)
    void commit_afterAnAdmittedEvaluate_leavesWhatTheOutcomeSaidRemains(@ForAll("countingSkewed") Scenario scenario) {
        LimitSpec spec = scenario.spec();
        Replay replay = new Replay(spec);
        for (Request request : scenario.requests()) {
            long outcome = replay.offer(request);
            if (!Outcome.isAdmitted(outcome)) {
                continue;
            }
            long[] next = replay.state();
            long now = request.atMicros();
            long remaining = Outcome.remaining(outcome);
            assertThat(spec.evaluate(next, now, 0)).as("look after %s", request).isEqualTo(remaining);
            assertThat(spec.evaluate(next, now, remaining))
                    .as("the rest after %s", request)
                    .isEqualTo(0);
            long oneMore = spec.evaluate(next, now, remaining + 1);
            assertThat(Outcome.isAdmitted(oneMore))
                    .as("one more after %s", request)
                    .isFalse();
            assertThat(oneMore == Outcome.NEVER).isEqualTo(remaining + 1 > limitOf(spec));
        }
    }

    @Property(tries = TRIES)
    void commit_cooldownPass_rejectsEverythingForExactlyThePeriod(@ForAll("cooldownScenarios") Scenario scenario) {
        Cooldown cooldown = (Cooldown) scenario.spec();
        Replay replay = new Replay(cooldown);
        for (Request request : scenario.requests()) {
            long[] before = replay.state();
            long outcome = replay.offer(request);
            if (!Outcome.isAdmitted(outcome)) {
                continue;
            }
            if (request.permits() == 0) {
                assertThat(outcome).isEqualTo(1);
                assertThat(replay.state()).isEqualTo(before);
                continue;
            }
            assertThat(outcome).isEqualTo(0);
            assertThat(replay.state()).containsExactly(request.atMicros() + cooldown.periodMicros());
            for (long permits = 0; permits <= 2; permits++) {
                assertThat(Outcome.retryAfterMicros(cooldown.evaluate(replay.state(), request.atMicros(), permits)))
                        .isEqualTo(cooldown.periodMicros());
            }
        }
    }

    @Property(tries = TRIES)
    void duplicateWindow_rejectsExactlyTheItemsAdmittedWithinTheWindow_whileItHasRoom(
            @ForAll("duplicateWindowScenarios") Scenario scenario) {
        // A model: every admitted item with its time, none forgotten. While the window never had to forget (fewer
        // live items than the capacity), the spec must reject exactly the model's live items.
        DuplicateWindow window = (DuplicateWindow) scenario.spec();
        Replay replay = new Replay(window);
        java.util.List<long[]> admitted = new java.util.ArrayList<>();
        boolean forgot = false;
        long newest = Long.MIN_VALUE;
        for (Request request : scenario.requests()) {
            long now = request.atMicros();
            long live = admitted.stream()
                    .filter(a -> a[1] + window.windowMicros() > now)
                    .count();
            long outcome = replay.offer(request);
            if (!forgot && newest <= now) {
                long[] copy = admitted.stream()
                        .filter(a -> a[0] == request.permits() && a[1] + window.windowMicros() > now)
                        .findFirst()
                        .orElse(null);
                assertThat(Outcome.toString(outcome))
                        .as("%s", request)
                        .isEqualTo(Outcome.toString(
                                copy == null
                                        ? Outcome.admitted(0)
                                        : Outcome.rejected(copy[1] + window.windowMicros() - now)));
            }
            if (Outcome.isAdmitted(outcome)) {
                forgot |= live >= window.capacity();
                newest = Math.max(newest, now);
                admitted.add(new long[] {request.permits(), Math.max(now, newest)});
            }
        }
    }

    @Provide
    Arbitrary<Scenario> duplicateWindowScenarios() {
        return Histories.monotone(Histories.duplicateWindows());
    }

    @Provide
    Arbitrary<Scenario> cooldownScenarios() {
        return Histories.skewed(Histories.cooldowns());
    }
}
