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

    @Test
    void aGateOwnedWhileItsGroupIsUpdated_staysUntilItsDeadline() {
        MemoryStorage storage = MemoryStorage.create();
        StateKey ban = new StateKey("ban", "u");
        storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
        storage.addMember(new StateKey("m1", "u"), T0 + SECOND, T0);
        Holder gate = storage.holder(ban);
        long word = gate.lock(); // what acquireLocked / an ownAll batch does for a gate read
        storage.addMember(new StateKey("m2", "u"), T0 + SECOND, T0); // compute -> expireAfterUpdate -> granted
        gate.unlock(word);
        storage.cleanUp(T0 + 10 * SECOND);
        assertThat(Outcome.isAdmitted(storage.acquire(ban, Gate.INSTANCE, 0, T0 + 10 * SECOND)))
                .isFalse();
    }

    @Test
    void aGateOwnedWhileARecordWriteFailsOnItsSubject_staysUntilItsDeadline() {
        MemoryStorage storage = MemoryStorage.create();
        StateKey ban = new StateKey("ban", "u");
        storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
        TokenBucket b = new TokenBucket(1, 1, Duration.ofSeconds(1));
        storage.acquire(new StateKey("b1", "u"), b, 1, T0);
        Holder gate = storage.holder(ban);
        long word = gate.lock();
        storage.putRecord(new StateKey("rec", "u"), new byte[0], 5); // version mismatch: compute returns same group
        gate.unlock(word);
        storage.cleanUp(T0 + 10 * SECOND);
        assertThat(Outcome.isAdmitted(storage.acquire(ban, Gate.INSTANCE, 0, T0 + 10 * SECOND)))
                .isFalse();
    }

    @Test
    void aGateNotOwned_staysUntilItsDeadline() {
        MemoryStorage storage = MemoryStorage.create();
        StateKey ban = new StateKey("ban", "u");
        storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
        storage.addMember(new StateKey("m1", "u"), T0 + SECOND, T0);
        storage.addMember(new StateKey("m2", "u"), T0 + SECOND, T0);
        storage.cleanUp(T0 + 10 * SECOND);
        assertThat(Outcome.isAdmitted(storage.acquire(ban, Gate.INSTANCE, 0, T0 + 10 * SECOND)))
                .isFalse();
    }

    @Test
    void aPermanentMemberOwnedWhileItsGroupIsUpdated_staysForever() {
        MemoryStorage storage = MemoryStorage.create();
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
        MemoryStorage storage = MemoryStorage.builder()
                .executor(task -> {
                    Runnable h = hook.getAndSet(null);
                    if (h != null) {
                        h.run();
                    }
                    task.run();
                })
                .build();
        StateKey ban = new StateKey("ban", "chat:1");
        StateKey perUser = new StateKey("per-user", "u:1");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(60));
        long[] inside = new long[1];
        hook.set(() -> {
            // Another thread, between the batch's resolve and its locking: a ban, then a take.
            storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
            inside[0] = storage.acquire(perUser, bucket, 1, T0);
        });
        BatchResult r = storage.evaluate(Batch.of(new Step(ban, Gate.INSTANCE, 0), new Step(perUser, bucket, 1)), T0);
        assertThat(inside[0]).isEqualTo(Outcome.admitted(1));
        // The batch saw the take that followed the ban (it got the last token), so it must see the ban.
        assertThat(r.admitted()).isFalse();
    }

    @Test
    void aLoneGateOwnedDuringAnUpdateOfItsSubject_staysUntilItsDeadline() {
        MemoryStorage storage = MemoryStorage.create();
        StateKey ban = new StateKey("ban", "u");
        storage.raiseGate(ban, T0 + 3600 * SECOND, T0);
        Holder gate = storage.holder(ban);
        long word = gate.lock();
        storage.removeMember(new StateKey("other", "u")); // compute returns the same lone holder
        gate.unlock(word);
        storage.cleanUp(T0 + 2 * SECOND);
        assertThat(Outcome.isAdmitted(storage.acquire(ban, Gate.INSTANCE, 0, T0 + 2 * SECOND)))
                .isFalse();
    }
}
