package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * A key that a batch found absent in its subject's group, before it owned the group, may be added before it does: the
 * batch must look again once it owns the group. Hooks play the other thread: it owns the group while the batch tries
 * it, then raises the gate and takes a token before the batch owns the group.
 */
class MemoryStorageAbsentUnderOwnerTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    private final AtomicReference<Runnable> onUnownedRead = new AtomicReference<>();
    private final AtomicReference<Runnable> onContended = new AtomicReference<>();
    private final MemoryStorage storage = MemoryStorage.builder()
            .unownedRead(i -> {
                Runnable r = onUnownedRead.getAndSet(null);
                if (r != null) {
                    r.run();
                }
            })
            .contended(i -> {
                Runnable r = onContended.getAndSet(null);
                if (r != null) {
                    r.run();
                }
            })
            .build();

    private final String user = "u:1";
    private final StateKey tokens = new StateKey("tokens", user);
    private final StateKey window = new StateKey("window", user);
    private final StateKey ban = new StateKey("ban-gate", user);
    private final StateKey otherChat = new StateKey("slow", "chat:9");
    private final TokenBucket bucket = TokenBucket.of(3, Duration.ofHours(1));
    private final FixedWindow fixed = new FixedWindow(100, Duration.ofHours(1));

    @Test
    void aGateRaisedBetweenResolvingAndOwning_isSeen_soTheBatchRejectsAsTheReference() throws Exception {
        // The user has a group: a bucket with 2 of 3 tokens left, and a window.
        assertThat(storage.acquire(tokens, bucket, 1, T0)).isEqualTo(Outcome.admitted(2));
        storage.acquire(window, fixed, 1, T0);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);

        CountDownLatch owned = new CountDownLatch(1);
        CountDownLatch go = new CountDownLatch(1);
        AtomicReference<Long> othersTake = new AtomicReference<>();
        // T1: a batch that owns the user's group and pauses in its unowned read of another subject's absent key;
        // then, once it is done, raises the user's gate and takes a token (two calls, in this order).
        Thread t1 = new Thread(() -> {
            onUnownedRead.set(() -> {
                owned.countDown();
                Uninterrupted.await(go);
            });
            storage.evaluate(Batch.of(new Step(window, fixed, 1), new Step(otherChat, Gate.INSTANCE, 0)), T0);
            storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
            othersTake.set(storage.acquire(tokens, bucket, 1, T0));
        });
        t1.start();
        owned.await();

        // Main: a batch on the bucket and the (absent) gate. It resolves, finds the group owned by T1 (contended),
        // lets T1 finish both of its calls, then owns the group.
        onContended.set(() -> {
            go.countDown();
            Uninterrupted.join(t1);
        });
        Batch batch = Batch.of(new Step(tokens, bucket, 1), new Step(ban, Gate.INSTANCE, 0));
        BatchResult result = storage.evaluate(batch, T0);
        assertThat(onContended.get()).as("the contended hook ran").isNull();
        assertThat(othersTake.get()).isEqualTo(Outcome.admitted(1));

        // The batch saw the bucket after T1's take (1 token left -> admitted(0)), which T1 made after raising the
        // gate: at any instant where the bucket reads so, the gate is raised. The reference, in that order:
        ReferenceStorage reference = ReferenceStorage.create();
        reference.acquire(tokens, bucket, 1, T0);
        reference.acquire(window, fixed, 1, T0);
        reference.acquire(window, fixed, 1, T0);
        reference.raiseGate(ban, T0 + 3600 * SECOND, T0);
        reference.acquire(tokens, bucket, 1, T0);
        BatchResult expected = reference.evaluate(batch, T0);
        assertThat(result.outcome(0)).as("the bucket, read after T1's take").isEqualTo(Outcome.admitted(0));
        assertThat(expected.admitted()).as("the reference, T1's calls first").isFalse();
        assertThat(result.admitted())
                .as("not admitted through a gate raised before a take it saw")
                .isFalse();
        assertThat(result.outcome(1)).isEqualTo(expected.outcome(1));
    }
}
