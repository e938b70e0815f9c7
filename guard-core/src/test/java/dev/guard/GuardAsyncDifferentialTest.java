package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.Cooldown;
import dev.guard.limit.LimitSpec;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Guard#checkAsync} against {@link Guard#check} over random messages: two guards built alike, each on a storage
 * of its own, decide the same history (chains of several filters, tenants, handler scopes, missing ids, pauses and
 * blocklist changes, storage failures of the decision or of the notice only, under each failure policy), the async
 * one with or without an executor (one that refuses its tasks, one that throws), its storage's stage complete at once,
 * completed later by the test or on another thread; every decision and everything the listeners, the reject listeners and the reject notice heard must match.
 */
class GuardAsyncDifferentialTest {
    /** A message; its tenant may be {@link #UNREADABLE}. Its own toString, as the tenant's may throw. */
    record Msg(int n, Long user, Long chat, String text, Object tenant) {
        @Override
        public String toString() {
            return "#" + n;
        }
    }

    /** A tenant whose text cannot be read. */
    static final Object UNREADABLE = new Object() {
        @Override
        public String toString() {
            throw new IllegalStateException("no text");
        }
    };

    /** A storage that fails while told to: every decision, or only the reject notice's calls. */
    static final class Flaky extends ForwardingStorage {
        final String stages;
        final BlockingQueue<Runnable> held = new LinkedBlockingQueue<>();
        final ExecutorService completer;
        volatile boolean failing;
        volatile boolean failingNotice;
        private int asyncFailures;

        /** {@code stages}: "done" (complete when answered), "held" (the test completes them), "thread" (another). */
        Flaky(String stages, ExecutorService completer) {
            super(ReferenceStorage.create());
            this.stages = stages;
            this.completer = completer;
        }

        private boolean fails(StateKey key) {
            return failing || (failingNotice && key.scope().endsWith(Guard.NOTICE_SCOPE));
        }

        private static GuardStorageException down() {
            return new GuardStorageException("test", "call", "down", null);
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            if (fails(batch.step(0).key())) {
                throw down();
            }
            return super.evaluate(batch, nowMicros);
        }

        @Override
        public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
            if (failing) {
                throw down();
            }
            return super.evaluateInPlace(buffer, nowMicros);
        }

