package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.ManualTicker;
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
    private final MemoryStorage storage = MemoryStorage.builder().expiry(expiry).build();
    private final ReferenceStorage reference = ReferenceStorage.create();
    private final StateKey bucket = new StateKey("per-user", "u");

    /** Delegates to {@link HolderExpiry}; a thread with a hook runs it in its first callback on an existing entry. */
    private static final class HeldExpiry implements Expiry<String, Entry> {
        private final HolderExpiry delegate = new HolderExpiry();
        private final Map<Thread, Runnable> hooks = new ConcurrentHashMap<>();

        private void hook() {
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
            hook();
            return delegate.expireAfterUpdate(subject, entry, currentTime, currentDuration);
        }

        @Override
        public long expireAfterRead(String subject, Entry entry, long currentTime, long currentDuration) {
            hook();
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
     * After the race: a use just before the renewal the storage then expects takes both tokens; at the cache clock
     * where the stale change's expiry ends, the bucket must still be empty but for what refilled.
     */
    private void takeThenCheckAfterStaleExpiry() {
        long use = T0 + 2 * INTERVAL + AHEAD - 1;
        both(bucket, 2, use);
        long staleExpiry = T0 + 3 * INTERVAL;
        storage.cleanUp(staleExpiry);
        assertThat(storage.holder(bucket))
                .as("the bucket's holder, its state live until T0 + %d", use + 2 * SECOND - T0)
                .isNotNull();
        both(bucket, 2, staleExpiry);
    }

    @Test
    void renewalLosingToAStaleRenewal_neverDropsLiveState() throws Exception {
        both(bucket, 0, T0);
        assertThat(storage.entry("u")).isInstanceOf(BucketHolder.class);

        // The stale renewal is a look too: it leaves no state.
        race(now -> storage.acquire(bucket, BUCKET, 0, now));

        takeThenCheckAfterStaleExpiry();
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

        takeThenCheckAfterStaleExpiry();
    }

    @Test
    void aUseOfALoneKeyRenewedForFour_whileItJoinsAGroup_neverLosesItsState() throws Exception {
        both(bucket, 0, T0);
        // A look at the due time renews the lone key for four intervals, the next renewal due three later.
        storage.cleanUp(T0 + INTERVAL);
        both(bucket, 0, T0 + INTERVAL);
        assertThat(storage.entry("u").extensionDueMicros()).isEqualTo(T0 + 4 * INTERVAL);

        // Another key of the subject makes a group of both, on the clock T0 + I; held inside the cache's update,
        // where the cache has read its clock and still holds the lone holder.
        StateKey member = new StateKey("m1", "u");
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        FutureTask<Void> grouping = new FutureTask<>(() -> {
            expiry.hooks.put(Thread.currentThread(), () -> {
                held.countDown();
                await(go);
            });
            storage.addMember(member, T0 + INTERVAL + 1, T0 + INTERVAL);
            return null;
        });
        Thread joiner = new Thread(grouping);
        joiner.start();
        await(held);
        // A take more than an interval later (as a thread that found the lone holder just before and stalled would
        // do it): the lone holder's renewal is not due, so the cache hears nothing of it.
        long take = T0 + 2 * INTERVAL + INTERVAL / 2;
        both(bucket, 2, take);
        go.countDown();
        grouping.get();
        reference.addMember(member, T0 + INTERVAL + 1, T0 + INTERVAL);
        assertThat(storage.entry("u")).isInstanceOf(Group.class);

        // The take's state lives until two seconds after it: the group must keep it that long.
        long lastLive = take + 2 * SECOND - 1;
        storage.cleanUp(lastLive);
        assertThat(storage.holder(bucket))
                .as("the bucket's holder, its state live until T0 + %d", take + 2 * SECOND - T0)
                .isNotNull();
        both(bucket, 2, lastLive);
    }

    /** Whether {@code waiting} is blocked on a lock that {@code owner} holds (a cache update of the same subject). */
    private static boolean waitsForALockOf(Thread waiting, Thread owner) {
        ThreadInfo info = ManagementFactory.getThreadMXBean().getThreadInfo(waiting.getId());
        return info != null && info.getLockOwnerId() == owner.getId();
    }

    private static void await(CountDownLatch latch) {
        try {
            latch.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void join(Thread thread) {
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
