package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.VersionedRecord;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link ReferenceStorage}, the model every backend is compared with, against the {@link dev.guard.spi.Storage}
 * contract. It lives beside the limit specs because it is their literal use.
 */
class ReferenceStorageTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();
    private final ReferenceStorage storage = ReferenceStorage.create();

    private final TokenBucket fivePerSecond = TokenBucket.of(5, Duration.ofSeconds(1));
    private final FixedWindow onePerMinute = new FixedWindow(1, Duration.ofMinutes(1));
    private final Cooldown thirtySeconds = new Cooldown(Duration.ofSeconds(30));

    private final StateKey aliceMessages = new StateKey("messages", "alice");
    private final StateKey aliceThrottle = new StateKey("throttle", "alice");
    private final StateKey bobMessages = new StateKey("messages", "bob");

    private long now() {
        return clock.epochMicros();
    }

    private long acquire(StateKey key, LimitSpec spec, long permits) {
        return storage.acquire(key, spec, permits, now());
    }

    @Test
    void evaluate_everyStepAdmits_commitsEveryStep() {
        Batch batch = Batch.of(new Step(aliceMessages, fivePerSecond, 2), new Step(aliceThrottle, onePerMinute, 1));
        BatchResult result = storage.evaluate(batch, now());
        assertThat(result.admitted()).isTrue();
        assertThat(result.firstRejected()).isEqualTo(-1);
        assertThat(result.outcome(0)).isEqualTo(3);
        assertThat(result.outcome(1)).isEqualTo(0);
        assertThat(result.remaining()).isZero();
        assertThat(acquire(aliceMessages, fivePerSecond, 0)).isEqualTo(3);
        assertThat(acquire(aliceThrottle, onePerMinute, 1)).isEqualTo(Outcome.rejected(60_000_000));
    }

    @Test
    void evaluate_oneStepRejects_consumesNothingAndReportsEveryOutcome() {
        assertThat(acquire(aliceThrottle, onePerMinute, 1)).isEqualTo(0);
        Batch batch = Batch.of(new Step(aliceMessages, fivePerSecond, 2), new Step(aliceThrottle, onePerMinute, 1));
        BatchResult result = storage.evaluate(batch, now());
        assertThat(result.admitted()).isFalse();
        assertThat(result.firstRejected()).isEqualTo(1);
        assertThat(result.outcome(0)).isEqualTo(3);
        assertThat(result.retryAfterMicros()).isEqualTo(60_000_000);
        assertThat(acquire(aliceMessages, fivePerSecond, 0)).isEqualTo(5);
    }

    @Test
    void evaluate_duplicateMessage_doesNotEatTheBucketAndAThrottledOneIsNotMarkedSeen() {
        StateKey fingerprint = new StateKey("seen", "alice:hello");
        Batch hello = Batch.of(new Step(aliceMessages, fivePerSecond, 1), new Step(fingerprint, thirtySeconds, 1));
        assertThat(storage.evaluate(hello, now()).admitted()).isTrue();
        assertThat(storage.evaluate(hello, now()).firstRejected()).isEqualTo(1);
        assertThat(acquire(aliceMessages, fivePerSecond, 0)).isEqualTo(4);

        StateKey other = new StateKey("seen", "alice:other");
        assertThat(acquire(aliceMessages, fivePerSecond, 4)).isEqualTo(0);
        Batch throttled = Batch.of(new Step(aliceMessages, fivePerSecond, 1), new Step(other, thirtySeconds, 1));
        assertThat(storage.evaluate(throttled, now()).firstRejected()).isZero();
        assertThat(acquire(other, thirtySeconds, 1)).isEqualTo(0);
    }

    @Test
    void evaluateAsync_completesWithWhatEvaluateAnswers() throws Exception {
        Batch batch = Batch.of(new Step(aliceMessages, fivePerSecond, 5));
        BatchResult result =
                storage.evaluateAsync(batch, now()).toCompletableFuture().get(1, TimeUnit.SECONDS);
        assertThat(result).isEqualTo(BatchResult.of(0));
        assertThat(storage.evaluate(batch, now())).isEqualTo(BatchResult.of(Outcome.rejected(1_000_000)));
    }

    @Test
    void raiseGate_mergesByMaximumAndAnswersTheDeadlineInForce() {
        StateKey gate = new StateKey("sender-gate", "bot-1");
        assertThat(storage.raiseGate(gate, t0 + 10_000_000, now())).isEqualTo(t0 + 10_000_000);
        assertThat(storage.raiseGate(gate, t0 + 5_000_000, now())).isEqualTo(t0 + 10_000_000);
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(storage.raiseGate(gate, t0 + 15_000_000, now())).isEqualTo(t0 + 15_000_000);
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(15_000_000));
    }

    @Test
    void raiseGate_deadlineReached_opensTheGateAndForgetsIt() {
        StateKey gate = new StateKey("sender-gate", "bot-1");
        storage.raiseGate(gate, t0 + 10_000_000, now());
        clock.advanceMicros(9_999_999);
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(1));
        clock.advanceMicros(1);
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(storage.forget("bot-1")).isZero();
    }

    @Test
    void evaluate_passingAnOpenGate_neverChangesIt() {
        StateKey gate = new StateKey("sender-gate", "bot-1");
        assertThat(acquire(gate, Gate.INSTANCE, 3)).isEqualTo(Long.MAX_VALUE);
        assertThat(storage.forget("bot-1")).isZero();
        storage.raiseGate(gate, t0 - 1, now());
        assertThat(acquire(gate, Gate.INSTANCE, 3)).isEqualTo(Long.MAX_VALUE);
        assertThat(storage.raiseGate(gate, t0 + 1, now())).isEqualTo(t0 + 1);
    }

    @Test
    void addMember_expiringMembership_holdsUntilItsExpiry() {
        StateKey blocked = new StateKey("blocklist", "mallory");
        storage.addMember(blocked, t0 + 10_000_000, now());
        assertThat(storage.isMember(blocked, now())).isTrue();
        assertThat(acquire(blocked, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(acquire(blocked, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(storage.isMember(blocked, t0 + 9_999_999)).isTrue();
        assertThat(storage.isMember(blocked, t0 + 10_000_000)).isFalse();
        clock.advance(Duration.ofSeconds(10));
        assertThat(acquire(blocked, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(acquire(blocked, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void addMember_forGood_neverExpires() {
        StateKey registered = new StateKey("registered", "alice");
        storage.addMember(registered, Long.MAX_VALUE, now());
        clock.advance(Duration.ofDays(365 * 100));
        assertThat(storage.isMember(registered, now())).isTrue();
        assertThat(acquire(registered, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.NEVER);
        assertThat(acquire(registered, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void addMember_again_replacesTheEarlierExpiry() {
        StateKey blocked = new StateKey("blocklist", "mallory");
        storage.addMember(blocked, Long.MAX_VALUE, now());
        storage.addMember(blocked, t0 + 5_000_000, now());
        assertThat(acquire(blocked, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(5_000_000));
    }

    @Test
    void evaluate_membershipStepsInAnAdmittedBatch_neverChangeTheSet() {
        StateKey registered = new StateKey("registered", "alice");
        storage.addMember(registered, t0 + 10_000_000, now());
        Batch batch = Batch.of(
                new Step(registered, Membership.MUST_BE_PRESENT, 1),
                new Step(new StateKey("blocklist", "alice"), Membership.MUST_BE_ABSENT, 1),
                new Step(aliceMessages, fivePerSecond, 1));
        assertThat(storage.evaluate(batch, now()).admitted()).isTrue();
        assertThat(acquire(registered, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(storage.isMember(new StateKey("blocklist", "alice"), now())).isFalse();
    }

    @Test
    void removeMember_answersWhetherItWasAMember() {
        StateKey blocked = new StateKey("blocklist", "mallory");
        storage.addMember(blocked, Long.MAX_VALUE, now());
        assertThat(storage.removeMember(blocked)).isTrue();
        assertThat(storage.isMember(blocked, now())).isFalse();
        assertThat(storage.removeMember(blocked)).isFalse();
    }

    @Test
    void putRecord_versionsStartAtOneAndGrowByOne() {
        StateKey sender = new StateKey("sender", "bot-1");
        assertThat(storage.getRecord(sender)).isEmpty();
        assertThat(storage.putRecord(sender, bytes("v1"), 0)).isEqualTo(1);
        assertThat(storage.putRecord(sender, bytes("v2"), 1)).isEqualTo(2);
        assertThat(storage.getRecord(sender)).contains(new VersionedRecord(bytes("v2"), 2));
    }

    @Test
    void putRecord_staleVersion_changesNothing() {
        StateKey sender = new StateKey("sender", "bot-1");
        assertThat(storage.putRecord(sender, bytes("v1"), 1)).isEqualTo(-1);
        assertThat(storage.getRecord(sender)).isEmpty();
        storage.putRecord(sender, bytes("v1"), 0);
        assertThat(storage.putRecord(sender, bytes("lost"), 0)).isEqualTo(-1);
        assertThat(storage.putRecord(sender, bytes("lost"), 2)).isEqualTo(-1);
        assertThat(storage.getRecord(sender)).contains(new VersionedRecord(bytes("v1"), 1));
    }

    @Test
    void putRecord_keepsACopyOfTheBytes() {
        StateKey sender = new StateKey("sender", "bot-1");
        byte[] value = bytes("v1");
        storage.putRecord(sender, value, 0);
        value[0] = 'X';
        assertThat(storage.getRecord(sender).orElseThrow().value()).isEqualTo(bytes("v1"));
    }

    @Test
    void putRecord_negativeExpectedVersion_isRefused() {
        assertThatThrownBy(() -> storage.putRecord(new StateKey("sender", "bot-1"), bytes("v"), -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("expectedVersion must not be negative but was -1");
    }

    @Test
    void getRecord_muchLater_recordsNeverExpire() {
        StateKey sender = new StateKey("sender", "bot-1");
        storage.putRecord(sender, bytes("v1"), 0);
        clock.advance(Duration.ofDays(365 * 100));
        acquire(new StateKey("other", "bot-1"), thirtySeconds, 1);
        assertThat(storage.getRecord(sender)).contains(new VersionedRecord(bytes("v1"), 1));
    }

    @Test
    void forget_subject_removesEveryKindOfStateOfThatSubjectOnly() {
        acquire(aliceMessages, fivePerSecond, 5);
        acquire(bobMessages, fivePerSecond, 5);
        storage.raiseGate(new StateKey("gate", "alice"), t0 + 60_000_000, now());
        storage.addMember(new StateKey("blocklist", "alice"), Long.MAX_VALUE, now());
        storage.putRecord(new StateKey("profile", "alice"), bytes("a"), 0);

        assertThat(storage.forget("alice")).isEqualTo(4);

        assertThat(acquire(aliceMessages, fivePerSecond, 0)).isEqualTo(5);
        assertThat(acquire(new StateKey("gate", "alice"), Gate.INSTANCE, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(storage.isMember(new StateKey("blocklist", "alice"), now())).isFalse();
        assertThat(storage.getRecord(new StateKey("profile", "alice"))).isEmpty();
        assertThat(acquire(bobMessages, fivePerSecond, 1)).isEqualTo(Outcome.rejected(200_000));
        assertThat(storage.forget("alice")).isZero();
    }

    @Test
    void forget_subjectsOfAnyContent_matchOnlyExactly() {
        String odd = "al\nice {\"x\"} ü 🙂";
        acquire(new StateKey("messages", odd), fivePerSecond, 1);
        acquire(new StateKey("messages", "al"), fivePerSecond, 1);
        acquire(new StateKey("messages\nal", "ice"), fivePerSecond, 1);
        assertThat(storage.forget("al\nice")).isZero();
        assertThat(storage.forget(odd)).isEqualTo(1);
        assertThat(acquire(new StateKey("messages", "al"), fivePerSecond, 0)).isEqualTo(4);
    }

    @Test
    void evaluate_stateAtItsTtl_isDroppedThenAndNotEarlier() {
        StateKey fingerprint = new StateKey("seen", "fp");
        acquire(fingerprint, thirtySeconds, 1);
        assertThat(storage.evaluate(Batch.of(new Step(fingerprint, thirtySeconds, 0)), t0 + 29_999_999)
                        .admitted())
                .isFalse();
        assertThat(storage.forget("fp")).isEqualTo(1);

        acquire(fingerprint, thirtySeconds, 1);
        assertThat(storage.evaluate(Batch.of(new Step(fingerprint, thirtySeconds, 0)), t0 + 30_000_000)
                        .admitted())
                .isTrue();
        assertThat(storage.forget("fp")).isZero();
    }

    @Test
    void evaluate_commitThatLeavesStateEqualToAbsent_storesNothing() {
        acquire(aliceMessages, fivePerSecond, 0);
        acquire(aliceThrottle, thirtySeconds, 0);
        assertThat(storage.forget("alice")).isZero();
    }

    @Test
    void acquire_concurrentCallersBehindOneGate_admitExactlyTheCapacity() throws Exception {
        int threads = 8;
        int attemptsEach = 40;
        TokenBucket hundred = TokenBucket.of(100, Duration.ofHours(1));
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> admitted = new ArrayList<>();
            for (int i = 0; i < threads; i++) {
                admitted.add(pool.submit(() -> {
                    start.await();
                    int mine = 0;
                    for (int a = 0; a < attemptsEach; a++) {
                        if (Outcome.isAdmitted(storage.acquire(aliceMessages, hundred, 1, t0))) {
                            mine++;
                        }
                    }
                    return mine;
                }));
            }
            start.countDown();
            int total = 0;
            for (Future<Integer> f : admitted) {
                total += f.get(10, TimeUnit.SECONDS);
            }
            assertThat(total).isEqualTo(100);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void health_isAlwaysUp() {
        assertThat(storage.health().up()).isTrue();
        assertThat(storage.health().detail()).isEqualTo("reference");
        storage.close();
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
