package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;
import org.junit.jupiter.api.Test;

/**
 * Invariants of the storage's contract under races and at extremes, from a review. Rounds of threads in lock step, each
 * round's admissions counted exactly, over one subject's slots of many ttls, with the fast and batch paths, churn,
 * prunes, sweeps, evictions, clocks going back within a round, and limits changing at their keys. Then two races that
 * lost a group's state before the fix (a slot added to a user's group, found at once by a thread that had read the
 * group's renewal time before the slot brought it forward: the group was dropped before the slot's state expired, and
 * a permit was granted twice), and a token bucket committed near {@code Long.MAX_VALUE}, whose expiry overflowed.
 * {@code -Dguard.rounds=N} runs more rounds.
 */
class MemoryStorageRoundsTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    // ---------------------------------------------------------------------------------------------------------------
    // Arithmetic at extremes

    @Test
    void tokenBucket_committedNearLongMax_keepsItsStateAsTheReference() {
        // The reference stores expiresAt = Saturated.plus(now, ttl): near Long.MAX_VALUE the state never expires.
        MemoryStorage storage = MemoryStorage.create();
        ReferenceStorage reference = ReferenceStorage.create();
        StateKey key = new StateKey("limit", "u");
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofSeconds(1));
        long now = Long.MAX_VALUE - 10;
        assertThat(storage.acquire(key, bucket, 1, now)).isEqualTo(reference.acquire(key, bucket, 1, now));
        assertThat(storage.acquire(key, bucket, 1, now + 1))
                .as("second take one microsecond later")
                .isEqualTo(reference.acquire(key, bucket, 1, now + 1));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Rounds: every thread's calls of round R carry a time in [R * STEP, R * STEP + SKEW] (backwards and forwards
    // between threads and calls), and every deadline falls strictly between two rounds' ranges, so that every call of
    // a round sees the same state, the newest clock included: the outcome counts of a round are exact.

    private static final long STEP = 10_000;
    private static final long SKEW = 4_000;

    private static long at(int round) {
        return T0 + round * STEP + ThreadLocalRandom.current().nextLong(SKEW + 1);
    }

    @Test
    void rounds_oneSubjectsSlotsOfManyTtls_withChurnAndTheFastAndBatchPaths_decideExactly() throws Exception {
        runRounds(false);
    }

    @Test
    void rounds_sameWithTheLimitsChangingAtTheirKeys_decideExactly() throws Exception {
        runRounds(true);
    }

    private void runRounds(boolean changingSpecs) throws Exception {
        MemoryStorage storage = MemoryStorage.create();
        String u = "u";
        // Admitted every 4 rounds: a deadline 35 ms after a time of round R falls between rounds R + 3 and R + 4.
        Cooldown cooldown = new Cooldown(Duration.ofMillis(35));
        Cooldown cooldown2 = new Cooldown(Duration.ofMillis(35).plusNanos(1_000));
        // 7 per 50 ms: five rounds per window, windows start at round multiples of 5 (T0 is a whole second).
        FixedWindow window = new FixedWindow(7, Duration.ofMillis(50));
        // 5 in any 25 ms: a permit of round R leaves in round R + 3.
        SlidingWindowLog log = new SlidingWindowLog(5, Duration.ofMillis(25));
        TokenBucket bucket = new TokenBucket(40, 1, Duration.ofDays(1000));
        Cooldown churn = new Cooldown(Duration.ofMillis(5));
        StateKey cd = new StateKey("cooldown", u);
        StateKey win = new StateKey("window", u);
        StateKey lg = new StateKey("log", u);
        StateKey bk = new StateKey("bucket", u);
        StateKey registered = new StateKey("registered", u);
        StateKey ban = new StateKey("ban", u);
        StateKey chatWindow = new StateKey("chat-window", "chat");
        FixedWindow roomy = new FixedWindow(1_000_000, Duration.ofMillis(50));
        int lone = 8;
        storage.addMember(registered, Long.MAX_VALUE, T0);

        int threads = 6;
        int rounds = Integer.getInteger("guard.rounds", 600);
        AtomicLongArray cdCount = new AtomicLongArray(rounds);
        AtomicLongArray winCount = new AtomicLongArray(rounds);
        AtomicLongArray logCount = new AtomicLongArray(rounds);
        AtomicLongArray loneCount = new AtomicLongArray(rounds * lone);
        AtomicLongArray loneCalls = new AtomicLongArray(rounds * lone);
        AtomicLong bucketCount = new AtomicLong();
        AtomicReference<String> failure = new AtomicReference<>();
        int[] lastCd = {-100};
        int[] lastLone = new int[lone];
        Arrays.fill(lastLone, -100);
        long[] logHistory = new long[rounds];
        int[] round = {0};
        CyclicBarrier barrier = new CyclicBarrier(threads, () -> {
            int r = round[0];
            long c = cdCount.get(r);
            long expected = r >= lastCd[0] + 4 ? 1 : 0;
            if (c != expected && failure.get() == null) {
                failure.set("round " + r + ": cooldown admitted " + c + ", expected " + expected);
            }
            if (c > 0) {
                lastCd[0] = r;
            }
            for (int s = 0; s < lone; s++) {
                long calls = loneCalls.get(r * lone + s);
                long got = loneCount.get(r * lone + s);
                long exp = calls > 0 && r >= lastLone[s] + 4 ? 1 : 0;
                if (got != exp && failure.get() == null) {
                    failure.set("round " + r + ": lone key " + s + " admitted " + got + ", expected " + exp);
                }
                if (got > 0) {
                    lastLone[s] = r;
                }
            }
            long logExpected = 5 - (r >= 1 ? logHistory[r - 1] : 0) - (r >= 2 ? logHistory[r - 2] : 0);
            logHistory[r] = logCount.get(r);
            if (logCount.get(r) != logExpected && failure.get() == null) {
                failure.set("round " + r + ": log admitted " + logCount.get(r) + ", expected " + logExpected);
            }
            if (r % 5 == 4) {
                long sum = 0;
                for (int k = r - 4; k <= r; k++) {
                    sum += winCount.get(k);
                }
                long lo = 7;
                long hi = changingSpecs ? 8 : 7;
                if ((sum < lo || sum > hi) && failure.get() == null) {
                    failure.set("window ending at round " + r + ": admitted " + sum);
                }
            }
            if (bucketCount.get() > 40 && failure.get() == null) {
                failure.set("round " + r + ": bucket admitted " + bucketCount.get());
            }
            round[0] = r + 1;
        });
        FixedWindow window2 = new FixedWindow(8, Duration.ofMillis(50));
        List<Thread> workers = new ArrayList<>();
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        for (int t = 0; t < threads; t++) {
            int thread = t;
            Thread worker = new Thread(() -> {
                ThreadLocalRandom random = ThreadLocalRandom.current();
                try {
                    for (int r = 0; r < rounds; r++) {
                        Cooldown myCooldown = changingSpecs && random.nextBoolean() ? cooldown2 : cooldown;
                        FixedWindow myWindow = changingSpecs && random.nextBoolean() ? window2 : window;
                        for (int op = 0; op < 6; op++) {
                            switch (random.nextInt(10)) {
                                case 0 -> {
                                    if (Outcome.isAdmitted(storage.acquire(cd, myCooldown, 1, at(r)))) {
                                        cdCount.incrementAndGet(r);
                                    }
                                }
                                case 1 -> {
                                    Batch b = Batch.of(
                                            new Step(registered, Membership.MUST_BE_PRESENT, 1),
                                            new Step(bk, bucket, 1),
                                            new Step(win, myWindow, 1));
                                    if (storage.evaluate(b, at(r)).admitted()) {
                                        bucketCount.incrementAndGet();
                                        winCount.incrementAndGet(r);
                                    }
                                }
                                case 2 -> {
                                    if (Outcome.isAdmitted(storage.acquire(bk, bucket, 1, at(r)))) {
                                        bucketCount.incrementAndGet();
                                    }
                                }
                                case 3 -> {
                                    if (Outcome.isAdmitted(storage.acquire(win, myWindow, 1, at(r)))) {
                                        winCount.incrementAndGet(r);
                                    }
                                }
                                case 4 -> {
                                    Batch b = Batch.of(
                                            new Step(cd, myCooldown, 1),
                                            new Step(chatWindow, roomy, 1),
                                            new Step(ban, Gate.INSTANCE, 1),
                                            new Step(lg, log, 1));
                                    if (storage.evaluate(b, at(r)).admitted()) {
                                        cdCount.incrementAndGet(r);
                                        logCount.incrementAndGet(r);
                                    }
                                }
                                case 5 -> {
                                    if (Outcome.isAdmitted(storage.acquire(lg, log, 1, at(r)))) {
                                        logCount.incrementAndGet(r);
                                    }
                                }
                                case 6 -> {
                                    // Churn: new short-lived slots in the subject's group.
                                    for (int i = 0; i < 4; i++) {
                                        StateKey k = new StateKey("churn-" + thread + "-" + r + "-" + i, u);
                                        storage.acquire(k, churn, 1, at(r));
                                    }
                                }
                                case 7 -> {
                                    int g = random.nextInt(20);
                                    long now = at(r);
                                    switch (random.nextInt(4)) {
                                        case 0 -> storage.raiseGate(new StateKey("gate-" + g, u), now - 1, now);
                                        case 1 -> storage.addMember(new StateKey("set-" + g, u), now + 3_000, now);
                                        case 2 -> storage.removeMember(new StateKey("set-" + g, u));
                                        default -> {
                                            StateKey rec = new StateKey("rec-" + g, u);
                                            long v = storage.getRecord(rec)
                                                    .map(x -> x.version())
                                                    .orElse(0L);
                                            storage.putRecord(rec, new byte[] {(byte) r}, v);
                                        }
                                    }
                                }
                                default -> {
                                    int s = random.nextInt(lone);
                                    loneCalls.incrementAndGet(r * lone + s);
                                    if (Outcome.isAdmitted(
                                            storage.acquire(new StateKey("lone", "v" + s), myCooldown, 1, at(r)))) {
                                        loneCount.incrementAndGet(r * lone + s);
                                    }
                                    // Other subjects' short keys, so that the cache evicts as time goes on.
                                    storage.acquire(
                                            new StateKey("x", "x-" + thread + "-" + r + "-" + s), churn, 1, at(r));
                                }
                            }
                        }
                        // Make sure the cooldown, window and log are tried every round.
                        if (thread == 0) {
                            if (Outcome.isAdmitted(storage.acquire(cd, myCooldown, 1, at(r)))) {
                                cdCount.incrementAndGet(r);
                            }
                            for (int i = 0; i < 8; i++) {
                                if (Outcome.isAdmitted(storage.acquire(win, myWindow, 1, at(r)))) {
                                    winCount.incrementAndGet(r);
                                }
                                if (Outcome.isAdmitted(storage.acquire(lg, log, 1, at(r)))) {
                                    logCount.incrementAndGet(r);
                                }
                            }
                            for (int i = 0; i < 41; i++) {
                                if (Outcome.isAdmitted(storage.acquire(bk, bucket, 1, at(r)))) {
                                    bucketCount.incrementAndGet();
                                }
                            }
                        }
                        barrier.await(60, TimeUnit.SECONDS);
                    }
                } catch (Throwable e) {
                    thrown.compareAndSet(null, e);
                    barrier.reset();
                }
            });
            workers.add(worker);
            worker.start();
        }
        for (Thread w : workers) {
            w.join(TimeUnit.MINUTES.toMillis(2));
        }
        if (thrown.get() != null && !(thrown.get() instanceof BrokenBarrierException)) {
            throw new AssertionError(thrown.get());
        }
        assertThat(failure.get()).isNull();
        assertThat(bucketCount.get()).isEqualTo(40);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // A slot added to a group with a longer interval than the group's, racing a use on a later clock

    /** {@code n} scopes of one length and one hash code (so a scan for one compares the others' contents). */
    private static List<String> collidingScopes(int n) {
        String prefix = "s".repeat(2_000);
        List<String> out = new ArrayList<>();
        for (int bits = 0; out.size() < n; bits++) {
            StringBuilder b = new StringBuilder(prefix);
            for (int i = 0; i < 6; i++) {
                b.append(((bits >> i) & 1) == 0 ? "Aa" : "BB");
            }
            out.add(b.toString());
        }
        return out;
    }

    @Test
    void groupSlotAddedWithALongerInterval_usedAtOnceOnALaterClock_keepsItsStateUntilItsTtl() throws Exception {
        // Subject u: 20 cooldowns of 10 s made at t, one group whose cache expiry is t + 2 * 10.001 s, due at t +
        // 10.001 s. Thread X adds a new key c (a cooldown of 15 s) on the clock t: the addition lowers the group's due
        // time to t + 20.002 - 15.001 = t + 5.001 s, after publishing the slot, and X does not renew (its clock, read
        // before the addition, is t). Thread R takes c at t + 9.99 s: if it read the group's due time (t + 10.001 s,
        // not due) before X lowered it and found the slot after X published it, it commits a deadline of t + 24.99 s
        // into a group that the cache drops at t + 20.002 s. At t + 22 s the reference still rejects c.
        MemoryStorage storage = MemoryStorage.create();
        Cooldown ten = new Cooldown(Duration.ofSeconds(10));
        Cooldown fifteen = new Cooldown(Duration.ofSeconds(15));
        int iterations = 5_000;
        int fillers = 20;
        List<String> scopes = collidingScopes(fillers + 1);
        String c = scopes.get(fillers);
        AtomicInteger go = new AtomicInteger(-1);
        AtomicInteger rDone = new AtomicInteger(-1);
        AtomicLong rOutcome = new AtomicLong();
        long[] base = new long[1];
        String[] subject = new String[1];
        Thread r = lockStep(
                iterations,
                go,
                rDone,
                400,
                k -> rOutcome.set(storage.acquire(new StateKey(c, subject[0]), fifteen, 1, base[0] + 9_990_000)));
        r.start();
        int rAdmitted = 0;
        List<String> lost = new ArrayList<>();
        for (int k = 0; k < iterations; k++) {
            long t = T0 + k * 100 * SECOND;
            String u = "u" + k;
            for (int i = 0; i < fillers; i++) {
                storage.acquire(new StateKey(scopes.get(i), u), ten, 1, t);
            }
            base[0] = t;
            subject[0] = u;
            go.set(k);
            storage.acquire(new StateKey(c, u), fifteen, 1, t);
            while (rDone.get() != k) {
                Thread.onSpinWait();
            }
            if (Outcome.isAdmitted(rOutcome.get())) {
                rAdmitted++;
                long due = storage.entry(u).extensionDueMicros() - t;
                long later = storage.acquire(new StateKey(c, u), fifteen, 1, t + 22 * SECOND);
                if (Outcome.isAdmitted(later)) {
                    lost.add("iteration " + k + " (group due at t + " + due + " us, never renewed)");
                }
            }
        }
        r.join(10_000);
        assertThat(lost)
                .as(
                        "R admitted %d times at t + 9.99 s (deadline t + 24.99 s); a take at t + 22 s must be rejected,"
                                + " but was admitted",
                        rAdmitted)
                .isEmpty();
    }

    @Test
    void groupSlotAddedWithALongerInterval_foundByABatchThroughTheEntryItResolvedEarlier_keepsItsState()
            throws Exception {
        // The same race through the batch path, where it is wider: a batch looks each subject up once and scans the
        // entry it found (its due time checked then) for its later steps. Batch R = [gate read of u, new key of v,
        // cooldown c of u] at t + 9.99 s reads u's group (due at t + 10.001 s: not due), is held while v's entry is
        // created, and meanwhile batch X on the clock t adds the slot c to u's group (due lowered to t + 5.001 s, no
        // renewal: X's clock is t) and rejects (b<k> is banned), committing nothing. R then finds c in the group it
        // resolved before and commits a deadline of t + 24.99 s that the cache drops at t + 20.002 s.
        AtomicInteger xDone = new AtomicInteger(-1);
        Thread[] holdThread = new Thread[1];
        String[] holdSubject = new String[1];
        MemoryStorage storage = MemoryStorage.builder()
                .expiry(inner -> new Expiry<String, Entry>() {
                    @Override
                    public long expireAfterCreate(String key, Entry value, long currentTime) {
                        if (Thread.currentThread() == holdThread[0] && key.equals(holdSubject[0])) {
                            int k = Integer.parseInt(key.substring(1));
                            while (xDone.get() != k) {
                                Thread.onSpinWait();
                            }
                        }
                        return inner.expireAfterCreate(key, value, currentTime);
                    }

                    @Override
                    public long expireAfterUpdate(String key, Entry value, long currentTime, long currentDuration) {
                        return inner.expireAfterUpdate(key, value, currentTime, currentDuration);
                    }

                    @Override
                    public long expireAfterRead(String key, Entry value, long currentTime, long currentDuration) {
                        return inner.expireAfterRead(key, value, currentTime, currentDuration);
                    }
                })
                .build();
        Cooldown ten = new Cooldown(Duration.ofSeconds(10));
        Cooldown fifteen = new Cooldown(Duration.ofSeconds(15));
        int iterations = 2_000;
        int fillers = 20;
        List<String> scopes = collidingScopes(fillers + 1);
        String c = scopes.get(fillers);
        AtomicInteger go = new AtomicInteger(-1);
        AtomicInteger rDone = new AtomicInteger(-1);
        AtomicReference<Boolean> rAdmitted = new AtomicReference<>(false);
        long[] base = new long[1];
        String[] subject = new String[1];
        Thread r = lockStep(iterations, go, rDone, 600, k -> {
            String u = subject[0];
            Batch batch = Batch.of(
                    new Step(new StateKey("gate", u), Gate.INSTANCE, 1),
                    new Step(new StateKey("x", "v" + k), ten, 1),
                    new Step(new StateKey(c, u), fifteen, 1));
            rAdmitted.set(storage.evaluate(batch, base[0] + 9_990_000).admitted());
        });
        holdThread[0] = r;
        r.start();
        int admitted = 0;
        List<String> lost = new ArrayList<>();
        for (int k = 0; k < iterations; k++) {
            long t = T0 + k * 100 * SECOND;
            String u = "u" + k;
            for (int i = 0; i < fillers; i++) {
                storage.acquire(new StateKey(scopes.get(i), u), ten, 1, t);
            }
            // The ban is another subject's key, so that it does not keep u's group for ever.
            StateKey banned = new StateKey("banned", "b" + k);
            storage.addMember(banned, Long.MAX_VALUE, t);
            base[0] = t;
            subject[0] = u;
            holdSubject[0] = "v" + k;
            go.set(k);
            // Adds the slot c to u's group and rejects: b<k> is banned.
            storage.evaluate(
                    Batch.of(new Step(banned, Membership.MUST_BE_ABSENT, 1), new Step(new StateKey(c, u), fifteen, 1)),
                    t);
            xDone.set(k);
            while (rDone.get() != k) {
                Thread.onSpinWait();
            }
            if (rAdmitted.get()) {
                admitted++;
                long later = storage.acquire(new StateKey(c, u), fifteen, 1, t + 22 * SECOND);
                if (Outcome.isAdmitted(later)) {
                    lost.add("iteration " + k);
                }
            }
        }
        r.join(10_000);
        assertThat(lost)
                .as(
                        "batch R admitted %d times at t + 9.99 s (deadline t + 24.99 s); a take at t + 22 s must be"
                                + " rejected, but was admitted",
                        admitted)
                .isEmpty();
    }

    /**
     * A daemon thread, not started, that runs {@code body} for each k from 0 to {@code iterations - 1}: once {@code go}
     * is k and after up to {@code maxSpins} spins (so that it meets the main thread at varying points), then sets
     * {@code done} to k.
     */
    private static Thread lockStep(
            int iterations, AtomicInteger go, AtomicInteger done, int maxSpins, IntConsumer body) {
        Thread t = new Thread(() -> {
            for (int k = 0; k < iterations; k++) {
                while (go.get() != k) {
                    Thread.onSpinWait();
                }
                int spins = ThreadLocalRandom.current().nextInt(maxSpins);
                for (int s = 0; s < spins; s++) {
                    Thread.onSpinWait();
                }
                body.accept(k);
                done.set(k);
            }
        });
        t.setDaemon(true);
        return t;
    }
}
