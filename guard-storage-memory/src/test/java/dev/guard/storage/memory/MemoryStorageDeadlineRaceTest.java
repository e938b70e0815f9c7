package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Gate;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Gates and memberships against concurrent work on their subject: an owned holder keeps its cache lifetime, and a
 * batch reads a key it found absent at its linearization point, not when it resolved it.
 */
class MemoryStorageDeadlineRaceTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    private final MemoryStorage storage = MemoryStorage.create();
    private final StateKey ban = new StateKey("ban", "u");

    /**
     * Raises a one-hour ban, then runs {@code update} on the ban's subject while owning the ban's holder if {@code
     * owned} (as a gate read on the slow path or a batch owning everything does); answers whether the ban still
     * holds ten seconds later, after the cache's maintenance.
     */
    private boolean banHoldsAfter(boolean owned, Runnable setUp, Runnable update) {
        storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
        setUp.run();
        Holder gate = storage.holder(ban);
        long word = owned ? gate.lock() : 0;
        update.run();
        if (owned) {
            gate.unlock(word);
        }
        storage.cleanUp(T0 + 10 * SECOND);
        return !Outcome.isAdmitted(storage.acquire(ban, Gate.INSTANCE, 0, T0 + 10 * SECOND));
    }

    @Test
    void aGateOwnedWhileItsGroupIsUpdated_staysUntilItsDeadline() {
        assertThat(banHoldsAfter(
                        true,
                        () -> storage.addMember(new StateKey("m1", "u"), T0 + SECOND, T0),
                        () -> storage.addMember(new StateKey("m2", "u"), T0 + SECOND, T0)))
                .isTrue();
    }

    @Test
    void aGateOwnedWhileARecordWriteFailsOnItsSubject_staysUntilItsDeadline() {
        // The version does not match: the cache's update of the subject answers the same group.
        assertThat(banHoldsAfter(
                        true,
                        () -> storage.acquire(
                                new StateKey("b1", "u"), new TokenBucket(1, 1, Duration.ofSeconds(1)), 1, T0),
                        () -> storage.putRecord(new StateKey("rec", "u"), new byte[0], 5)))
                .isTrue();
    }

    @Test
    void aGateNotOwned_staysUntilItsDeadline() {
        assertThat(banHoldsAfter(
                        false,
                        () -> storage.addMember(new StateKey("m1", "u"), T0 + SECOND, T0),
                        () -> storage.addMember(new StateKey("m2", "u"), T0 + SECOND, T0)))
                .isTrue();
    }

    @Test
    void aLoneGateOwnedDuringAnUpdateOfItsSubject_staysUntilItsDeadline() {
        assertThat(banHoldsAfter(true, () -> {}, () -> storage.removeMember(new StateKey("other", "u"))))
                .isTrue();
    }

    @Test
    void aPermanentMemberOwnedWhileItsGroupIsUpdated_staysForever() {
        StateKey set = new StateKey("set:admins", "u");
        storage.addMember(set, Long.MAX_VALUE, T0);
        storage.acquire(new StateKey("b1", "u"), new TokenBucket(1, 1, Duration.ofSeconds(1)), 1, T0);
        Holder h = storage.holder(set);
        long word = h.lock();
        storage.acquire(new StateKey("b2", "u"), new TokenBucket(1, 1, Duration.ofSeconds(1)), 1, T0);
        storage.addMember(new StateKey("m2", "u"), T0 + SECOND, T0);
        h.unlock(word);
        storage.cleanUp(T0 + 100 * SECOND);
        assertThat(storage.isMember(set, T0 + 100 * SECOND)).isTrue();
    }

    @Test
    void aBatchThatSawATakeAfterABan_seesTheBan() {
        // The storage's executor runs the cache's maintenance inside the batch's first cache update: the hook plays
        // another thread that acts between the batch's resolving of its keys and its locking of them.
        AtomicReference<Runnable> hook = new AtomicReference<>();
        MemoryStorage hooked = MemoryStorage.builder()
                .executor(task -> {
                    Runnable h = hook.getAndSet(null);
                    if (h != null) {
                        h.run();
                    }
                    task.run();
                })
                .build();
        StateKey chatBan = new StateKey("ban", "chat:1");
        StateKey perUser = new StateKey("per-user", "u:1");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(60));
        long[] inside = new long[1];
        hook.set(() -> {
            // Another thread, between the batch's resolve and its locking: a ban, then a take.
            hooked.raiseGate(chatBan, T0 + 3600 * SECOND, T0);
            inside[0] = hooked.acquire(perUser, bucket, 1, T0);
        });
        BatchResult r =
                hooked.evaluate(Batch.of(new Step(chatBan, Gate.INSTANCE, 0), new Step(perUser, bucket, 1)), T0);
        assertThat(inside[0]).isEqualTo(Outcome.admitted(1));
        // The batch saw the take that followed the ban (it got the last token), so it must see the ban.
        assertThat(r.admitted()).isFalse();
    }
}
