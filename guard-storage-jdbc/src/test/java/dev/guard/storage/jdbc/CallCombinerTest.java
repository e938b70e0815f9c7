package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Decisions share calls only while others are in flight, each gets its own outcome, and failures reach them all. */
class CallCombinerTest {
    private static final LimitSpec SPEC = new TokenBucket(1, 1, Duration.ofSeconds(1));
    /** Long enough that no test's decision reaches its deadline unless the test moves a clock there. */
    private static final long TIMEOUT = Duration.ofMinutes(10).toNanos();

    private final ExecutorService threads = Executors.newCachedThreadPool();
    /** The groups the calls carried, by the number each request was made with. */
    private final List<List<Long>> groups = Collections.synchronizedList(new ArrayList<>());

    @AfterEach
    void tearDown() throws InterruptedException {
        threads.shutdownNow();
        assertThat(threads.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
    }

    /** A decision of {@code steps} steps on keys of its own, its time {@code id}. */
    private static CallCombiner.Request request(long id, int steps) {
        StateKey[] keys = new StateKey[steps];
        LimitSpec[] specs = new LimitSpec[steps];
        long[] permits = new long[steps];
        byte[][] hashes = new byte[steps][];
        for (int i = 0; i < steps; i++) {
            keys[i] = new StateKey("s", "u" + id + "-" + i);
            specs[i] = SPEC;
            permits[i] = 1;
            hashes[i] = new byte[0];
        }
        return new CallCombiner.Request("evaluate", keys, specs, permits, hashes, id);
    }

    private static CallCombiner.Request request(long id) {
        return new CallCombiner.Request(
                "evaluate",
                new StateKey[] {new StateKey("s", "u" + id)},
                new LimitSpec[] {SPEC},
                new long[] {1},
                new byte[][] {new byte[0]},
                id);
    }

    /** A combiner that sends failed shared calls' decisions again when the driver says nothing was committed. */
    private static CallCombiner combiner(int maxCalls, int maxPerCall, long timeout, CallCombiner.Call call) {
        return new CallCombiner(maxCalls, maxPerCall, timeout, call, StorageFailures::committedNothing);
    }

    private static CallCombiner combiner(
            int maxCalls, int maxPerCall, long timeout, CallCombiner.Call call, LongSupplier clock) {
        return new CallCombiner(maxCalls, maxPerCall, timeout, call, StorageFailures::committedNothing, clock);
    }

    /**
     * A call that records its group; holds decision 1's call until {@code release}; fails with {@code failure} every
     * other call whose ids {@code fails} picks, and answers the rest each its own time, negated.
     */
    private CallCombiner.Call holdingFirstThenFailing(
            CountDownLatch entered, CountDownLatch release, Predicate<List<Long>> fails, RuntimeException failure) {
        return (group, deadline) -> {
            List<Long> ids = new ArrayList<>();
            group.forEach(r -> ids.add(r.nowMicros));
            groups.add(ids);
            if (ids.contains(1L)) {
                group.get(0).complete(new long[] {0});
                entered.countDown();
                try {
                    assertThat(release.await(10, TimeUnit.SECONDS)).isTrue();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                return;
            }
            if (fails.test(ids)) {
                throw failure;
            }
            group.forEach(r -> r.complete(new long[] {-r.nowMicros}));
        };
    }

    /** A call that records its group and answers each request its own time, negated. */
    private CallCombiner.Call recording(CountDownLatch entered, CountDownLatch release) {
        return (group, deadline) -> {
            List<Long> ids = new ArrayList<>();
            for (CallCombiner.Request r : group) {
                ids.add(r.nowMicros);
                r.complete(new long[] {-r.nowMicros});
            }
            groups.add(ids);
            entered.countDown();
            try {
                assertThat(release.await(10, TimeUnit.SECONDS)).isTrue();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        };
    }

    /** Decision 1, in a call that takes a slot until the test releases it. */
    /**
     * A thread that decides {@code request(key)} (interrupted first if {@code interruptFirst}): how its decision failed
     * (null: it did not), and whether the thread was still interrupted afterwards.
     */
    private record Decider(
            Thread thread, CompletableFuture<Throwable> failure, CompletableFuture<Boolean> stillInterrupted) {
        static Decider start(CallCombiner combiner, long key, boolean interruptFirst) {
            CompletableFuture<Throwable> failure = new CompletableFuture<>();
            CompletableFuture<Boolean> stillInterrupted = new CompletableFuture<>();
            Thread thread = new Thread(() -> {
                if (interruptFirst) {
                    Thread.currentThread().interrupt();
                }
                try {
                    combiner.decide(request(key));
                    failure.complete(null);
                } catch (RuntimeException e) {
                    failure.complete(e);
                }
                stillInterrupted.complete(Thread.currentThread().isInterrupted());
            });
            thread.start();
            return new Decider(thread, failure, stillInterrupted);
        }
    }

    private Future<long[]> occupy(CallCombiner combiner, CountDownLatch entered) throws InterruptedException {
        Future<long[]> first = threads.submit(() -> combiner.decide(request(1)));
        assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
        return first;
    }

    /** Decisions {@code from} to {@code to} (ids, one step each), {@linkplain #enqueue enqueued} in that order. */
    private List<CompletableFuture<long[]>> enqueueAll(CallCombiner combiner, long from, long to) {
        List<CompletableFuture<long[]>> queued = new ArrayList<>();
        for (long id = from; id <= to; id++) {
            queued.add(enqueue(combiner, request(id)));
        }
        return queued;
    }

    /**
     * Decides {@code request} on another thread, once this returns waiting in the combiner's queue behind those that
     * were (the slots being busy), so that the tests fix the order in which decisions wait.
     */
    private CompletableFuture<long[]> enqueue(CallCombiner combiner, CallCombiner.Request request) {
        int before = combiner.waitingCount();
        CompletableFuture<long[]> decided = CompletableFuture.supplyAsync(() -> combiner.decide(request), threads);
        awaitWaiting(combiner, before + 1);
        return decided;
    }

    private static void awaitWaiting(CallCombiner combiner, int count) {
        while (combiner.waitingCount() < count) {
            Thread.onSpinWait();
        }
    }

    @Test
    void loneDecision_goesAtOnceInItsOwnCall() {
        CountDownLatch released = new CountDownLatch(0);
        CallCombiner combiner = combiner(2, 64, TIMEOUT, recording(new CountDownLatch(1), released));

        assertThat(combiner.decide(request(7))).containsExactly(-7);
        assertThat(groups).containsExactly(List.of(7L));
    }

    @Test
    void decisionsArrivingWhileAllCallsAreInFlight_shareTheNextCall() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = combiner(1, 64, TIMEOUT, recording(entered, release));
        Future<long[]> first = occupy(combiner, entered);
        List<CompletableFuture<long[]>> later = enqueueAll(combiner, 2, 4);
        release.countDown();

        assertThat(first.get(10, TimeUnit.SECONDS)).containsExactly(-1);
        for (int i = 0; i < 3; i++) {
            assertThat(later.get(i).get(10, TimeUnit.SECONDS)).containsExactly(-(i + 2));
        }
        assertThat(groups).hasSize(2);
        assertThat(groups.get(0)).containsExactly(1L);
        assertThat(groups.get(1)).containsExactly(2L, 3L, 4L);
    }

    @Test
    void waitingDecisionsWithManySteps_goInCallsOfAtMostTheStepLimit() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = combiner(1, 64, TIMEOUT, recording(entered, release));
        Future<long[]> first = occupy(combiner, entered);
        int steps = CallCombiner.MAX_STEPS_PER_CALL / 2 - 1;
        List<Future<long[]>> later = new ArrayList<>();
        for (long id = 2; id <= 4; id++) {
            later.add(enqueue(combiner, request(id, steps)));
        }
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        for (Future<long[]> f : later) {
            f.get(10, TimeUnit.SECONDS);
        }
        // Two fit under the limit; the third would pass it.
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L), List.of(4L));
    }

    @Test
    void moreWaitingThanOneCallTakes_goInCallsOfAtMostTheLimit() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = combiner(1, 2, TIMEOUT, recording(entered, release));
        Future<long[]> first = occupy(combiner, entered);
        List<CompletableFuture<long[]>> later = enqueueAll(combiner, 2, 6);
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        for (int i = 0; i < 5; i++) {
            assertThat(later.get(i).get(10, TimeUnit.SECONDS)).containsExactly(-(i + 2));
        }
        assertThat(groups).hasSize(4);
        assertThat(groups).allSatisfy(g -> assertThat(g).hasSizeLessThanOrEqualTo(2));
        assertThat(groups.stream().mapToInt(List::size).sum()).isEqualTo(6);
    }

    @Test
    void failedLoneCall_throwsTheCallsOwnFailure() {
        GuardStorageException failure = new GuardStorageException("jdbc", "evaluate", "the statement timed out", null);
        CallCombiner combiner = combiner(1, 64, TIMEOUT, (group, deadline) -> {
            throw failure;
        });

        assertThatThrownBy(() -> combiner.decide(request(1))).isSameAs(failure);
    }

    @Test
    void failedSharedCall_sendsEachDecisionAgainAlone_soOnlyTheFailingOneFails() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SQLException cause = new SQLException("canceling statement due to statement timeout", "57014");
        // Decision 3 waits for a key that is locked elsewhere: any call that carries it fails.
        CallCombiner combiner = combiner(
                1,
                64,
                TIMEOUT,
                holdingFirstThenFailing(
                        entered,
                        release,
                        ids -> ids.contains(3L),
                        new GuardStorageException("jdbc", "evaluate", "sqlstate 57014", cause)));
        Future<long[]> first = occupy(combiner, entered);
        List<CompletableFuture<long[]>> later = enqueueAll(combiner, 2, 4);
        release.countDown();

        assertThat(first.get(10, TimeUnit.SECONDS)).containsExactly(0);
        assertThat(later.get(0).get(10, TimeUnit.SECONDS)).containsExactly(-2);
        assertThat(later.get(2).get(10, TimeUnit.SECONDS)).containsExactly(-4);
        assertThatThrownBy(() -> later.get(1).get(10, TimeUnit.SECONDS))
                .cause()
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("jdbc evaluate failed: sqlstate 57014")
                .hasCause(cause);
        // The shared call, then each of its decisions alone, in their order.
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L, 4L), List.of(2L), List.of(3L), List.of(4L));
        assertThat(combiner.waitingCount()).isZero();
    }

    @Test
    void decisionStillWaitingAtItsDeadline_failsUnsent() throws Exception {
        AtomicLong clock = new AtomicLong();
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = combiner(1, 64, 1_000, recording(entered, release), clock::get);
        Future<long[]> first = occupy(combiner, entered);
        Future<long[]> waiting = enqueue(combiner, request(2));
        clock.addAndGet(1_000);
        combiner.wakeAll();

        assertThatThrownBy(() -> waiting.get(10, TimeUnit.SECONDS))
                .cause()
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("jdbc evaluate failed: timed out waiting for a call");
        assertThat(combiner.waitingCount()).isZero();
        release.countDown();
        first.get(10, TimeUnit.SECONDS);
        assertThat(groups).containsExactly(List.of(1L));
    }

    @Test
    void decisionWaitingHalfItsTimeForASlot_goesAloneBeyondTheLimit() throws Exception {
        AtomicLong clock = new AtomicLong();
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner.Call recorded = recording(entered, release);
        CallCombiner combiner = combiner(
                1,
                64,
                1_000,
                (group, deadline) -> {
                    if (group.get(0).nowMicros == 1) {
                        recorded.run(group, deadline);
                    } else {
                        group.forEach(r -> r.complete(new long[] {-r.nowMicros}));
                        groups.add(List.of(group.get(0).nowMicros));
                    }
                },
                clock::get);
        // The first call hangs (a row locked elsewhere, say) and holds the only slot.
        Future<long[]> first = occupy(combiner, entered);
        Future<long[]> second = enqueue(combiner, request(2));
        clock.addAndGet(500);
        combiner.wakeAll();

        assertThat(second.get(10, TimeUnit.SECONDS)).containsExactly(-2);
        assertThat(first.isDone()).isFalse();
        release.countDown();
        assertThat(first.get(10, TimeUnit.SECONDS)).containsExactly(-1);
        assertThat(groups).containsExactly(List.of(1L), List.of(2L));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, Long.MAX_VALUE - 1_000})
    void sharedCall_runsUntilTheEarliestDeadlineOfItsDecisions(long start) throws Exception {
        // From Long.MAX_VALUE - 1000, the later deadline wraps around, as System.nanoTime() values may.
        AtomicLong clock = new AtomicLong(start);
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        List<Long> deadlines = Collections.synchronizedList(new ArrayList<>());
        CallCombiner.Call recorded = recording(entered, release);
        CallCombiner combiner = combiner(
                1,
                64,
                1_000,
                (group, deadline) -> {
                    deadlines.add(deadline);
                    recorded.run(group, deadline);
                },
                clock::get);
        Future<long[]> first = occupy(combiner, entered);
        Future<long[]> second = enqueue(combiner, request(2));
        clock.addAndGet(300);
        Future<long[]> third = enqueue(combiner, request(3));
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        second.get(10, TimeUnit.SECONDS);
        third.get(10, TimeUnit.SECONDS);
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L));
        assertThat(deadlines).containsExactly(start + 1_000, start + 1_000);
    }

    @ParameterizedTest
    @CsvSource({"1, 1", "2, 2", "3, 2", "2, 8"})
    void errorsAndFailedSharedCalls_neverSendADecisionTwiceOrWithoutItsThread(int maxCalls, int maxPerCall)
            throws Exception {
        // Decisions whose id is a multiple of 7 make a lone call throw an Error; a shared call that carries one, or
        // one whose id is a multiple of 5, fails having committed nothing (a lock timeout), so its decisions go again
        // alone. A thread that ran a failing call for others throws the Error, and its own decision must then be
        // neither sent afterwards nor left in the queue.
        Set<Long> left = ConcurrentHashMap.newKeySet();
        Set<Long> inCall = ConcurrentHashMap.newKeySet();
        Set<Long> committed = ConcurrentHashMap.newKeySet();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger calls = new AtomicInteger();
        SQLException lockTimeout = new SQLException("canceling statement due to lock timeout", "55P03");
        CallCombiner combiner = combiner(maxCalls, maxPerCall, TIMEOUT, (group, deadline) -> {
            if (calls.incrementAndGet() > maxCalls) {
                problems.add("more calls at once than slots");
            }
            try {
                for (CallCombiner.Request r : group) {
                    if (left.contains(r.nowMicros)) {
                        problems.add("sent after its thread left: " + r.nowMicros);
                    }
                    if (!inCall.add(r.nowMicros)) {
                        problems.add("in two calls at once: " + r.nowMicros);
                    }
                    if (committed.contains(r.nowMicros)) {
                        problems.add("sent again after its commit: " + r.nowMicros);
                    }
                }
                Thread.yield();
                for (CallCombiner.Request r : group) {
                    if (group.size() == 1 && r.nowMicros % 7 == 0) {
                        throw new AssertionError("a call for " + r.nowMicros + " failed hard");
                    }
                    if (group.size() > 1 && (r.nowMicros % 5 == 0 || r.nowMicros % 7 == 0)) {
                        throw new GuardStorageException("jdbc", "evaluate", "sqlstate 55P03", lockTimeout);
                    }
                }
                for (CallCombiner.Request r : group) {
                    r.complete(new long[] {-r.nowMicros});
                    committed.add(r.nowMicros);
                }
            } finally {
                group.forEach(r -> inCall.remove(r.nowMicros));
                calls.decrementAndGet();
            }
        });
        List<Future<Integer>> workers = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            long base = t * 1_000_000L;
            workers.add(threads.submit(() -> {
                int errors = 0;
                for (long id = base + 1; id <= base + 3_000; id++) {
                    try {
                        if (combiner.decide(request(id))[0] != -id) {
                            problems.add("wrong outcome: " + id);
                        }
                    } catch (AssertionError e) {
                        errors++;
                    } catch (GuardStorageException e) {
                        if (id % 7 != 0) {
                            problems.add("failed though only its lone call could not: " + id);
                        }
                    } finally {
                        left.add(id);
                    }
                }
                return errors;
            }));
        }
        int errors = 0;
        for (Future<Integer> w : workers) {
            errors += w.get(60, TimeUnit.SECONDS);
        }

        // Some threads did run a failing call for another's decision (else this test shows nothing).
        assertThat(errors).isPositive();
        assertThat(problems).isEmpty();
        assertThat(combiner.waitingCount()).isZero();
    }

    @Test
    void sharedCallNotSent_sendsEachDecisionAgainAlone_andALoneOneFailsWithTheFailureItself() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        // No SQL state says that nothing was committed: only the call, which knows it sent nothing, can say so.
        GuardStorageException noConnection = new GuardStorageException(
                "jdbc", "evaluate", "postgresql: no connection", new SQLException("no connection"));
        CallCombiner combiner = combiner(
                1,
                64,
                TIMEOUT,
                holdingFirstThenFailing(
                        entered,
                        release,
                        ids -> ids.size() > 1 || ids.contains(3L),
                        new CallCombiner.NotSent(noConnection)));
        Future<long[]> first = occupy(combiner, entered);
        List<CompletableFuture<long[]>> later = enqueueAll(combiner, 2, 4);
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        assertThat(later.get(0).get(10, TimeUnit.SECONDS)).containsExactly(-2);
        assertThat(later.get(2).get(10, TimeUnit.SECONDS)).containsExactly(-4);
        assertThatThrownBy(() -> later.get(1).get(10, TimeUnit.SECONDS)).cause().isSameAs(noConnection);
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L, 4L), List.of(2L), List.of(3L), List.of(4L));
    }

    @Test
    void failedSharedCall_thatMayHaveCommitted_failsEachDecisionWithoutSendingItAgain() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SQLException lost = new SQLException("An I/O error occurred while sending to the backend.", "08006");
        CallCombiner combiner = combiner(
                1,
                64,
                TIMEOUT,
                holdingFirstThenFailing(
                        entered,
                        release,
                        ids -> true,
                        new GuardStorageException("jdbc", "evaluate", "sqlstate 08006", lost)));
        assertEachSharedDecisionFails(combiner, entered, release, "jdbc evaluate failed: sqlstate 08006", lost);
        // The connection was lost on the way: the call may have committed, so nothing goes again.
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L));
    }

    /**
     * A shared call that fails with a driver exception without an SQL state (HikariCP's, or the watchdog's after
     * close()) fails each of its decisions, and frees its slot for the next call: the failure must not escape while
     * the combiner settles the call, which would leave its decisions' threads waiting for ever.
     */
    @Test
    void failedSharedCall_driverExceptionWithoutSqlState_failsEachDecisionAndFreesTheSlot() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SQLException stateless = new SQLException("HikariPool-1 - Interrupted during connection acquisition");
        CallCombiner combiner = combiner(
                1,
                64,
                TIMEOUT,
                holdingFirstThenFailing(
                        entered,
                        release,
                        ids -> ids.size() > 1,
                        new GuardStorageException("jdbc", "evaluate", "postgresql: interrupted", stateless)));
        assertSharedFailureSettlesEachDecision(combiner, entered, release, stateless);
    }

    /** Even a committedNothing that throws (a bug) leaves no decision waiting and no slot taken. */
    @Test
    void failedSharedCall_committedNothingThatThrows_failsEachDecisionAndFreesTheSlot() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        SQLException cause = new SQLException("x", "57014");
        CallCombiner combiner = new CallCombiner(
                1,
                64,
                TIMEOUT,
                holdingFirstThenFailing(
                        entered,
                        release,
                        ids -> ids.size() > 1,
                        new GuardStorageException("jdbc", "evaluate", "postgresql: interrupted", cause)),
                failure -> {
                    throw new IllegalStateException("committedNothing failed");
                });
        assertSharedFailureSettlesEachDecision(combiner, entered, release, cause);
    }

    /**
     * Decision 1 holds the only slot until {@code release}; decisions 2 and 3, waiting meanwhile, share the next call,
     * which fails: each fails with {@code message} and {@code cause}.
     */
    private void assertEachSharedDecisionFails(
            CallCombiner combiner, CountDownLatch entered, CountDownLatch release, String message, Throwable cause)
            throws Exception {
        Future<long[]> first = occupy(combiner, entered);
        List<CompletableFuture<long[]>> shared = enqueueAll(combiner, 2, 3);
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        for (CompletableFuture<long[]> f : shared) {
            assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS))
                    .cause()
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage(message)
                    .hasCause(cause);
        }
    }

    /**
     * Decisions 2 and 3 share a call that fails with {@code cause}: each fails with it (sent once), and decision 4
     * gets the slot after them.
     */
    private void assertSharedFailureSettlesEachDecision(
            CallCombiner combiner, CountDownLatch entered, CountDownLatch release, Throwable cause) throws Exception {
        assertEachSharedDecisionFails(
                combiner, entered, release, "jdbc evaluate failed: postgresql: interrupted", cause);
        assertThat(threads.submit(() -> combiner.decide(request(4))).get(10, TimeUnit.SECONDS))
                .containsExactly(-4);
        assertThat(groups).containsExactly(List.of(1L), List.of(2L, 3L), List.of(4L));
        assertThat(combiner.waitingCount()).isZero();
    }

    @Test
    void interruptedWhileWaiting_withdrawsTheDecisionUnsent() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = combiner(1, 64, TIMEOUT, recording(entered, release));
        Future<long[]> first = occupy(combiner, entered);
        Decider waiter = Decider.start(combiner, 2, false);
        awaitWaiting(combiner, 1);
        waiter.thread.interrupt();

        assertThat(waiter.failure.get(10, TimeUnit.SECONDS))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("interrupted while waiting");
        assertThat(waiter.stillInterrupted.get(10, TimeUnit.SECONDS)).isTrue();
        assertThat(combiner.waitingCount()).isZero();
        release.countDown();
        first.get(10, TimeUnit.SECONDS);
        assertThat(groups).containsExactly(List.of(1L));
    }

    /**
     * A thread whose interrupt status is set when it comes to the combiner runs no call, not even with a slot free:
     * its decision fails unsent, as when the interrupt comes while it waits. Otherwise it would run calls, its own and
     * other threads' decisions with it, that a pool refuses to an interrupted thread (HikariCP does while it waits
     * for a connection).
     */
    @Test
    void interruptedBeforeItComes_runsNoCallAndFailsItsDecisionUnsent() throws Exception {
        CallCombiner combiner = combiner(1, 64, TIMEOUT, recording(new CountDownLatch(1), new CountDownLatch(0)));
        Decider interrupted = Decider.start(combiner, 5, true);

        assertThat(interrupted.failure.get(10, TimeUnit.SECONDS))
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("jdbc evaluate failed: interrupted while waiting for a call");
        assertThat(interrupted.stillInterrupted.get(10, TimeUnit.SECONDS)).isTrue();
        assertThat(groups).isEmpty();
        assertThat(combiner.waitingCount()).isZero();
        // The slot is free for the next.
        assertThat(combiner.decide(request(6))).containsExactly(-6);
    }

    /**
     * The thread that runs a shared call is interrupted while it waits for a connection, so the call is not sent and
     * its decisions go again alone: the interrupted thread must run none of those calls (the pool would refuse it
     * again, failing another thread's decision), and the other thread's decision is decided.
     */
    @Test
    void sharedCallNotSentForItsInterruptedThread_thatThreadRunsNoMoreCalls() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Map<Long, Thread> owners = new ConcurrentHashMap<>();
        AtomicReference<Thread> leader = new AtomicReference<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        GuardStorageException interruptedWait = new GuardStorageException(
                "jdbc", "evaluate", "postgresql: interrupted", new SQLException("Interrupted during acquisition"));
        CallCombiner.Call recorded = recording(entered, release);
        CallCombiner combiner = combiner(1, 64, TIMEOUT, (group, deadline) -> {
            if (group.get(0).nowMicros == 1) {
                recorded.run(group, deadline);
                return;
            }
            List<Long> ids = new ArrayList<>();
            group.forEach(r -> ids.add(r.nowMicros));
            groups.add(ids);
            if (group.size() > 1) {
                // The pool's wait for a connection, interrupted.
                leader.set(Thread.currentThread());
                Thread.currentThread().interrupt();
                throw new CallCombiner.NotSent(interruptedWait);
            }
            if (Thread.currentThread().isInterrupted()) {
                problems.add("decision " + ids + " sent by an interrupted thread, its own: "
                        + (owners.get(ids.get(0)) == Thread.currentThread()));
                throw new CallCombiner.NotSent(interruptedWait);
            }
            group.forEach(r -> r.complete(new long[] {-r.nowMicros}));
        });
        Future<long[]> first = occupy(combiner, entered);
        Map<Long, CompletableFuture<long[]>> decided = new ConcurrentHashMap<>();
        for (long id = 2; id <= 3; id++) {
            long own = id;
            int before = combiner.waitingCount();
            decided.put(
                    own,
                    CompletableFuture.supplyAsync(
                            () -> {
                                owners.put(own, Thread.currentThread());
                                return combiner.decide(request(own));
                            },
                            threads));
            awaitWaiting(combiner, before + 1);
        }
        release.countDown();

        first.get(10, TimeUnit.SECONDS);
        for (CompletableFuture<long[]> f : decided.values()) {
            f.handle((outcomes, failure) -> null).get(10, TimeUnit.SECONDS);
        }
        long led = owners.get(2L) == leader.get() ? 2 : 3;
        long other = 5 - led;
        assertThat(decided.get(other).get(10, TimeUnit.SECONDS)).containsExactly(-other);
        try {
            assertThat(decided.get(led).get(10, TimeUnit.SECONDS)).containsExactly(-led);
        } catch (ExecutionException e) {
            // Unless the other thread sent it first, the interrupted thread's own decision fails unsent.
            assertThat(e.getCause()).hasMessage("jdbc evaluate failed: interrupted while waiting for a call");
        }
        assertThat(problems).isEmpty();
        assertThat(combiner.waitingCount()).isZero();
    }

    @Test
    void limits_belowOne_areRefusedWithTheirValue() {
        assertThatThrownBy(() -> combiner(0, 64, TIMEOUT, (group, deadline) -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxCalls must be at least 1 but was 0");
        assertThatThrownBy(() -> combiner(1, 0, TIMEOUT, (group, deadline) -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxPerCall must be at least 1 but was 0");
        assertThatThrownBy(() -> combiner(1, 1, 0, (group, deadline) -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("timeoutNanos must be positive but was 0");
    }
}