        @Override
        public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
            if (fails(key)) {
                throw down();
            }
            return super.acquire(key, spec, permits, nowMicros);
        }

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            boolean fail = fails(batch.step(0).key());
            if (fail && asyncFailures++ % 3 == 0) {
                throw down(); // instead of answering a stage
            }
            // Decided (and consumed) when sent, as Redis does; the answer arrives as the stages say.
            BatchResult result = fail ? null : super.evaluate(batch, nowMicros);
            CompletableFuture<BatchResult> stage = new CompletableFuture<>();
            Runnable answer = () -> {
                if (fail) {
                    stage.completeExceptionally(down());
                } else {
                    stage.complete(result);
                }
            };
            switch (stages) {
                case "done" -> answer.run();
                case "held" -> held.add(answer);
                default -> completer.execute(answer);
            }
            return stage;
        }
    }

    /** What the test's loop finds in {@link Flaky#held} once a stage completed. */
    static final Runnable DONE = () -> {};

    final List<ExecutorService> threads = new ArrayList<>();

    @AfterEach
    void stopThreads() {
        threads.forEach(ExecutorService::shutdownNow);
    }

    private ExecutorService thread() {
        ExecutorService thread = Executors.newSingleThreadExecutor();
        threads.add(thread);
        return thread;
    }

    /** One side: its guard, storage and what its listeners heard. */
    static final class Side {
        final Flaky storage;
        final List<String> heard = new CopyOnWriteArrayList<>();
        final Guard<Msg> guard;

        Side(ManualTicker ticker, Flaky storage, String policy, int filters, boolean tenant, Executor executor) {
            this.storage = storage;
            FailurePolicy failurePolicy =
                    switch (policy) {
                        case "open" -> FailurePolicy.failOpen();
                        case "closed" -> FailurePolicy.failClosed();
                        default -> FailurePolicy.fallbackTo(ReferenceStorage.create());
                    };
            Guard.Builder<Msg> b = Guard.<Msg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Msg::user)
                    .chatId(Msg::chat)
                    .missingKeys((filters & 64) != 0 ? MissingKeyPolicy.REJECT : MissingKeyPolicy.SKIP_FILTER)
                    .breaker(3, Duration.ofSeconds(5))
                    .onStorageFailure(failurePolicy)
                    .listener((m, d, nanos) -> heard.add("decided " + m + " " + d))
                    .onReject((m, d) -> heard.add("rejected " + m + " " + d))
                    .rejectNotice(Duration.ofSeconds(3), (m, d) -> heard.add("notice " + m + " " + d));
            if (executor != null) {
                b.asyncExecutor(executor);
            }
            if (tenant) {
                b.tenant(Msg::tenant);
            }
            if ((filters & 1) != 0) {
                b.filter("no-links", m -> m.text() == null || !m.text().startsWith("http"));
            }
            if ((filters & 2) != 0) {
                b.blocklist();
            }
            if ((filters & 4) != 0) {
                b.duplicates(Duration.ofSeconds(5), Msg::text);
            }
            if ((filters & 8) != 0) {
                b.throttle("per-chat", KeyBy.CHAT, 4, Duration.ofSeconds(10));
            }
            b.tokenBucket("per-user", KeyBy.USER, 3, 1, Duration.ofSeconds(2));
            if ((filters & 16) != 0) {
                b.gate("pause", KeyBy.USER);
            }
            if ((filters & 32) != 0) {
                b.limit("per-text", Msg::text, new Cooldown(Duration.ofSeconds(4)));
            }
            guard = b.build();
        }
    }

    @ParameterizedTest(name = "executor {0}, stages {1}, fail {2}, filters {3}, tenant {4}")
    @CsvSource({
        "none, done, open, 0, false",
        "none, done, fallback, 127, true",
        "none, held, closed, 63, false",
        "none, held, fallback, 31, true",
        "none, thread, fallback, 62, false",
        "none, thread, open, 95, true",
        "direct, done, closed, 127, true",
        "direct, held, fallback, 14, false",
        "thread, done, fallback, 63, true",
        "thread, held, open, 127, false",
        "thread, held, fallback, 127, true",
        "thread, thread, closed, 31, true",
        "thread, thread, fallback, 61, false",
        "refusing, held, fallback, 127, true",
        "refusing, thread, closed, 6, false",
        "broken, done, fallback, 127, true",
        "broken, thread, open, 63, false",
    })
    void checkAsync_decidesAndTellsAsCheck(String executor, String stages, String policy, int filters, boolean tenant)
            throws Exception {
        ManualTicker ticker = ManualTicker.create();
        Executor asyncExecutor =
                switch (executor) {
                    case "none" -> null;
                    case "direct" -> Runnable::run;
                    case "thread" -> thread();
                    case "refusing" ->
                        task -> {
                            throw new RejectedExecutionException("shut down");
                        };
                    default ->
                        task -> {
                            throw new IllegalStateException("an executor of one's own, broken");
                        };
                };
        Side sync = new Side(ticker, new Flaky("done", null), policy, filters, tenant, null);
        Side async = new Side(ticker, new Flaky(stages, thread()), policy, filters, tenant, asyncExecutor);
        SplittableRandom random = new SplittableRandom(31L * filters + stages.hashCode() + executor.hashCode());
        Long[] users = {null, 1L, 2L, 3L};
        Long[] chats = {null, 10L, 1L, 20L};
        String[] texts = {null, "", "hi", "hello", "http://spam"};
        Object[] tenants = {null, "acme", "beta", UNREADABLE};
        int rejected = 0;
        int degraded = 0;
        for (int i = 0; i < 1_500; i++) {
            if (random.nextInt(15) == 0) {
                long user = 1 + random.nextInt(3);
                boolean add = random.nextBoolean();
                String t = tenant && random.nextBoolean() ? "acme" : null;
                Duration d = Duration.ofMillis(1 + random.nextInt(4_000));
                boolean pause = (filters & 16) != 0 && random.nextBoolean();
                for (Side side : List.of(sync, async)) {
                    if (pause) {
                        side.guard.pause(t, "pause", user, d);
                    } else if (add) {
                        side.guard.blocklist(t).add(user, d);
                    } else {
                        side.guard.blocklist(t).remove(user);
                    }
                }
            }
            Msg m = new Msg(
                    i,
                    users[random.nextInt(users.length)],
                    chats[random.nextInt(chats.length)],
                    texts[random.nextInt(texts.length)],
                    tenant ? tenants[random.nextInt(tenants.length)] : null);
            int failure = random.nextInt(16);
            boolean down = failure == 0 || (i > 700 && i < 740);
            boolean noticeDown = failure == 1;
            for (Side side : List.of(sync, async)) {
                side.storage.failing = down;
                side.storage.failingNotice = noticeDown;
            }
            Function<Guard<Msg>, Guard<Msg>> view = random.nextInt(3) == 0 ? g -> g.scope("search") : g -> g;
            Decision expected = view.apply(sync.guard).check(m);
            CompletableFuture<Decision> stage =
                    view.apply(async.guard).checkAsync(m).toCompletableFuture();
            stage.whenComplete((d, e) -> async.storage.held.add(DONE)); // wakes the loop below
            while (!stage.isDone()) {
                Runnable answer = async.storage.held.poll(10, TimeUnit.SECONDS);
                if (answer == null) {
                    break; // nothing completes it: the get below fails
                }
                answer.run();
            }
            Decision actual = stage.get(10, TimeUnit.SECONDS);
            assertThat(actual).as("message %d: %s", i, m).isEqualTo(expected);
            assertThat(async.heard).as("message %d: %s", i, m).isEqualTo(sync.heard);
            rejected += expected.rejected() ? 1 : 0;
            degraded += expected.degraded() ? 1 : 0;
            ticker.advance(Duration.ofMillis(random.nextInt(1_500)));
        }
        assertThat(async.storage.held).as("answers never sent").allMatch(answer -> answer == DONE);
        assertThat(rejected).isPositive();
        assertThat(degraded).isPositive();
        assertThat(sync.heard).anyMatch(h -> h.startsWith("notice"));
    }
}
