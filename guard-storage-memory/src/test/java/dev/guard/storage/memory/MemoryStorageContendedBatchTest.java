package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A batch tries its holders in step order without waiting; one owned by another thread makes it let go of those it
 * took and own them all in key order instead. A hook plays the other thread on the batch's own thread: it owns a
 * holder before the batch starts and lets go of it once the batch has found it busy.
 */
class MemoryStorageContendedBatchTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    private final TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
    private final StateKey first = new StateKey("per-user", "u:1");
    private final StateKey second = new StateKey("per-chat", "c:1");

    /** The steps the hook was told of. */
    private final List<Integer> contendedSteps = new ArrayList<>();

    private Holder owned;
    private long ownedWord;

    private final MemoryStorage storage = MemoryStorage.builder()
            .contended(i -> {
                contendedSteps.add(i);
                // Asserted here, before the batch takes the key order: a batch that kept the other holder would
                // otherwise wait for itself there, for ever.
                Holder other = storage().holder(i == 0 ? second : first);
                assertThat(other.word()).as("the batch's other holder").isNotEqualTo(Holder.BUSY);
                owned.unlock(ownedWord);
            })
            .build();

    private MemoryStorage storage() {
        return storage;
    }

    /** Both keys with one token left; then {@code busy}'s holder owned, as another thread's batch would. */
    private void setUp(StateKey busy) {
        assertThat(storage.acquire(first, bucket, 1, T0)).isEqualTo(Outcome.admitted(1));
        assertThat(storage.acquire(second, bucket, 1, T0)).isEqualTo(Outcome.admitted(1));
        owned = storage.holder(busy);
        ownedWord = owned.lock();
    }

    private BatchResult takeBoth() {
        return storage.evaluate(Batch.of(new Step(first, bucket, 1), new Step(second, bucket, 1)), T0);
    }

    @Test
    void aBusyLaterHolder_makesTheBatchLetGoOfTheEarlierOne_thenBothCommitOnce() {
        setUp(second);
        BatchResult r = takeBoth();
        assertThat(contendedSteps).containsExactly(1);
        assertThat(r.outcome(0)).isEqualTo(Outcome.admitted(0));
        assertThat(r.outcome(1)).isEqualTo(Outcome.admitted(0));
        // Each key gave its last token once: nothing is left.
        assertThat(Outcome.isAdmitted(storage.acquire(first, bucket, 1, T0))).isFalse();
        assertThat(Outcome.isAdmitted(storage.acquire(second, bucket, 1, T0))).isFalse();
    }

    @Test
    void aBusyFirstHolder_makesTheBatchTakeNothing_thenBothCommitOnce() {
        setUp(first);
        BatchResult r = takeBoth();
        assertThat(contendedSteps).containsExactly(0);
        assertThat(r.admitted()).isTrue();
        assertThat(Outcome.isAdmitted(storage.acquire(first, bucket, 1, T0))).isFalse();
        assertThat(Outcome.isAdmitted(storage.acquire(second, bucket, 1, T0))).isFalse();
    }

    @Test
    void aBatchThatFindsNothingBusy_neverTakesTheKeyOrder() {
        assertThat(takeBoth().admitted()).isTrue();
        assertThat(contendedSteps).isEmpty();
    }
}
