package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A subject's keys as slots of one group: pruning, the sweep, expiry, forget, and concurrent additions. */
class MemoryStorageGroupTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    private final MemoryStorage storage = MemoryStorage.create();
    private final String user = "u:1";
    private final StateKey registered = new StateKey("set:registered", user);
    private final Cooldown duplicates = new Cooldown(Duration.ofSeconds(2));

    @AfterEach
    void close() {
        storage.close();
    }

    private static StateKey dup(String subject, int i) {
        return new StateKey("duplicates\0d:" + i, subject);
    }

    @Test
    void keysOfOneSubject_shareOneEntry() {
        storage.addMember(registered, Long.MAX_VALUE, T0);
        storage.acquire(new StateKey("per-user", user), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1, T0);
        storage.acquire(dup(user, 1), duplicates, 1, T0);

        assertThat(storage.estimatedSize()).isEqualTo(1);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);
        assertThat(((Group) storage.entry(user)).size()).isEqualTo(3);
        assertThat(storage.holder(registered)).isInstanceOf(DeadlineHolder.class);
    }

    @Test
    void slots_areFoundByEqualScopes_whereverTheyAre_andAnAbsentScopeIsNot() {
        // Enough slots to grow the group's array twice; scopes built at run time, so never the same strings.
        int count = 2 * Group.MIN_PRUNE_AT + 1;
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(1));
        for (int i = 0; i < count; i++) {
            storage.acquire(new StateKey(new StringBuilder("scope-").append(i).toString(), user), bucket, 1, T0);
        }

        assertThat(storage.entry(user)).isInstanceOf(Group.class);
        assertThat(((Group) storage.entry(user)).size()).isEqualTo(count);
        for (int i = 0; i < count; i++) {
            StateKey key = new StateKey(new StringBuilder("scope-").append(i).toString(), user);
            assertThat(storage.holder(key)).as("slot %d", i).isNotNull();
            assertThat(storage.acquire(key, bucket, 1, T0)).as("slot %d", i).isEqualTo(Outcome.admitted(3));
        }
        assertThat(storage.holder(new StateKey("scope-" + count, user))).isNull();
        assertThat(((Group) storage.entry(user)).size()).isEqualTo(count);
    }

    @Test
    void duplicateSlot_expiresForDecisions_thenIsPrunedWhenTheGroupIsRewritten() {
        storage.addMember(registered, Long.MAX_VALUE, T0);
        StateKey first = dup(user, 1);
        assertThat(storage.acquire(first, duplicates, 1, T0)).isEqualTo(Outcome.admitted(0));
        Holder firstHolder = storage.holder(first);

        assertThat(storage.acquire(first, duplicates, 1, T0 + SECOND)).isEqualTo(Outcome.rejected(SECOND));
        // Past its ttl the slot is absent for decisions, though the group still has it.
        long later = T0 + 3 * SECOND;
        assertThat(storage.acquire(first, duplicates, 0, later)).isEqualTo(Outcome.admitted(1));
        assertThat(storage.holder(first)).isSameAs(firstHolder);

        // Additions only append until the group has MIN_PRUNE_AT slots; the one that finds it full drops what expired.
        for (int i = 2; i <= Group.MIN_PRUNE_AT; i++) {
            assertThat(storage.acquire(dup(user, i), duplicates, 1, later)).isEqualTo(Outcome.admitted(0));
        }

        assertThat(storage.holder(first)).isNull();
        assertThat(firstHolder.isDead()).isTrue();
        assertThat(((Group) storage.entry(user)).size()).isEqualTo(Group.MIN_PRUNE_AT);
        assertThat(storage.isMember(registered, later)).isTrue();
        assertThat(storage.acquire(dup(user, 2), duplicates, 1, later)).isEqualTo(Outcome.rejected(2 * SECOND));
    }

    @Test
    void registeredUser_expiredLimitSlots_areReclaimedByTheSweep() {
        // A member for ever: the cache never expires the user's group, whose bucket and window expire in a minute.
        storage.addMember(registered, Long.MAX_VALUE, T0);
        StateKey bucket = new StateKey("per-user", user);
        StateKey window = new StateKey("per-user-minute", user);
        storage.acquire(bucket, new TokenBucket(5, 1, Duration.ofSeconds(1)), 1, T0);
        storage.acquire(window, new SlidingWindowLog(30, Duration.ofMinutes(1)), 1, T0);
        Holder bucketHolder = storage.holder(bucket);
        Holder windowHolder = storage.holder(window);
        assertThat(((Group) storage.entry(user)).size()).isEqualTo(3);

        // An hour later the user is idle and other subjects are written: each new slot advances the sweep by one
        // entry one time in SWEEP_EVERY, at random. 20,000 additions make 625 steps on average (standard deviation
        // 25) over 41 entries; the user's group is passed after at most 41 (plus restarts while the map doubles).
        long later = T0 + 3_600 * SECOND;
        for (int i = 0; i < 20_000; i++) {
            storage.acquire(dup("u:" + (2 + i % 40), i), duplicates, 1, later + i);
        }

        assertThat(((Group) storage.entry(user)).size()).isEqualTo(1);
        assertThat(bucketHolder.isDead()).isTrue();
        assertThat(windowHolder.isDead()).isTrue();
        assertThat(storage.isMember(registered, later + 20_000)).isTrue();
        assertThat(storage.acquire(bucket, new TokenBucket(5, 1, Duration.ofSeconds(1)), 1, later + 20_000))
                .isEqualTo(Outcome.admitted(4));
    }

    @Test
    void registeredUser_limitSlotThatDroppedARecord_isReclaimedByTheSweepOnceExpired() {
        // A member for ever, and a record whose key a bucket then takes over: the commit drops the record, and the
        // bucket's state expires in a second. The group is idle afterwards: only the sweep can reclaim that slot.
        storage.addMember(registered, Long.MAX_VALUE, T0);
        StateKey profile = new StateKey("profile", user);
        storage.putRecord(profile, new byte[] {1}, 0);
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(1));
        assertThat(storage.acquire(profile, bucket, 1, T0)).isEqualTo(Outcome.admitted(4));
        assertThat(storage.getRecord(profile)).isEmpty();
        Holder limit = storage.holder(profile);

        // An hour later: what the sweep does when it reaches the group.
        long later = T0 + 3_600 * SECOND;
        storage.cleanUp(later);
        Group group = (Group) storage.entry(user);
        group.prune(storage.clockMicros());

        assertThat(group.size()).isEqualTo(1);
        assertThat(limit.isDead()).isTrue();
        assertThat(storage.isMember(registered, later)).isTrue();
    }

    @Test
    void groupExpiry_followsItsLongestLivedSlot() {
        FixedWindow throttle = new FixedWindow(20, Duration.ofMinutes(1));
        StateKey chat = new StateKey("per-chat", user);
        storage.acquire(chat, throttle, 1, T0);
        for (int i = 1; i <= 3; i++) {
            storage.acquire(dup(user, i), duplicates, 1, T0);
        }

        // The duplicates' cooldowns ended long ago; the window's state lives until the end of its minute.
        storage.cleanUp(T0 + 50 * SECOND);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);
        assertThat(storage.acquire(chat, throttle, 0, T0 + 50 * SECOND)).isEqualTo(Outcome.admitted(19));

        // Two of the window's intervals after its state ends, the cache drops the whole group.
        storage.cleanUp(T0 + 60 * SECOND + 2 * (60 * SECOND + CallerClock.SLACK_MICROS));
        assertThat(storage.entry(user)).isNull();
    }

    @Test
    void groupExpiry_afterItsLongestLivedKeyIsRemoved_followsTheKeysLeft() {
        // A user banned for a year, whose group the ban keeps that long, and a bucket used once.
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        long interval = 2 * SECOND + CallerClock.SLACK_MICROS;
        StateKey limit = new StateKey("per-user", user);
        StateKey ban = new StateKey("set:banned", user);
        storage.acquire(limit, bucket, 1, T0);
        storage.addMember(ban, T0 + 365 * 86_400 * SECOND, T0);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);

        // The ban is lifted a second later: the group holds only the bucket, idle since T0, and goes as the bucket
        // alone would, within four of its intervals, not when the ban would have ended.
        storage.cleanUp(T0 + SECOND);
        assertThat(storage.removeMember(ban)).isTrue();
        storage.cleanUp(T0 + Holder.REGULAR_INTERVALS * interval);
        assertThat(storage.entry(user)).isNull();
    }

    @Test
    void forget_removesTheWholeGroupAtOnce() {
        storage.addMember(registered, Long.MAX_VALUE, T0);
        storage.acquire(new StateKey("per-user", user), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1, T0);
        storage.putRecord(new StateKey("record", user), new byte[] {1}, 0);
        storage.acquire(new StateKey("per-user", "u:2"), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1, T0);
        Group group = (Group) storage.entry(user);

        assertThat(storage.forget(user)).isEqualTo(3);

        assertThat(storage.entry(user)).isNull();
        assertThat(group.isDead()).isTrue();
        assertThat(group.holders()).allMatch(Holder::isDead);
        assertThat(storage.isMember(registered, T0)).isFalse();
        assertThat(storage.holder(new StateKey("per-user", "u:2"))).isNotNull();
        assertThat(storage.forget(user)).isZero();
    }

    @Test
    void race_slotAdditionsAndBatchesOnOneGroup_admitExactlyTheLimitAndLoseNoSlot() throws Exception {
        // Every thread adds new cooldown keys to one user, alone and in batches with the user's shared window of 100:
        // slots come and go (copy on write) while other threads read and commit through the group. Exactly 100 batches
        // pass, and every cooldown that a decision admitted is still there afterwards.
        FixedWindow shared = new FixedWindow(100, Duration.ofMinutes(1));
        StateKey window = new StateKey("per-user", user);
        Cooldown cooldown = new Cooldown(Duration.ofMinutes(5));
        storage.addMember(registered, Long.MAX_VALUE, T0);
        int threads = 4;
        int rounds = 300;
        CountDownLatch gate = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<List<StateKey>>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                futures.add(pool.submit(() -> {
                    gate.await();
                    List<StateKey> admitted = new ArrayList<>();
                    for (int i = 0; i < rounds; i++) {
                        StateKey alone = new StateKey("alone-" + thread + "-" + i, user);
                        if (Outcome.isAdmitted(storage.acquire(alone, cooldown, 1, T0))) {
                            admitted.add(alone);
                        }
                        StateKey batched = new StateKey("batched-" + thread + "-" + i, user);
                        Batch batch = Batch.of(
                                new Step(registered, Membership.MUST_BE_PRESENT, 1),
                                new Step(batched, cooldown, 1),
                                new Step(window, shared, 1));
                        if (storage.evaluate(batch, T0).admitted()) {
                            admitted.add(batched);
                        }
                    }
                    return admitted;
                }));
            }
            gate.countDown();
            List<StateKey> admitted = new ArrayList<>();
            for (Future<List<StateKey>> f : futures) {
                admitted.addAll(f.get(60, TimeUnit.SECONDS));
            }

            assertThat(admitted.stream().filter(k -> k.scope().startsWith("batched")))
                    .hasSize(100);
            assertThat(admitted.stream().filter(k -> k.scope().startsWith("alone")))
                    .hasSize(threads * rounds);
            for (StateKey key : admitted) {
                assertThat(storage.acquire(key, cooldown, 1, T0 + 1))
                        .as("cooldown %s", key.scope())
                        .isEqualTo(Outcome.rejected(5 * 60 * SECOND - 1));
            }
            assertThat(Outcome.isAdmitted(storage.acquire(window, shared, 1, T0 + 1)))
                    .isFalse();
        } finally {
            pool.shutdownNow();
        }
    }
}
