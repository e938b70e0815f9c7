package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Decisions share calls only while others are in flight, each gets its own outcome, and failures reach them all. */
class CallCombinerTest {
    private static final LimitSpec SPEC = new TokenBucket(1, 1, Duration.ofSeconds(1));

    private final ExecutorService threads = Executors.newCachedThreadPool();
    /** The groups the calls carried, by the number each request was made with. */
    private final List<List<Long>> groups = Collections.synchronizedList(new ArrayList<>());

    @AfterEach
    void tearDown() throws InterruptedException {
        threads.shutdownNow();
        assertThat(threads.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
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

    /** A call that records its group and answers each request its own time, negated. */
    private Consumer<List<CallCombiner.Request>> recording(CountDownLatch entered, CountDownLatch release) {
        return group -> {
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

    private static void awaitWaiting(CallCombiner combiner, int count) {
        while (combiner.waitingCount() < count) {
            Thread.onSpinWait();
        }
    }

    @Test
    void loneDecision_goesAtOnceInItsOwnCall() {
        CountDownLatch released = new CountDownLatch(0);
        CallCombiner combiner = new CallCombiner(2, 64, recording(new CountDownLatch(1), released));

        assertThat(combiner.decide(request(7))).containsExactly(-7);
        assertThat(groups).containsExactly(List.of(7L));
    }

    @Test
    void decisionsArrivingWhileAllCallsAreInFlight_shareTheNextCall() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = new CallCombiner(1, 64, recording(entered, release));
        Future<long[]> first = threads.submit(() -> combiner.decide(request(1)));
        assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
        List<Future<long[]>> later = new ArrayList<>();
        for (long id = 2; id <= 4; id++) {
            long it = id;
            later.add(threads.submit(() -> combiner.decide(request(it))));
        }
        awaitWaiting(combiner, 3);
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
    void moreWaitingThanOneCallTakes_goInCallsOfAtMostTheLimit() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = new CallCombiner(1, 2, recording(entered, release));
        Future<long[]> first = threads.submit(() -> combiner.decide(request(1)));
        assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
        List<Future<long[]>> later = new ArrayList<>();
        for (long id = 2; id <= 6; id++) {
            long it = id;
            later.add(threads.submit(() -> combiner.decide(request(it))));
        }
        awaitWaiting(combiner, 5);
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
    void failedCall_failsEveryDecisionItCarried_eachWithItsOwnException() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        GuardStorageException failure =
                new GuardStorageException("postgresql", "evaluate", "the statement timed out", null);
        CallCombiner combiner = new CallCombiner(1, 64, group -> {
            if (group.get(0).nowMicros == 1) {
                group.get(0).complete(new long[] {0});
                entered.countDown();
                try {
                    assertThat(release.await(10, TimeUnit.SECONDS)).isTrue();
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
                return;
            }
            throw failure;
        });
        Future<long[]> first = threads.submit(() -> combiner.decide(request(1)));
        assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
        List<CompletableFuture<long[]>> later = new ArrayList<>();
        for (long id = 2; id <= 3; id++) {
            long it = id;
            later.add(CompletableFuture.supplyAsync(() -> combiner.decide(request(it)), threads));
        }
        awaitWaiting(combiner, 2);
        release.countDown();

        assertThat(first.get(10, TimeUnit.SECONDS)).containsExactly(0);
        List<Throwable> thrown = new ArrayList<>();
        for (CompletableFuture<long[]> f : later) {
            assertThatThrownBy(() -> f.get(10, TimeUnit.SECONDS)).satisfies(e -> thrown.add(e.getCause()));
        }
        assertThat(thrown).allSatisfy(e -> {
            assertThat(e)
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage("postgresql evaluate failed: the statement timed out")
                    .hasCause(failure);
        });
        assertThat(thrown.get(0)).isNotSameAs(thrown.get(1));
        // The slot was given back: the next decision goes through.
        CallCombiner healthy = combiner;
        assertThatThrownBy(() -> healthy.decide(request(9))).isInstanceOf(GuardStorageException.class);
        assertThat(combiner.waitingCount()).isZero();
    }

    @Test
    void interruptedWhileWaiting_withdrawsTheDecisionUnsent() throws Exception {
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        CallCombiner combiner = new CallCombiner(1, 64, recording(entered, release));
        Future<long[]> first = threads.submit(() -> combiner.decide(request(1)));
        assertThat(entered.await(10, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Throwable> failure = new CompletableFuture<>();
        CompletableFuture<Boolean> stillInterrupted = new CompletableFuture<>();
        Thread waiter = new Thread(() -> {
            try {
                combiner.decide(request(2));
                failure.complete(null);
            } catch (RuntimeException e) {
                failure.complete(e);
            }
            stillInterrupted.complete(Thread.currentThread().isInterrupted());
        });
        waiter.start();
        awaitWaiting(combiner, 1);
        waiter.interrupt();

        assertThat(failure.get(10, TimeUnit.SECONDS))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("interrupted while waiting");
        assertThat(stillInterrupted.get(10, TimeUnit.SECONDS)).isTrue();
        assertThat(combiner.waitingCount()).isZero();
        release.countDown();
        first.get(10, TimeUnit.SECONDS);
        assertThat(groups).containsExactly(List.of(1L));
    }

    @Test
    void limits_belowOne_areRefusedWithTheirValue() {
        assertThatThrownBy(() -> new CallCombiner(0, 64, group -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxCalls must be at least 1 but was 0");
        assertThatThrownBy(() -> new CallCombiner(1, 0, group -> {}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxPerCall must be at least 1 but was 0");
    }
}
