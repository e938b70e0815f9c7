package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A batch reads gates and sets without owning their keys, one after another: another thread may close a key the
 * batch has read open, then open one it reads next. No instant admits such a batch, so it must not admit: the
 * reference, which runs every call under one lock, rejects it in either order. A hook plays the other thread on the
 * batch's own thread, right after the batch read its first such key.
 */
class MemoryStorageUnownedReadsTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    /** Runs once, right after the next read of a key that a batch does not own. */
    private final AtomicReference<Runnable> afterRead = new AtomicReference<>();

    private final MemoryStorage storage = MemoryStorage.builder()
            .unownedRead(i -> {
                Runnable h = afterRead.getAndSet(null);
                if (h != null) {
                    h.run();
                }
            })
            .build();

    private final StateKey userBan = new StateKey("ban", "u:1");
    private final StateKey chatGate = new StateKey("slow-mode", "chat:1");

    /** The batch's time: the chat's gate, raised until T0 + 10 s, is still closed then. */
    private final long now = T0 + 10 * SECOND - 1;

    private final Batch batch =
            Batch.of(new Step(userBan, Membership.MUST_BE_ABSENT, 0), new Step(chatGate, Gate.INSTANCE, 0));

    /**
     * The chat's gate, closed until T0 + 10 s, in a group with a permanent member so that its holder stays after its
     * deadline; the ban by {@code setUp}.
     */
    private void setUp(Storage s, Consumer<Storage> ban) {
        s.addMember(new StateKey("set:known-chats", "chat:1"), Long.MAX_VALUE, T0);
        s.raiseGate(chatGate, T0 + 10 * SECOND, T0);
        ban.accept(s);
    }

    /**
     * The other thread: bans the user for good, then a call on a clock one microsecond later than the batch's reads
     * the chat's gate, over for it, and so drops it (the reference drops expired state on reading it too).
     */
    private static void banThenLaterRead(Storage s, StateKey userBan, StateKey chatGate, long now) {
        s.addMember(userBan, Long.MAX_VALUE, now);
        assertThat(s.acquire(chatGate, Gate.INSTANCE, 0, now + 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    /** What the reference answers with the other thread's calls before the batch, and after it. */
    private void assertNoOrderAdmits(Consumer<Storage> ban) {
        for (boolean otherFirst : new boolean[] {true, false}) {
            ReferenceStorage reference = ReferenceStorage.create();
            setUp(reference, ban);
            if (otherFirst) {
                banThenLaterRead(reference, userBan, chatGate, now);
            }
            assertThat(reference.evaluate(batch, now).admitted())
                    .as("the reference, the other calls " + (otherFirst ? "first" : "after"))
                    .isFalse();
        }
    }

    private BatchResult raced(Consumer<Storage> ban) {
        setUp(storage, ban);
        afterRead.set(() -> banThenLaterRead(storage, userBan, chatGate, now));
        BatchResult result = storage.evaluate(batch, now);
        assertThat(afterRead.get()).as("the other thread ran").isNull();
        return result;
    }

    @Test
    void aKeyReadAbsent_thenClosed_whileAnotherOpens_doesNotAdmit() {
        Consumer<Storage> noBan = s -> {};
        assertNoOrderAdmits(noBan);

        BatchResult result = raced(noBan);

        assertThat(result.admitted()).isFalse();
        assertThat(result.outcome(0)).as("the ban, for good").isEqualTo(Outcome.NEVER);
    }

    @Test
    void aKeyReadOpenFromItsHolder_thenReplaced_whileAnotherOpens_doesNotAdmit() {
        // A ban that ended at T0 + 1 s, whose holder stays beside a permanent member: the batch reads it over.
        Consumer<Storage> oldBan = s -> {
            s.addMember(new StateKey("set:known-users", "u:1"), Long.MAX_VALUE, T0);
            s.addMember(userBan, T0 + SECOND, T0);
        };
        assertNoOrderAdmits(oldBan);

        BatchResult result = raced(oldBan);

        assertThat(result.admitted()).isFalse();
        assertThat(result.outcome(0)).as("the ban, for good").isEqualTo(Outcome.NEVER);
    }
}
