package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class DebouncerTest {
    record Part(String album, int n) {}

    final ManualTicker ticker = ManualTicker.create();
    final List<List<Part>> handed = new CopyOnWriteArrayList<>();

    Debouncer<Part> debouncer() {
        return Debouncer.<Part>builder(Part::album, handed::add)
                .window(Duration.ofMillis(500))
                .maxWait(Duration.ofSeconds(2))
                .maxBurst(10)
                .ticker(ticker)
                .build();
    }

    @Test
    void flushDue_handsTheBurstOverOnceAfterItIsQuiet() {
        Debouncer<Part> debouncer = debouncer();
        for (int i = 0; i < 3; i++) {
            debouncer.offer(new Part("a", i));
            ticker.advance(Duration.ofMillis(200));
        }
        assertThat(debouncer.flushDue()).isZero();

        ticker.advance(Duration.ofMillis(300)); // 500 ms since the last part
        assertThat(debouncer.flushDue()).isEqualTo(1);
        assertThat(handed).containsExactly(List.of(new Part("a", 0), new Part("a", 1), new Part("a", 2)));
        assertThat(debouncer.flushDue()).isZero();
        assertThat(debouncer.pending()).isZero();
    }

    @Test
    void flushDue_keysAreIndependent() {
        Debouncer<Part> debouncer = debouncer();
        debouncer.offer(new Part("a", 0));
        ticker.advance(Duration.ofMillis(400));
        debouncer.offer(new Part("b", 0));
        ticker.advance(Duration.ofMillis(100));

        assertThat(debouncer.flushDue()).isEqualTo(1);
        assertThat(handed).containsExactly(List.of(new Part("a", 0)));
        assertThat(debouncer.pending()).isEqualTo(1);
    }

    @Test
    void flushDue_burstThatNeverGoesQuiet_isHandedOverAtMaxWait() {
        Debouncer<Part> debouncer = debouncer();
        for (int i = 0; i < 5; i++) {
            debouncer.offer(new Part("mash", i));
            ticker.advance(Duration.ofMillis(400));
            debouncer.flushDue();
        }
        assertThat(handed).hasSize(1);
        assertThat(handed.get(0)).hasSize(5);
    }

    @Test
    void offer_fullBurst_isHandedOverAtOnce() {
        Debouncer<Part> debouncer = debouncer();
        for (int i = 0; i < 10; i++) {
            debouncer.offer(new Part("a", i));
        }
        assertThat(handed).hasSize(1);
        assertThat(handed.get(0)).hasSize(10);
        debouncer.offer(new Part("a", 10));
        assertThat(debouncer.pending()).isEqualTo(1);
    }

    @Test
    void offer_nullKey_isHandedOverAloneAtOnce() {
        Debouncer<Part> debouncer = debouncer();
        debouncer.offer(new Part(null, 1));
        assertThat(handed).containsExactly(List.of(new Part(null, 1)));
    }

    @Test
    void offer_concurrentOffersAndFlushes_loseNothing_andHandEachKeysBurstsOverOneAtATimeInOrder() throws Exception {
        Map<String, AtomicBoolean> busy = new ConcurrentHashMap<>();
        AtomicInteger overlaps = new AtomicInteger();
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    AtomicBoolean inHandler = busy.computeIfAbsent(burst.get(0).album(), k -> new AtomicBoolean());
                    if (!inHandler.compareAndSet(false, true)) {
                        overlaps.incrementAndGet();
                    }
                    handed.add(burst);
                    inHandler.set(false);
                })
                .maxBurst(7)
                .ticker(ticker)
                .build();
        int threads = 4;
        int each = 1_000;
        CountDownLatch gate = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        for (int t = 0; t < threads; t++) {
            int id = t;
            pool.execute(() -> {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                for (int i = 0; i < each; i++) {
                    debouncer.offer(new Part("k" + (i % 3), id * each + i));
                    if (i % 50 == 0) {
                        if (id == 0) {
                            ticker.advance(Duration.ofMillis(300)); // bursts go quiet: offers and flushes find them due
                        }
                        debouncer.flushDue();
                    }
                }
            });
        }
        gate.countDown();
        pool.shutdown();
        assertThat(pool.awaitTermination(1, TimeUnit.MINUTES)).isTrue();
        debouncer.flushAll();

        List<Integer> all = new ArrayList<>();
        handed.forEach(burst -> burst.forEach(p -> all.add(p.n())));
        assertThat(all).hasSize(threads * each).doesNotHaveDuplicates();
        assertThat(overlaps).as("bursts of one key in the handler at once").hasValue(0);
        // Each thread's parts of a key reach the handler in the order it offered them, across bursts too.
        for (int t = 0; t < threads; t++) {
            for (int k = 0; k < 3; k++) {
                String album = "k" + k;
                int thread = t;
                List<Integer> parts = new ArrayList<>();
                handed.forEach(burst -> burst.stream()
                        .filter(p -> p.album().equals(album) && p.n() / each == thread)
                        .forEach(p -> parts.add(p.n())));
                assertThat(parts).isSorted();
            }
        }
    }

    /**
     * A debouncer whose handler records when it starts and ends each burst (by its first part's number), and holds
     * the burst whose first part is {@code held} until {@code release} opens, once it has opened {@code entered}.
     */
    Debouncer<Part> holding(int held, List<String> events, CountDownLatch entered, CountDownLatch release) {
        return Debouncer.<Part>builder(Part::album, burst -> {
                    int first = burst.get(0).n();
                    events.add("start " + first);
                    if (first == held) {
                        entered.countDown();
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                    events.add("end " + first);
                })
                .window(Duration.ofMillis(500))
                .maxBurst(3)
                .ticker(ticker)
                .build();
    }

    @Test
    void offer_whileItsKeysPreviousBurstIsBeingHandedOver_handsTheNextOneOverAfterIt_notAlongside() throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Debouncer<Part> debouncer = holding(0, events, entered, release);
        ExecutorService flusher = Executors.newSingleThreadExecutor();
        try {
            debouncer.offer(new Part("a", 0));
            ticker.advance(Duration.ofMillis(500));
            Future<Integer> flush = flusher.submit(debouncer::flushDue); // hands [a0] over and holds it
            assertThat(entered.await(1, TimeUnit.MINUTES)).isTrue();

            // Meanwhile "a" goes on: [a1] goes quiet and a2 finds it due; a3 and a4 fill [a2, a3, a4]; [a5] goes
            // quiet for a flush, and [a6] is taken by a shutdown's flushAll.
            debouncer.offer(new Part("a", 1));
            ticker.advance(Duration.ofMillis(500));
            for (int i = 2; i <= 5; i++) {
                debouncer.offer(new Part("a", i));
            }
            ticker.advance(Duration.ofMillis(500));
            assertThat(debouncer.flushDue()).isEqualTo(1);
            debouncer.offer(new Part("a", 6));
            assertThat(debouncer.flushAll()).isEqualTo(1);
            assertThat(events).as("nothing of \"a\" beside [a0]").containsExactly("start 0");
            assertThat(debouncer.pending()).isZero();

            release.countDown();
            assertThat(flush.get(1, TimeUnit.MINUTES)).isEqualTo(1);
            assertThat(events)
                    .containsExactly(
                            "start 0", "end 0", "start 1", "end 1", "start 2", "end 2", "start 5", "end 5", "start 6",
                            "end 6");
        } finally {
            release.countDown();
            flusher.shutdownNow();
        }
    }

    @Test
    void offer_fillingABurst_stalledOnceItLeftTheMap_stillHandsItOverBeforeTheKeysNextBurst() throws Exception {
        assertThat(closeStalledThenFillTheNextBurst(false))
                .containsExactly(List.of(part(0), part(1), part(2)), List.of(part(3), part(4), part(5)));
    }

    @Test
    void offer_findingABurstDue_stalledOnceItLeftTheMap_stillHandsItOverBeforeTheKeysNextBurst() throws Exception {
        // a2 finds [a0, a1] due; it goes into a burst of its own, which flushAll hands over last.
        assertThat(closeStalledThenFillTheNextBurst(true))
                .containsExactly(List.of(part(0), part(1)), List.of(part(3), part(4), part(5)), List.of(part(2)));
    }

    static Part part(int n) {
        return new Part("a", n);
    }

    /**
     * Offers a0 and a1, then a2 in a thread that stalls once the burst it closes (full, or found due when {@code
     * overdue}) has left the map, as a descheduled thread would; meanwhile a3 to a5 fill the key's next burst. Answers
     * what the handler got once a2's offer and a flushAll have returned.
     */
    List<List<Part>> closeStalledThenFillTheNextBurst(boolean overdue) throws Exception {
        StallingKey key = new StallingKey();
        Debouncer<Part> debouncer = Debouncer.<Part>builder(p -> key, handed::add)
                .window(Duration.ofMillis(500))
                .maxBurst(3)
                .ticker(ticker)
                .build();
        key.debouncer = debouncer;
        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            debouncer.offer(part(0));
            debouncer.offer(part(1));
            if (overdue) {
                ticker.advance(Duration.ofMillis(500));
            }
            Future<?> closing = threads.submit(() -> {
                key.stalled = Thread.currentThread();
                debouncer.offer(part(2));
            });
            assertThat(key.entered.await(1, TimeUnit.MINUTES)).isTrue();
            Future<?> next = threads.submit(() -> {
                for (int i = 3; i <= 5; i++) {
                    debouncer.offer(part(i));
                }
            });
            next.get(1, TimeUnit.MINUTES);
            key.release.countDown();
            closing.get(1, TimeUnit.MINUTES);
            debouncer.flushAll();
            return handed;
        } finally {
            key.release.countDown();
            threads.shutdownNow();
        }
    }

    /**
     * A key that stalls the thread set as {@link #stalled}, once, when it hashes the key while the debouncer has no
     * burst taking messages: until {@link #release} opens, having opened {@link #entered}.
     */
    static final class StallingKey {
        volatile Thread stalled;
        volatile Debouncer<?> debouncer;
        final CountDownLatch entered = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        @Override
        public int hashCode() {
            if (Thread.currentThread() == stalled && debouncer.pending() == 0) {
                stalled = null;
                entered.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return 1;
        }

        @Override
        public boolean equals(Object other) {
            return this == other;
        }
    }

    @Test
    void builder_maxWaitShorterThanWindow_isRejected() {
        assertThatThrownBy(() -> Debouncer.<Part>builder(Part::album, handed::add)
                        .window(Duration.ofSeconds(2))
                        .maxWait(Duration.ofSeconds(1))
                        .build())
                .hasMessage("maxWait must not be shorter than window PT2S but was PT1S");
        assertThatThrownBy(
                        () -> Debouncer.<Part>builder(Part::album, handed::add).maxBurst(0))
                .hasMessage("maxBurst must be positive but was 0");
    }

    @Test
    void builder_windowTooLongForTenOfIt_buildsWithMaxWaitOfOneWindow() {
        Debouncer<Part> longest = Debouncer.<Part>builder(Part::album, handed::add)
                .window(Duration.ofSeconds(Long.MAX_VALUE / 2))
                .ticker(ticker)
                .build();

        longest.offer(new Part("a", 1));
        ticker.advance(Duration.ofDays(365 * 1000));
        longest.flushDue();
        assertThat(handed).isEmpty();
    }

    @Test
    void offer_afterTheBurstWentQuiet_startsANewBurstInsteadOfExtendingTheQuietOne() {
        Debouncer<Part> debouncer = debouncer();
        debouncer.offer(new Part("a", 0));
        ticker.advance(Duration.ofMillis(500)); // quiet for the window: the burst is due
        debouncer.offer(new Part("a", 1)); // arrives before the periodic flush gets to it

        debouncer.flushDue();
        assertThat(handed).containsExactly(List.of(new Part("a", 0)));
        ticker.advance(Duration.ofMillis(500));
        debouncer.flushDue();
        assertThat(handed).containsExactly(List.of(new Part("a", 0)), List.of(new Part("a", 1)));
    }

    @Test
    void offer_afterTheBurstWaitedMaxWait_startsANewBurst() {
        Debouncer<Part> debouncer = debouncer();
        for (int i = 0; i < 5; i++) { // parts at 0, 400, ..., 1600 ms with no flush in between
            debouncer.offer(new Part("mash", i));
            ticker.advance(Duration.ofMillis(400));
        }
        debouncer.offer(new Part("mash", 5)); // 2000 ms after the first: the burst is due

        debouncer.flushDue();
        assertThat(handed).hasSize(1);
        assertThat(handed.get(0)).extracting(Part::n).containsExactly(0, 1, 2, 3, 4);
        assertThat(debouncer.pending()).isEqualTo(1);
    }

    @Test
    void flushDueAndOffer_clockSetBackByMoreThanAWindow_handTheBurstOver_ratherThanHoldingItForTheStep() {
        // Ticker.precise() or a clock of one's own follows the wall clock, which an administrator or NTP may step
        // back: the burst's times are then an hour ahead of now, and it would wait that hour past its maxWait.
        Debouncer<Part> debouncer = debouncer();
        debouncer.offer(new Part("a", 0));
        debouncer.offer(new Part("b", 0));
        ticker.advance(Duration.ofMillis(100));
        ticker.set(ticker.now().minus(Duration.ofHours(1)));

        assertThat(debouncer.flushDue()).isEqualTo(2);
        assertThat(handed).containsExactlyInAnyOrder(List.of(new Part("a", 0)), List.of(new Part("b", 0)));

        // The same for an offer that finds its key's burst so far ahead: it is due, and the new part starts a burst.
        handed.clear();
        debouncer.offer(new Part("a", 1));
        ticker.set(ticker.now().minus(Duration.ofHours(1)));
        debouncer.offer(new Part("a", 2));
        assertThat(handed).containsExactly(List.of(new Part("a", 1)));
        ticker.advance(Duration.ofMillis(500));
        debouncer.flushDue();
        assertThat(handed).containsExactly(List.of(new Part("a", 1)), List.of(new Part("a", 2)));
    }

    @Test
    void flushDue_aBurstStartedWhileEarlierHandlersRan_isNotTakenForOneOfAClockSetBack() {
        // The handler of "a" takes a second, during which "c" starts a burst: its time is ahead of the moment the
        // flush began, as after a clock set back, but the clock did not go back and "c" is not due. (The map keeps
        // "a", "b" and "c" in that order, and the flush's iterator has read "b" ahead when "a" is handed over.)
        AtomicReference<Debouncer<Part>> self = new AtomicReference<>();
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    handed.add(burst);
                    if (burst.get(0).album().equals("a")) {
                        ticker.advance(Duration.ofSeconds(1));
                        self.get().offer(new Part("c", 2));
                    }
                })
                .window(Duration.ofMillis(500))
                .ticker(ticker)
                .build();
        self.set(debouncer);
        debouncer.offer(new Part("a", 0));
        ticker.advance(Duration.ofMillis(300));
        debouncer.offer(new Part("b", 1));
        ticker.advance(Duration.ofMillis(200));

        assertThat(debouncer.flushDue()).isEqualTo(2);
        assertThat(handed).containsExactly(List.of(new Part("a", 0)), List.of(new Part("b", 1)));
        assertThat(debouncer.pending()).isEqualTo(1);
    }

    @Test
    void flushDue_clockSetBackByLessThanAWindow_holdsTheBurstNoLongerThanTheStep() {
        Debouncer<Part> debouncer = debouncer();
        debouncer.offer(new Part("a", 0));
        ticker.advance(Duration.ofMillis(100));
        ticker.set(ticker.now().minus(Duration.ofMillis(400))); // back by less than the 500 ms window: jitter

        ticker.advance(Duration.ofMillis(700)); // 400 ms quiet on the clock: not due
        assertThat(debouncer.flushDue()).isZero();
        ticker.advance(Duration.ofMillis(100)); // 500 ms quiet on the clock, 900 ms in fact: the step's 400 ms late
        assertThat(debouncer.flushDue()).isEqualTo(1);
    }

    @Test
    void start_handlerThrowingAnError_doesNotStopThePeriodicFlush() {
        // An executor that only records the periodic task, so that the test runs it. A task that throws has its
        // later runs suppressed (ScheduledExecutorService's contract), so it must not throw.
        List<Runnable> tasks = new ArrayList<>();
        ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1) {
            @Override
            public ScheduledFuture<?> scheduleWithFixedDelay(
                    Runnable command, long initialDelay, long delay, TimeUnit unit) {
                tasks.add(command);
                return null;
            }
        };
        try {
            Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                        if (burst.get(0).n() == 0) {
                            throw new NoClassDefFoundError("com/example/Missing");
                        }
                        handed.add(burst);
                    })
                    .window(Duration.ofMillis(500))
                    .ticker(ticker)
                    .build();
            debouncer.start(scheduler, Duration.ofMillis(100));
            assertThat(tasks).hasSize(1);

            debouncer.offer(new Part("a", 0));
            ticker.advance(Duration.ofMillis(500));
            assertThatCode(() -> tasks.get(0).run()).doesNotThrowAnyException();
            assertThat(debouncer.pending()).isZero();

            debouncer.offer(new Part("b", 1));
            ticker.advance(Duration.ofMillis(500));
            tasks.get(0).run();
            assertThat(handed).containsExactly(List.of(new Part("b", 1)));
        } finally {
            scheduler.shutdownNow();
        }
    }

    @Test
    void builder_reusedWithALongerWindow_defaultsMaxWaitToTenOfTheNewWindow() {
        Debouncer.Builder<Part> builder = Debouncer.<Part>builder(Part::album, handed::add)
                .window(Duration.ofMillis(100))
                .ticker(ticker);
        builder.build();
        // maxWait was never set: its default follows the window set now (20 s), not the first build's (1 s).
        Debouncer<Part> debouncer = builder.window(Duration.ofSeconds(2)).build();

        debouncer.offer(new Part("a", 0));
        for (int i = 1; i <= 10; i++) { // a part every 1.9 s, up to 19 s: never quiet for the window
            ticker.advance(Duration.ofMillis(1900));
            debouncer.flushDue();
            debouncer.offer(new Part("a", i));
        }
        debouncer.flushDue();
        assertThat(handed).isEmpty();
        ticker.advance(Duration.ofSeconds(1)); // 20 s after the first part, 1 s after the last
        debouncer.flushDue();
        assertThat(handed).hasSize(1);
        assertThat(handed.get(0)).hasSize(11);
    }

    /** Throws {@code e} undeclared, as a handler written in Kotlin throws a bot API's {@link IOException}. */
    @SuppressWarnings("unchecked")
    private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
        throw (E) e;
    }

    @Test
    void flushDue_handlerThrowingACheckedException_losesOnlyItsBurst_andTheFlushGoesOn() {
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    if (burst.get(0).album().equals("a")) {
                        throw sneaky(new IOException("send failed"));
                    }
                    handed.add(burst);
                })
                .window(Duration.ofMillis(500))
                .ticker(ticker)
                .build();
        debouncer.offer(new Part("a", 0));
        debouncer.offer(new Part("b", 1));
        ticker.advance(Duration.ofMillis(500));

        assertThat(debouncer.flushDue()).isEqualTo(2);
        assertThat(handed).containsExactly(List.of(new Part("b", 1)));
        assertThat(debouncer.pending()).isZero();

        // The same from an offer that finds its key's burst due: the caller's message is taken, nothing thrown.
        debouncer.offer(new Part("a", 2));
        ticker.advance(Duration.ofMillis(500));
        assertThatCode(() -> debouncer.offer(new Part("a", 3))).doesNotThrowAnyException();
        assertThat(debouncer.pending()).isEqualTo(1);
    }

    @Test
    void flushDue_handlerThrowingAThrowableThatIsNeitherAnErrorNorAnException_losesOnlyItsBurst() {
        // Kotlin may throw Throwable("...") itself; the key's next bursts must still reach the handler.
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    if (burst.get(0).n() == 0) {
                        throw sneaky(new Throwable("send failed"));
                    }
                    handed.add(burst);
                })
                .window(Duration.ofMillis(500))
                .ticker(ticker)
                .build();
        debouncer.offer(new Part("a", 0));
        ticker.advance(Duration.ofMillis(500));
        assertThatCode(debouncer::flushDue).doesNotThrowAnyException();

        debouncer.offer(new Part("a", 1));
        ticker.advance(Duration.ofMillis(500));
        assertThat(debouncer.flushDue()).isEqualTo(1);
        assertThat(handed).containsExactly(List.of(new Part("a", 1)));
    }

    @Test
    void flushAllAndFlushDue_handlerThrowingAnError_stillHandOverTheOtherBursts_thenRethrowIt() {
        AtomicInteger calls = new AtomicInteger();
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    if (calls.getAndIncrement() == 0) { // the first burst handed over, whichever key it is
                        throw new NoClassDefFoundError("com/example/Missing");
                    }
                    handed.add(burst);
                })
                .window(Duration.ofMillis(500))
                .ticker(ticker)
                .build();
        debouncer.offer(new Part("a", 0));
        debouncer.offer(new Part("b", 1));

        // Shutdown: one handler's error must not leave the other bursts behind for a flush that never comes.
        assertThatThrownBy(debouncer::flushAll).isInstanceOf(NoClassDefFoundError.class);
        assertThat(handed).hasSize(1);
        assertThat(debouncer.pending()).isZero();

        calls.set(0);
        debouncer.offer(new Part("c", 2));
        debouncer.offer(new Part("d", 3));
        ticker.advance(Duration.ofMillis(500));
        assertThatThrownBy(debouncer::flushDue).isInstanceOf(NoClassDefFoundError.class);
        assertThat(handed).hasSize(2);
        assertThat(debouncer.pending()).isZero();
    }

    /** A part of an album, as the clock test below sends them. */
    record ReviewPart(String album, int n) {}

    /**
     * A clock that throws once (the default clock rethrows when its thread cannot start, and works again on the next
     * read), just after an offer took its key's overdue burst: the burst is handed over all the same, and the key's
     * later bursts are not left waiting behind it.
     */
    @Test
    void offer_aClockThatThrowsOnceAfterTheCallTookAnOverdueBurst_stillHandsItOver_andTheKeyGoesOn() {
        ManualTicker manual = ManualTicker.create();
        AtomicInteger failOnRead = new AtomicInteger(-1); // the read number that throws once, -1 for none
        AtomicInteger reads = new AtomicInteger();
        Ticker flaky = () -> {
            if (reads.incrementAndGet() == failOnRead.get()) {
                throw new OutOfMemoryError("unable to create native thread"); // as CoarseTicker rethrows from wake
            }
            return manual.epochMicros();
        };
        List<List<ReviewPart>> handed = new CopyOnWriteArrayList<>();
        Debouncer<ReviewPart> debouncer = Debouncer.<ReviewPart>builder(ReviewPart::album, handed::add)
                .window(Duration.ofMillis(500))
                .maxWait(Duration.ofSeconds(2))
                .maxBurst(10)
                .ticker(flaky)
                .build();

        debouncer.offer(new ReviewPart("a", 0));
        manual.advance(Duration.ofMillis(600)); // burst [a0] is due, no flush has run yet
        failOnRead.set(reads.get() + 2); // the offer's first read finds [a0] due; its second read fails, once
        assertThatThrownBy(() -> debouncer.offer(new ReviewPart("a", 1))).isInstanceOf(OutOfMemoryError.class);

        // The clock works again. The key goes on with new bursts, flushed as usual.
        debouncer.offer(new ReviewPart("a", 2));
        manual.advance(Duration.ofMillis(600));
        debouncer.flushDue();
        debouncer.offer(new ReviewPart("a", 3));
        manual.advance(Duration.ofMillis(600));
        debouncer.flushDue();
        debouncer.flushAll();

        // [a0] was taken from the map by the failed offer; it and every later burst of "a" must still reach the
        // handler.
        assertThat(handed).as("bursts handed over").contains(List.of(new ReviewPart("a", 0)));
        assertThat(handed).contains(List.of(new ReviewPart("a", 2)), List.of(new ReviewPart("a", 3)));
    }

    /**
     * A handler interrupted (a scheduler's shutdownNow, a cancel(true) of the periodic flush) that lets its
     * InterruptedException through undeclared, as Kotlin code does: throwing it cleared the thread's interrupt
     * status, which the debouncer must set again, so that the handlers after it in that call, and whoever runs the
     * thread, still see the interrupt rather than blocking on as if nobody had asked the thread to stop.
     */
    @Test
    void flushDue_handlerThrowingInterruptedException_losesItsBurst_butTheThreadStaysInterrupted() {
        List<Boolean> interruptedOnEntry = new CopyOnWriteArrayList<>();
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, burst -> {
                    interruptedOnEntry.add(Thread.currentThread().isInterrupted());
                    if (interruptedOnEntry.size() == 1) { // the first burst handed over, whichever key it is
                        throw sneaky(new InterruptedException("sleep interrupted"));
                    }
                    handed.add(burst);
                })
                .window(Duration.ofMillis(500))
                .ticker(ticker)
                .build();
        debouncer.offer(new Part("a", 0));
        debouncer.offer(new Part("b", 0));
        ticker.advance(Duration.ofMillis(500));

        int taken;
        boolean interruptedAfter;
        try {
            taken = debouncer.flushDue();
        } finally {
            interruptedAfter = Thread.interrupted(); // clears it: the other tests run on this thread
        }

        assertThat(taken).isEqualTo(2);
        assertThat(handed).hasSize(1);
        assertThat(interruptedOnEntry)
                .as("the second handler sees the interrupt")
                .containsExactly(false, true);
        assertThat(interruptedAfter)
                .as("the caller's thread is still interrupted")
                .isTrue();
    }

    /**
     * A clock that throws (once: the default clock rethrows when its thread cannot start) on the first message of a
     * key leaves no empty burst behind: none that pending() counts, and no key kept for ever (nothing hands an empty
     * burst over, so only the key's next message would have found it; an album's key never comes back).
     */
    @Test
    void offer_aClockThatThrowsOnAKeysFirstMessage_leavesNoEmptyBurstBehind() {
        AtomicBoolean failNextRead = new AtomicBoolean();
        Ticker flaky = () -> {
            if (failNextRead.getAndSet(false)) {
                throw new OutOfMemoryError("unable to create native thread"); // as CoarseTicker rethrows from wake
            }
            return ticker.epochMicros();
        };
        Debouncer<Part> debouncer = Debouncer.<Part>builder(Part::album, handed::add)
                .window(Duration.ofMillis(500))
                .ticker(flaky)
                .build();

        failNextRead.set(true);
        assertThatThrownBy(() -> debouncer.offer(new Part("a", 0))).isInstanceOf(OutOfMemoryError.class);

        assertThat(debouncer.pending()).as("bursts left").isZero();
        // The key works as before once the clock does.
        debouncer.offer(new Part("a", 1));
        ticker.advance(Duration.ofMillis(500));
        assertThat(debouncer.flushDue()).isEqualTo(1);
        assertThat(handed).containsExactly(List.of(new Part("a", 1)));
        assertThat(debouncer.pending()).isZero();
    }
}
