package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.LimitSpec;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.junit.jupiter.api.Test;

/** {@link Guard#checkAsync} while the storage's answer is still on its way. */
class GuardAsyncTest {
    record Msg(long user, String text) {}

    /**
     * A remote storage in miniature: each batch is decided (and its permits consumed) when it is sent, as Redis does,
     * and the answer arrives when the test releases it.
     */
    static class HeldStorage extends ForwardingStorage {
        final CompletableFuture<Void> answer = new CompletableFuture<>();

        HeldStorage() {
            super(ReferenceStorage.create());
        }

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            BatchResult result = delegate().evaluate(batch, nowMicros);
            return answer.thenApply(ignored -> result);
        }
    }

    @Test
    void checkAsync_cancelledByTheCallerBeforeTheStorageAnswers_stillReportsTheDecisionThatConsumedAPermit() {
        HeldStorage storage = new HeldStorage();
        List<Decision> reported = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .listener((message, decision, nanos) -> reported.add(decision))
                .build();

        // A caller that gives up (its own timeout, a shutdown) while Redis is deciding: the permit is spent there.
        guard.checkAsync(new Msg(1, "a")).toCompletableFuture().cancel(false);
        storage.answer.complete(null);

        assertThat(reported)
                .as("the listener sees every decision the storage made, as GuardListener promises")
                .extracting(Decision::reason)
                .containsExactly(Reason.ALLOWED);
        Decision next = guard.checkAsync(new Msg(1, "b")).toCompletableFuture().join();
        assertThat(next.rejected()).as("the permit was consumed").isTrue();
        assertThat(reported).hasSize(2);
    }

    @Test
    void checkAsync_cancelledByTheCaller_stillRunsTheRejectListeners() {
        HeldStorage storage = new HeldStorage();
        List<String> rejected = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .onReject((message, decision) -> rejected.add(message.text()))
                .build();
        assertThat(guard.check(new Msg(1, "a")).allowed()).isTrue(); // the synchronous call is not held

        guard.checkAsync(new Msg(1, "b")).toCompletableFuture().cancel(false);
        storage.answer.complete(null);

        assertThat(rejected).containsExactly("b");
    }

    @Test
    void checkAsync_anErrorInTheStoragesStage_failsTheStageWithIt_asCheckThrowsIt_andIsNoDegradedDecision() {
        AssertionError boom = new AssertionError("a bug in the storage");
        HeldStorage storage = new HeldStorage() {
            @Override
            public BatchResult evaluate(Batch batch, long nowMicros) {
                throw boom;
            }

            @Override
            public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
                throw boom;
            }

            @Override
            public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
                throw boom;
            }

            @Override
            public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
                return CompletableFuture.failedFuture(boom);
            }
        };
        List<Decision> reported = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .listener((message, decision, nanos) -> reported.add(decision))
                .build();

        assertThatThrownBy(() -> guard.check(new Msg(1, "a"))).isSameAs(boom);
        CompletableFuture<Decision> stage = guard.checkAsync(new Msg(1, "b")).toCompletableFuture();

        assertThat(stage).isCompletedExceptionally();
        assertThatThrownBy(stage::join).cause().isSameAs(boom);
        assertThat(reported).as("no decision was made, on either path").isEmpty();
    }

    @Test
    void checkAsync_anErrorInTheNoticesStage_failsTheStageWithIt_asCheckThrowsIt_andIsNoStorageFailure() {
        AssertionError boom = new AssertionError("a bug in the storage");
        HeldStorage storage = new HeldStorage() {
            @Override
            public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
                if (key.scope().endsWith(Guard.NOTICE_SCOPE)) {
                    throw boom;
                }
                return super.acquire(key, spec, permits, nowMicros);
            }

            @Override
            public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
                return batch.step(0).key().scope().endsWith(Guard.NOTICE_SCOPE)
                        ? CompletableFuture.failedFuture(boom)
                        : CompletableFuture.completedFuture(delegate().evaluate(batch, nowMicros));
            }
        };
        List<String> heard = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = Guard.<Msg>builder()
                .storage(storage)
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .breaker(1, Duration.ofMinutes(1))
                .onStorageFailure(FailurePolicy.fallbackTo(ReferenceStorage.create()))
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> heard.add("notice " + m.text()))
                .listener((m, d, nanos) -> heard.add(d.reason() + " " + m.text()))
                .build();
        guard.check(new Msg(1, "a"));
        guard.checkAsync(new Msg(2, "a")).toCompletableFuture().join();

        assertThatThrownBy(() -> guard.check(new Msg(1, "b"))).isSameAs(boom);
        CompletableFuture<Decision> stage = guard.checkAsync(new Msg(2, "b")).toCompletableFuture();

        assertThat(stage).isCompletedExceptionally();
        assertThatThrownBy(stage::join).cause().isSameAs(boom);
        Decision next = guard.checkAsync(new Msg(3, "a")).toCompletableFuture().join();
        assertThat(heard)
                .as("no notice from the fallback, and no decision heard of, on either path")
                .containsExactly("ALLOWED a", "ALLOWED a", "ALLOWED a");
        assertThat(next.degraded())
                .as("the breaker (1 failure) counted no storage failure")
                .isFalse();
    }

    /** A guard over {@link HeldStorage} whose asynchronous continuations go to {@code executor}, and what it heard. */
    private static Guard<Msg> guardWith(Executor executor, List<String> heard) {
        return Guard.<Msg>builder()
                .storage(new HeldStorage() {
                    @Override
                    public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
                        return CompletableFuture.completedFuture(delegate().evaluate(batch, nowMicros));
                    }
                })
                .ticker(ManualTicker.create())
                .userId(Msg::user)
                .throttle("per-user", KeyBy.USER, 1, Duration.ofMinutes(1))
                .asyncExecutor(executor)
                .rejectNotice(Duration.ofSeconds(30), (m, d) -> heard.add("notice " + m.text()))
                .listener((m, d, nanos) -> heard.add(d.reason() + " " + m.text()))
                .build();
    }

    @Test
    void checkAsync_anExecutorThatThrowsOtherThanARefusal_isPassedBy_andTheStageCompletes() {
        List<String> heard = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = guardWith(
                task -> {
                    throw new IllegalStateException("executor closed");
                },
                heard);

        CompletableFuture<Decision> first = guard.checkAsync(new Msg(1, "a")).toCompletableFuture();
        CompletableFuture<Decision> second = guard.checkAsync(new Msg(1, "b")).toCompletableFuture();

        assertThat(first).as("completed, not left for ever").isDone();
        assertThat(second).isDone();
        assertThat(first.join().allowed()).isTrue();
        assertThat(second.join().reason()).isEqualTo(Reason.THROTTLED);
        assertThat(heard).containsExactly("ALLOWED a", "notice b", "THROTTLED b");
    }

    @Test
    void checkAsync_anExecutorThatRunsTheTaskAndThenRefusesIt_tellsTheListenersAndSendsTheNoticeOnce() {
        List<String> heard = new CopyOnWriteArrayList<>();
        Guard<Msg> guard = guardWith(
                task -> {
                    task.run();
                    throw new RejectedExecutionException("refused after running it");
                },
                heard);

        guard.checkAsync(new Msg(1, "a")).toCompletableFuture().join();
        Decision throttled =
                guard.checkAsync(new Msg(1, "b")).toCompletableFuture().join();

        assertThat(throttled.reason()).isEqualTo(Reason.THROTTLED);
        assertThat(heard).containsExactly("ALLOWED a", "notice b", "THROTTLED b");
    }
}
