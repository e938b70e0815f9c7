package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
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
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The lock-free holders, their fallbacks to the locked one, and their agreement with the reference. */
class MemoryStorageFastPathTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    private final MemoryStorage storage = MemoryStorage.create();
    private final ReferenceStorage reference = ReferenceStorage.create();
    private final StateKey key = new StateKey("limit", "user-1");

    @AfterEach
    void close() {
        storage.close();
    }

    /** Acquires on both storages and demands the same outcome; answers it. */
    private long both(LimitSpec spec, long permits, long nowMicros) {
        long expected = reference.acquire(key, spec, permits, nowMicros);
        long actual = storage.acquire(key, spec, permits, nowMicros);
        assertThat(Outcome.toString(actual))
                .as("%s, %d permits at %d", spec, permits, nowMicros)
                .isEqualTo(Outcome.toString(expected));
        return actual;
    }

    @Test
    void acquire_tokenBucket_keepsGcraHolder() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));

        both(bucket, 1, T0);

        assertThat(storage.holder(key)).isInstanceOf(BucketHolder.class);
    }

    @Test
    void acquire_fixedWindow_keepsPackedHolderThroughEdgesLooksAndClockBacks() {
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(1));
        long start = Math.floorDiv(T0, SECOND) * SECOND;

        // A look on an absent key writes an empty window, as the reference's commit of zero permits does.
        both(window, 0, start + 100);
        assertThat(storage.holder(key)).isInstanceOf(WindowHolder.class);
        both(window, 2, start + 200);
        assertThat(both(window, 2, start + 300)).isEqualTo(Outcome.rejected(SECOND - 300));
        assertThat(both(window, 4, start + 300)).isEqualTo(Outcome.NEVER);
        both(window, 1, start + SECOND - 1);
        both(window, 1, start + SECOND);
        // A clock that went back stays in the newest window seen: one of three taken there.
        assertThat(both(window, 3, start + SECOND - 5)).isEqualTo(Outcome.rejected(SECOND + 5));
        both(window, 2, start + SECOND - 5);
        both(window, 0, start + SECOND - 4);
        assertThat(storage.holder(key)).isInstanceOf(WindowHolder.class);
    }

    @Test
    void acquire_fixedWindowExpiredThenRefusedThenClockBack_readsAbsentAsTheReferenceDropsIt() {
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(1));
        long start = Math.floorDiv(T0, SECOND) * SECOND;

        both(window, 2, start);
        // Two windows later the state has expired: a step asking more than the limit is refused, and the reference
        // drops the expired state on that read ...
        assertThat(both(window, 4, start + 2 * SECOND)).isEqualTo(Outcome.NEVER);
        // ... so a clock back in the first window finds it empty, not holding two.
        assertThat(both(window, 3, start + 10)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void acquire_fixedWindowOfOneMicrosecondNear2pow53_staysExactThenConverts() {
        // The largest limit a window of one microsecond may have in the packed holder: 1,023, ten bits of count.
        FixedWindow window = new FixedWindow(1_023, Duration.ofNanos(1_000));
        long late = (1L << 53) - 3;

        both(window, 1_000, late);
        assertThat(storage.holder(key)).isInstanceOf(WindowHolder.class);
        both(window, 23, late);
        assertThat(both(window, 1, late)).isEqualTo(Outcome.rejected(1));
        both(window, 1_023, late + 1);
        both(window, 1, late + 2);
        both(window, 5, 1L << 53);
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        both(window, 1, (1L << 53) + 1);
    }

    @Test
    void acquire_fixedWindowWhoseEncodingCouldOverflow_usesLockedHolderWithSameDecisions() {
        // 1,024 per microsecond: eleven bits of count beside the index of any of 2^53 windows would not fit a long.
        FixedWindow window = new FixedWindow(1_024, Duration.ofNanos(1_000));

        both(window, 1_024, T0);
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        both(window, 1, T0);
        both(window, 3, T0 + 1);
    }

    @Test
    void acquire_cooldownGateAndMembership_keepDeadlineHolders() {
        StateKey gate = new StateKey("gate", "user-1");
        StateKey member = new StateKey("blocklist", "user-1");

        storage.acquire(key, new Cooldown(Duration.ofSeconds(1)), 1, T0);
        storage.raiseGate(gate, T0 + SECOND, T0);
        storage.addMember(member, Long.MAX_VALUE, T0);

        assertThat(storage.holder(key)).isInstanceOf(DeadlineHolder.class);
        assertThat(storage.holder(gate)).isInstanceOf(DeadlineHolder.class);
        assertThat(storage.holder(member)).isInstanceOf(DeadlineHolder.class);
    }

    @Test
    void acquire_rateOf1021TicksPerMicro_staysExactNear2pow53() {
        // 1021 tokens per microsecond, 5 tokens: the largest rate the GCRA holder takes.
        TokenBucket bucket = new TokenBucket(5, 1021, Duration.ofNanos(1_000));
        long late = (1L << 53) - 10;

        both(bucket, 5, late);
        assertThat(storage.holder(key)).isInstanceOf(BucketHolder.class);
        both(bucket, 1, late);
        both(bucket, 5, late + 1);
        both(bucket, 0, late + 2);
        both(bucket, 5, late + 9);
    }

    @Test
    void acquire_rateAbove1021TicksPerMicro_usesLockedHolderWithSameDecisions() {
        // 1022 ticks per microsecond: now * ticksPerMicro could overflow a long for times below 2^53.
        TokenBucket bucket = new TokenBucket(5, 1022, Duration.ofNanos(1_000));

        both(bucket, 5, T0);
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        both(bucket, 1, T0);
        both(bucket, 5, T0 + 1);
        both(bucket, 3, (1L << 62) + 7);
    }

    @Test
    void acquire_timeBeyond2pow53_convertsBucketKeepingItsState() {
        // One token per 100_000 days (274 years): taken in 2026, not yet back in 2255.
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofDays(100_000));
        long far = (1L << 53) + 5;

        both(bucket, 1, T0);
        assertThat(storage.holder(key)).isInstanceOf(BucketHolder.class);
        assertThat(Outcome.isAdmitted(both(bucket, 1, far))).isFalse();
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        both(bucket, 0, far + 1);
        both(bucket, 1, T0 + Duration.ofDays(100_000).toNanos() / 1_000);
    }

    @Test
    void acquire_negativeTime_agreesWithReference() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        StateKey other = new StateKey("cooldown", "user-1");

        both(bucket, 2, -5 * SECOND);
        both(bucket, 1, -4_500_000);
        both(bucket, 1, -4 * SECOND);
        assertThat(storage.acquire(other, cooldown, 1, -SECOND))
                .isEqualTo(reference.acquire(other, cooldown, 1, -SECOND));
        assertThat(storage.acquire(other, cooldown, 1, -1)).isEqualTo(reference.acquire(other, cooldown, 1, -1));
    }

    @Test
    void acquire_lookAfterCommit_movesLastLikeReference() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));

        both(bucket, 1, T0 + SECOND);
        // The look moves the bucket's last update to T0+1.5s, where it holds 1.5 tokens ...
        both(bucket, 0, T0 + 1_500_000);
        // ... so a caller whose clock is behind still sees 1.5 tokens: half a token missing for two, which refills
        // from T0+1.5s on, 0.3 s after this caller's time.
        assertThat(both(bucket, 2, T0 + 1_200_000)).isEqualTo(Outcome.rejected(800_000));
    }

    @Test
    void acquire_expiredBucketThenClockBack_isFresh() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));

        both(bucket, 1, T0 + SECOND);
        // Refilled at T0+2s: the reference drops the state when it reads it later ...
        both(bucket, 2, T0 + 3 * SECOND);
        // ... and a clock back at T0+2.5s sees what was committed at T0+3s, frozen there.
        both(bucket, 1, T0 + 2_500_000);
        both(bucket, 1, T0 + 4 * SECOND);
    }

    @Test
    void keyUsedByAnotherKind_convertsAndStaysExact() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(10));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));

        both(bucket, 1, T0);
        both(window, 1, T0 + 1);
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        both(bucket, 1, T0 + 2);
        both(cooldown, 1, T0 + 3);
        both(Gate.INSTANCE, 1, T0 + 4);
        both(Membership.MUST_BE_ABSENT, 1, T0 + 5);
        assertThat(storage.raiseGate(key, T0 + SECOND, T0 + 5))
                .isEqualTo(reference.raiseGate(key, T0 + SECOND, T0 + 5));
        both(Gate.INSTANCE, 1, T0 + 6);
        both(cooldown, 1, T0 + 7);
        assertThat(storage.raiseGate(key, T0 + 2 * SECOND, T0 + 7))
                .isEqualTo(reference.raiseGate(key, T0 + 2 * SECOND, T0 + 7));
        assertThat(storage.isMember(key, T0 + 8)).isEqualTo(reference.isMember(key, T0 + 8));
        assertThat(storage.removeMember(key)).isEqualTo(reference.removeMember(key));
    }

    @Test
    void deadHolder_sendsCallersBackToTheCache() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        storage.acquire(key, bucket, 3, T0);
        Holder evicted = storage.holder(key);

        storage.cleanUp(T0 + 3_600 * SECOND);

        assertThat(storage.holder(key)).isNull();
        assertThat(evicted.isDead()).isTrue();
        assertThat(evicted.tryAcquire(bucket, 1, T0 + 3_600 * SECOND)).isEqualTo(Holder.SLOW);
        assertThat(storage.acquire(key, bucket, 1, T0 + 3_600 * SECOND)).isEqualTo(Outcome.admitted(2));
        assertThat(storage.holder(key)).isNotSameAs(evicted).isInstanceOf(BucketHolder.class);
    }

    @Test
    void race_batchesCommittingWhatTheOtherReads_admitExactlyOne() throws Exception {
        // Each batch starts a cooldown on one key and reads the other key's deadline as a gate: the first admitted
        // batch cools its key, which every later batch of the other kind reads, and cools nothing else. So exactly
        // one batch is admitted; two would mean both read the other's key before either committed.
        Cooldown cooldown = new Cooldown(Duration.ofMinutes(1));
        StateKey c = new StateKey("cooldown", "c");
        StateKey d = new StateKey("cooldown", "d");
        storage.acquire(c, cooldown, 0, T0);
        storage.acquire(d, cooldown, 0, T0);
        int threads = 4;
        CountDownLatch gate = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                boolean first = t % 2 == 0;
                futures.add(pool.submit(() -> {
                    gate.await();
                    int admitted = 0;
                    for (int i = 0; i < 2_000; i++) {
                        StateKey mine = first ? c : d;
                        StateKey theirs = first ? d : c;
                        Batch batch = Batch.of(new Step(mine, cooldown, 1), new Step(theirs, Gate.INSTANCE, 1));
                        if (storage.evaluate(batch, T0).admitted()) {
                            admitted++;
                        }
                    }
                    return admitted;
                }));
            }
            gate.countDown();
            int admitted = 0;
            for (Future<Integer> f : futures) {
                admitted += f.get(60, TimeUnit.SECONDS);
            }
            assertThat(admitted).isEqualTo(1);
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void race_acquireWithAdvancingClocks_neverAdmitsMoreThanCapacityPlusRefill() throws Exception {
        // 10 tokens, one per 100 microseconds; every call takes the next microsecond of a shared clock.
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofNanos(100_000));
        AtomicLong clock = new AtomicLong(T0);
        int threads = 4;
        int calls = 5_000;
        CountDownLatch gate = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                futures.add(pool.submit(() -> {
                    gate.await();
                    int admitted = 0;
                    for (int i = 0; i < calls; i++) {
                        if (Outcome.isAdmitted(storage.acquire(key, bucket, 1, clock.getAndIncrement()))) {
                            admitted++;
                        }
                    }
                    return admitted;
                }));
            }
            gate.countDown();
            long admitted = 0;
            for (Future<Integer> f : futures) {
                admitted += f.get(60, TimeUnit.SECONDS);
            }
            long elapsed = clock.get() - 1 - T0;
            assertThat(admitted).isLessThanOrEqualTo(10 + elapsed / 100);
            assertThat(admitted).isPositive();
        } finally {
            pool.shutdownNow();
        }
    }
}
