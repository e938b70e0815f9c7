package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A batch reads gates and sets without owning their keys, one after another, when their subject's entry is not one
 * it owns (a subject whose only key the gate or set is, or a subject without keys): another thread may close a key
 * the batch has read open, then open one it reads next. No instant admits such a batch, so it must not admit: the
 * reference, which runs every call under one lock, rejects it in either order. A hook plays the other thread on the
 * batch's own thread, right after the batch read its first such key. The keys of a subject whose entry the batch owns
 * cannot change meanwhile, and are not read this way; nor are a batch's keys when all its subjects have entries, which
 * it owns in one pass.
 */
class MemoryStorageUnownedReadsTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    /** Runs once, right after the next read of a key that a batch does not own. */
    private final AtomicReference<Runnable> afterRead = new AtomicReference<>();

    /** The steps whose keys batches read without owning them, in order. */
    private final List<Integer> unownedReads = new CopyOnWriteArrayList<>();

    private final MemoryStorage storage = MemoryStorage.builder()
            .unownedRead(i -> {
                unownedReads.add(i);
                Runnable h = afterRead.getAndSet(null);
                if (h != null) {
                    h.run();
                }
            })
            .build();

    private final StateKey userBan = new StateKey("ban", "u:1");
    private final StateKey registration = new StateKey("set:registered", "u:1");
    private final StateKey chatGate = new StateKey("slow-mode", "chat:1");

    /** The batch's time: the chat's gate, raised until T0 + 10 s, is still closed then. */
    private final long now = T0 + 10 * SECOND - 1;

    /** The chat's gate, closed until T0 + 10 s, its chat's only key; then what {@code setUp} adds. */
    private void setUp(Storage s, Consumer<Storage> setUp) {
        s.raiseGate(chatGate, T0 + 10 * SECOND, T0);
        setUp.accept(s);
    }

    /**
     * The other thread: {@code close} closes the batch's first key, then a call on a clock one microsecond later than
     * the batch's reads the chat's gate, over for it, and so drops it (the reference drops expired state on reading
     * it too).
     */
    private void closeThenLaterRead(Storage s, Consumer<Storage> close) {
        close.accept(s);
        assertThat(s.acquire(chatGate, Gate.INSTANCE, 0, now + 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    /** What the reference answers with the other thread's calls before the batch, and after it. */
    private void assertNoOrderAdmits(Batch batch, Consumer<Storage> setUp, Consumer<Storage> close) {
        for (boolean otherFirst : new boolean[] {true, false}) {
            ReferenceStorage reference = ReferenceStorage.create();
            setUp(reference, setUp);
            if (otherFirst) {
                closeThenLaterRead(reference, close);
            }
            assertThat(reference.evaluate(batch, now).admitted())
                    .as("the reference, the other calls " + (otherFirst ? "first" : "after"))
                    .isFalse();
        }
    }

    private BatchResult raced(Batch batch, Consumer<Storage> setUp, Consumer<Storage> close) {
        assertNoOrderAdmits(batch, setUp, close);
        setUp(storage, setUp);
        afterRead.set(() -> closeThenLaterRead(storage, close));
        BatchResult result = storage.evaluate(batch, now);
        assertThat(afterRead.get()).as("the other thread ran").isNull();
        return result;
    }

    @Test
    void aKeyReadAbsent_thenClosed_whileAnotherOpens_doesNotAdmit() {
        Batch batch = Batch.of(new Step(userBan, Membership.MUST_BE_ABSENT, 0), new Step(chatGate, Gate.INSTANCE, 0));

        BatchResult result = raced(batch, s -> {}, s -> s.addMember(userBan, Long.MAX_VALUE, now));

        assertThat(result.admitted()).isFalse();
        assertThat(result.outcome(0)).as("the ban, for good").isEqualTo(Outcome.NEVER);
    }

    @Test
    void aKeyReadOpenFromItsHolder_thenRemoved_whileAnotherOpens_doesNotAdmit() {
        // The user's registration, its only key: the batch reads it from its holder, which the other thread removes.
        // A third user's ban, absent (a subject without keys), keeps the batch out of the one pass, which would own
        // both holders rather than read them.
        Batch batch = Batch.of(
                new Step(registration, Membership.MUST_BE_PRESENT, 0),
                new Step(chatGate, Gate.INSTANCE, 0),
                new Step(new StateKey("ban", "u:3"), Membership.MUST_BE_ABSENT, 0));

        BatchResult result = raced(
                batch, s -> s.addMember(registration, Long.MAX_VALUE, T0), s -> assertThat(s.removeMember(registration))
                        .isTrue());

        assertThat(result.admitted()).isFalse();
        assertThat(result.outcome(0)).as("no longer registered").isEqualTo(Outcome.NEVER);
        assertThat(unownedReads).as("the keys read without owning them, twice").containsExactly(0, 1, 2, 0, 1, 2);
    }

    @Test
    void theKeysOfASubjectWhoseEntryTheBatchOwns_areReadUnderIt() {
        // The user has a group (a ban and a bucket): the batch owns it for the bucket, and reads the ban under it;
        // only the chat's gate, its chat's only key, and a third user's absent ban (a subject without keys, which
        // keeps the batch out of the one pass) are read without owning them.
        TokenBucket bucket = TokenBucket.of(10, Duration.ofSeconds(1));
        StateKey userBucket = new StateKey("bucket", "u:1");
        storage.raiseGate(chatGate, T0 + 20 * SECOND, T0);
        storage.addMember(userBan, T0 + 20 * SECOND, T0);
        assertThat(storage.acquire(userBucket, bucket, 1, T0)).isEqualTo(Outcome.admitted(9));
        assertThat(storage.entry("u:1")).isInstanceOf(Group.class);

        BatchResult result = storage.evaluate(
                Batch.of(
                        new Step(userBan, Membership.MUST_BE_ABSENT, 0),
                        new Step(userBucket, bucket, 1),
                        new Step(chatGate, Gate.INSTANCE, 0),
                        new Step(new StateKey("ban", "u:3"), Membership.MUST_BE_ABSENT, 0)),
                now);

        assertThat(result.admitted()).isFalse();
        assertThat(result.outcome(0)).as("banned for another 10 s").isEqualTo(Outcome.rejected(10 * SECOND + 1));
        assertThat(unownedReads).containsExactly(2, 3);
    }
}
