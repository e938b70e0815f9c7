package dev.guard.storage.memory;

import static dev.guard.storage.memory.Uninterrupted.await;
import static dev.guard.storage.memory.Uninterrupted.join;
import static org.assertj.core.api.Assertions.assertThat;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import org.junit.jupiter.api.Test;

/**
 * A renewal of a subject's cache expiry racing another change of that expiry made from an older clock: whichever
 * lands last, the storage must not believe the entry is kept longer than the cache keeps it, or a use that skips
 * the renewal commits state that the cache then drops while it lives.
 *
 * <p>The cache's expiry is wrapped so that a thread can be held inside its callback, where the cache has read the
 * entry's current expiry and not yet written the new one. One thread (the stale one) stops there on the clock T0 +
 * I; a second renews on the clock T0 + I + I/4 and, inside its own callback (if it gets there while the first is
 * held), lets the first finish before it goes on. If the second cannot get into its callback (it waits for a lock
 * that the first holds in the cache's update of the subject), the test lets the first go once the second waits.
 * Afterwards the bucket is used every second until past the renewal the storage then expects, against the reference.
 *
 * <p>The other tests hold one update of the subject there (a key that makes it a group, a record write that fails)
 * after a renewal for four intervals, while a use on a clock more than an interval later goes by that renewal's due
 * time: the state it commits must live its ttl whatever the held update then grants.
 */
class MemoryStorageRenewalRaceTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    /** Two tokens at one a second: the longest ttl is two seconds, the holder's interval that plus the slack. */
    private static final TokenBucket BUCKET = new TokenBucket(2, 1, Duration.ofSeconds(1));

    private static final long INTERVAL = 2 * SECOND + CallerClock.SLACK_MICROS;

    /** How far the second renewal's clock is ahead of the stale change's. */
    private static final long AHEAD = INTERVAL / 4;

    private final HeldExpiry expiry = new HeldExpiry();
    private final MemoryStorage storage =
            MemoryStorage.builder().expiry(expiry::wrapping).build();
    private final ReferenceStorage reference = ReferenceStorage.create();
    private final StateKey bucket = new StateKey("per-user", "u");

    /**
     * Delegates to the storage's expiry; a thread with a hook runs it in its first callback on an existing entry,
     * before the storage's expiry ({@link #hooks}: the cache has read its clock, the entry has not yet noted its next
     * due time) or after it ({@link #hooksAfter}: the cache has the new lifetime, and still holds the entry it held).
     */
    private static final class HeldExpiry implements Expiry<String, Entry> {
        private Expiry<String, Entry> delegate;
        private final Map<Thread, Runnable> hooks = new ConcurrentHashMap<>();
        private final Map<Thread, Runnable> hooksAfter = new ConcurrentHashMap<>();

        /** This, delegating to {@code storages}. */
        HeldExpiry wrapping(Expiry<String, Entry> storages) {
            this.delegate = storages;
            return this;
        }

        private static void hook(Map<Thread, Runnable> hooks) {
            Runnable hook = hooks.remove(Thread.currentThread());
            if (hook != null) {
                hook.run();
            }
        }

        @Override
        public long expireAfterCreate(String subject, Entry entry, long currentTime) {
            return delegate.expireAfterCreate(subject, entry, currentTime);
        }

        @Override
        public long expireAfterUpdate(String subject, Entry entry, long currentTime, long currentDuration) {
            hook(hooks);
            long lifetime = delegate.expireAfterUpdate(subject, entry, currentTime, currentDuration);
            hook(hooksAfter);
            return lifetime;
        }

        @Override
        public long expireAfterRead(String subject, Entry entry, long currentTime, long currentDuration) {
            hook(hooks);
            return delegate.expireAfterRead(subject, entry, currentTime, currentDuration);
        }
    }

    private long both(StateKey key, long permits, long nowMicros) {
        long expected = reference.acquire(key, BUCKET, permits, nowMicros);
        long actual = storage.acquire(key, BUCKET, permits, nowMicros);
        assertThat(Outcome.toString(actual))
                .as("%d permits at T0 + %d", permits, nowMicros - T0)
                .isEqualTo(Outcome.toString(expected));
        return actual;
    }

    /**
     * Runs {@code stale} at T0 + I (the cache's clock then) on a thread held inside its first expiry callback, then
     * a look at the bucket at T0 + I + AHEAD (which renews the subject's expiry, due since T0 + I) racing it as
     * described above; checks the look's outcome.
     */
    private void race(LongConsumer stale) throws Exception {
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        CountDownLatch renewing = new CountDownLatch(1);
        storage.cleanUp(T0 + INTERVAL);
        FutureTask<Void> staleTask = new FutureTask<>(() -> {
            expiry.hooks.put(Thread.currentThread(), () -> {
                held.countDown();
                await(go);
            });
            stale.accept(T0 + INTERVAL);
            return null;
        });
        Thread first = new Thread(staleTask);
        first.start();
        await(held);
        FutureTask<Long> look = new FutureTask<>(() -> {
            expiry.hooks.put(Thread.currentThread(), () -> {
                renewing.countDown();
                go.countDown();
                join(first);
            });
            return storage.acquire(bucket, BUCKET, 0, T0 + INTERVAL + AHEAD);
        });
        Thread second = new Thread(look);
        second.start();
        // Until the second renews inside its callback or waits for the first; or ends without doing either.
        while (renewing.getCount() > 0 && second.isAlive() && !waitsForALockOf(second, first)) {
            Thread.onSpinWait();
        }
        go.countDown();
        staleTask.get();
        assertThat(look.get()).isEqualTo(reference.acquire(bucket, BUCKET, 0, T0 + INTERVAL + AHEAD));
    }

    /**
     * After the race: takes both tokens, then one a second, each on a cache clock moved there first (which evicts what
     * expired), until two intervals past the renewal the storage then expects, and compares every outcome with the
     * reference. Whatever the renewals granted, a cache that dropped the bucket while it lived would refill it.
     */
    private void takeEverySecondUntilPastTheDueTime() {
        long due = storage.entry("u").extensionDueMicros();
        long t = T0 + INTERVAL + AHEAD + SECOND;
        storage.cleanUp(t);
        both(bucket, 2, t);
        for (t += SECOND; t <= due + 2 * INTERVAL; t += SECOND) {
            storage.cleanUp(t);
            both(bucket, 1, t);
        }
    }

    @Test
    void renewalLosingToAStaleRenewal_neverDropsLiveState() throws Exception {
        both(bucket, 0, T0);
        assertThat(storage.entry("u")).isInstanceOf(BucketHolder.class);

        // The stale renewal is a look too: it leaves no state.
        race(now -> storage.acquire(bucket, BUCKET, 0, now));

        takeEverySecondUntilPastTheDueTime();
    }

    @Test
    void groupRenewalRacingAStaleUpdateOfTheGroup_neverDropsLiveState() throws Exception {
        both(bucket, 0, T0);
        storage.addMember(new StateKey("m1", "u"), T0 + 1, T0);
        reference.addMember(new StateKey("m1", "u"), T0 + 1, T0);
        assertThat(storage.entry("u")).isInstanceOf(Group.class);

        // A record write on the stale clock that fails on its version: an update of the subject in the cache that
        // keeps the group as it is.
        race(now -> assertThat(storage.putRecord(new StateKey("profile", "u"), new byte[] {1}, 5))
                .isEqualTo(-1));

        takeEverySecondUntilPastTheDueTime();
    }

    /** A look at T0 + I, the due time of the bucket made at T0: renewed for four intervals, due three later. */
    private void renewForFourAtTheDueTime() {
        both(bucket, 0, T0);
        storage.cleanUp(T0 + INTERVAL);
        both(bucket, 0, T0 + INTERVAL);
        assertThat(storage.entry("u").extensionDueMicros()).isEqualTo(T0 + 4 * INTERVAL);
    }

    /**
     * After a renewal for four intervals at T0 + I: an update of the subject that keeps its entry (a record write that
     * fails on its version) on the clock T0 + I + I/4, held before its expiry callback, while a take of both tokens on
     * a clock gone on to T0 + 3I, which the due time lets pass without a renewal. Checks that the take's state lives its
     * ttl and that the due time did not move earlier.
     */
    private void takeAtThreeIntervalsWhileAFailedRecordWriteIsHeld() throws Exception {
        storage.cleanUp(T0 + INTERVAL + AHEAD);
        long take = T0 + 3 * INTERVAL;
        whileAnUpdateIsHeld(
                expiry.hooks,
                () -> assertThat(storage.putRecord(new StateKey("profile", "u"), new byte[] {1}, 5))
                        .isEqualTo(-1),
                () -> both(bucket, 2, take));

        checkTheTakeLivesItsTtl(take);
        assertThat(storage.entry("u").extensionDueMicros())
                .as("the due time, never earlier")
                .isEqualTo(T0 + 4 * INTERVAL);
    }

    /**
     * Runs {@code update} (a change of the subject through the cache's update of it) on a thread held inside the
     * update's expiry callback at {@code where} (one of {@link HeldExpiry}'s hooks); runs {@code meanwhile}, then
     * lets the update finish.
     */
    private void whileAnUpdateIsHeld(Map<Thread, Runnable> where, Runnable update, Runnable meanwhile)
            throws Exception {
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        FutureTask<Void> updating = new FutureTask<>(() -> {
            where.put(Thread.currentThread(), () -> {
                held.countDown();
                await(go);
            });
            update.run();
            return null;
        });
        new Thread(updating).start();
        await(held);
        try {
            meanwhile.run();
        } finally {
            go.countDown();
        }
        updating.get();
    }

    /**
     * A take of both tokens at {@code take}, then a look at the take's state at its last live microsecond, after the
     * cache's maintenance on that clock: the holder must be there and the bucket still the reference's.
     */
    private void checkTheTakeLivesItsTtl(long take) {
        long lastLive = take + 2 * SECOND - 1;
        storage.cleanUp(lastLive);
        assertThat(storage.holder(bucket))
                .as("the bucket's holder, its state live until T0 + %d", take + 2 * SECOND - T0)
                .isNotNull();
        both(bucket, 2, lastLive);
    }

    @Test
    void aUseOfALoneKeyRenewedForFour_whileItJoinsAGroup_neverLosesItsState() throws Exception {
        renewForFourAtTheDueTime();
        // Another key of the subject makes a group of both on the clock T0 + I, held once the group's lifetime is
        // computed and before the cache holds the group. The group has a copy of the lone holder, which is retired:
        // a take more than an interval later (as a thread that found the lone holder just before and read the clock
        // after would do it) waits for the group, whose lifetime covers the due time of the lone holder's renewal
        // for four, not yet reached, of which the cache hears nothing.
        StateKey member = new StateKey("m1", "u");
        long take = T0 + 2 * INTERVAL + INTERVAL / 2;
        Holder lone = storage.holder(bucket);
        FutureTask<Long> taking = new FutureTask<>(() -> both(bucket, 2, take));
        whileAnUpdateIsHeld(
                expiry.hooksAfter, () -> storage.addMember(member, T0 + INTERVAL + 1, T0 + INTERVAL), () -> {
                    assertThat(storage.holder(bucket))
                            .as("still the cache's entry")
                            .isSameAs(lone);
                    assertThat(lone.isDead())
                            .as("copied into the group and retired")
                            .isTrue();
                    new Thread(taking).start();
                });
        taking.get(60, TimeUnit.SECONDS);
        reference.addMember(member, T0 + INTERVAL + 1, T0 + INTERVAL);
        assertThat(storage.entry("u")).isInstanceOf(Group.class);

        checkTheTakeLivesItsTtl(take);
    }

    @Test
    void aUseGoingByARenewalForFour_whileAnUpdateThatGrantsLessIsHeld_neverLosesItsState() throws Exception {
        renewForFourAtTheDueTime();
        // An update of the subject that keeps its holder (a record write that fails on its version) on the clock
        // T0 + I + I/4, not at a due time: it would grant two intervals from then. Meanwhile a take on a clock that
        // went on to T0 + 3I, which the due time of the renewal for four lets pass without a renewal.
        takeAtThreeIntervalsWhileAFailedRecordWriteIsHeld();
    }

    @Test
    void aUseOfAGroupRenewedForFour_whileAnUpdateThatGrantsLessIsHeld_neverLosesItsState() throws Exception {
        // A group (the bucket and a membership that ends at once), made at T0 for two intervals and renewed at its
        // due time T0 + I by a look: four intervals, due three later, as a lone key in use.
        both(bucket, 0, T0);
        StateKey member = new StateKey("m1", "u");
        storage.addMember(member, T0 + 1, T0);
        reference.addMember(member, T0 + 1, T0);
        assertThat(storage.entry("u")).isInstanceOf(Group.class);
        storage.cleanUp(T0 + INTERVAL);
        both(bucket, 0, T0 + INTERVAL);
        assertThat(storage.entry("u").extensionDueMicros()).isEqualTo(T0 + 4 * INTERVAL);

        // An update of the subject that keeps the group (a record write that fails on its version) on the clock
        // T0 + I + I/4, before the due time: two intervals from then would end before T0 + 4I + I. Meanwhile a take
        // on a clock gone on to T0 + 3I, which the due time lets pass without a renewal.
        takeAtThreeIntervalsWhileAFailedRecordWriteIsHeld();
    }

    @Test
    void aUseGoingByTheDueTimeOfALongerKey_whileAnUpdateDropsThatKeyFromTheGroup_neverLosesItsState() throws Exception {
        // A group of a cooldown of 100 s (its interval longer than the bucket's) and the bucket, renewed when due by
        // a take (whose state the update below does not prune).
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(100));
        long longer = 100 * SECOND + CallerClock.SLACK_MICROS;
        StateKey pause = new StateKey("pause", "u");
        storage.acquire(pause, cooldown, 1, T0);
        both(bucket, 0, T0);
        storage.cleanUp(T0 + longer);
        both(bucket, 1, T0 + longer);
        // A renewal at its due time: four of the longer intervals, due one before their end.
        assertThat(storage.entry("u").extensionDueMicros()).isEqualTo(T0 + 4 * longer);

        // A new key of the subject on the clock a little later: its update drops the cooldown, long over, from the
        // group and would grant two of the bucket's intervals from then. Meanwhile a take on a clock more than an
        // interval of the bucket's later, which the group's due time of the longer key lets pass without a renewal.
        long update = T0 + longer + AHEAD;
        storage.cleanUp(update);
        StateKey member = new StateKey("m1", "u");
        long take = update + INTERVAL + SECOND;
        whileAnUpdateIsHeld(
                expiry.hooks, () -> storage.addMember(member, update + 1, update), () -> both(bucket, 2, take));
        reference.addMember(member, update + 1, update);
        assertThat(storage.holder(pause)).as("the cooldown, pruned").isNull();
        assertThat(storage.holder(bucket).extensionDueMicros())
                .as("the bucket made at T0")
                .isEqualTo(T0 + INTERVAL);

        checkTheTakeLivesItsTtl(take);
    }

    @Test
    void aUseGoingByTheDueTimeOfALongMembership_whileAnUpdateRemovesIt_neverLosesItsState() throws Exception {
        // A group of the bucket and a membership of a hundred intervals, which keeps it that long: its renewal is due
        // an interval of the bucket's before the membership ends.
        both(bucket, 0, T0);
        StateKey ban = new StateKey("banned", "u");
        storage.addMember(ban, T0 + 100 * INTERVAL, T0);
        reference.addMember(ban, T0 + 100 * INTERVAL, T0);
        assertThat(storage.entry("u").extensionDueMicros()).isEqualTo(T0 + 99 * INTERVAL);

        // The membership is removed on the clock T0 + I/4, the update held before its expiry callback: it grants what
        // the bucket needs from then, the due time moving earlier. Meanwhile a take on a clock gone on to T0 + 50I,
        // which the due time read before lets pass without a renewal.
        storage.cleanUp(T0 + AHEAD);
        long take = T0 + 50 * INTERVAL;
        whileAnUpdateIsHeld(
                expiry.hooks, () -> assertThat(storage.removeMember(ban)).isTrue(), () -> both(bucket, 2, take));
        reference.removeMember(ban);

        checkTheTakeLivesItsTtl(take);
    }

    /** Whether {@code waiting} is blocked on a lock that {@code owner} holds (a cache update of the same subject). */
    private static boolean waitsForALockOf(Thread waiting, Thread owner) {
        ThreadInfo info = ManagementFactory.getThreadMXBean().getThreadInfo(waiting.getId());
        return info != null && info.getLockOwnerId() == owner.getId();
    }
}
