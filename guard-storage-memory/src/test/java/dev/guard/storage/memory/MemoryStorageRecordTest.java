package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Gate;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Limit steps at a record's key, as the reference runs them: the record goes only when a step commits there. */
class MemoryStorageRecordTest {
    private final long now = ManualTicker.create().epochMicros();

    @Test
    void limitStepsOnARecordsKey_dropItOnlyWhenTheyCommit_asTheReference() {
        for (Storage storage : List.of(MemoryStorage.create(), ReferenceStorage.create())) {
            StateKey record = new StateKey("profile", "u");
            StateKey gate = new StateKey("gate", "u");
            TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(1));
            storage.putRecord(record, new byte[] {1, 2, 3}, 0);
            storage.raiseGate(gate, now + 1_000_000, now);

            storage.acquire(record, bucket, 6, now);
            storage.evaluate(Batch.of(new Step(record, bucket, 1), new Step(gate, Gate.INSTANCE, 1)), now);
            assertThat(storage.getRecord(record))
                    .as("%s after rejections", storage)
                    .isPresent();

            storage.evaluate(
                    Batch.of(new Step(record, bucket, 1), new Step(new StateKey("other", "u"), bucket, 1)), now);
            assertThat(storage.getRecord(record))
                    .as("%s after a commit", storage)
                    .isEmpty();
        }
    }
}
