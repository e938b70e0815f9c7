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
}
