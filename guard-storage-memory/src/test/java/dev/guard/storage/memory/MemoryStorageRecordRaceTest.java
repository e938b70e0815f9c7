package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.benmanes.caffeine.cache.Expiry;
import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A limit step at a record's key that another call overtakes between the key's conversion (the record's holder
 * replaced by one that can hold a limit) and the step's commit: the record stays until the step commits, so a batch
 * that then rejects leaves it, and a record write in between still sees it.
 *
 * <p>Hooks play the other thread on the converting one, between the conversion and the step's owning its holders: in
 * the cache's expiry callback of the conversion's update of the subject (an update of another subject's bucket,
 * which touches no cache entry, may run there), or in the storage's executor, which runs the cache's maintenance
 * right after that update (where a write of the same key may run).
 */
class MemoryStorageRecordRaceTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;
    private static final long HOUR = 3600 * SECOND;

    /** Runs once, in the next expiry callback of an update of an existing subject. */
    private final AtomicReference<Runnable> inUpdate = new AtomicReference<>();

    /** Runs once, when the cache next hands its maintenance to the executor. */
    private final AtomicReference<Runnable> afterWrite = new AtomicReference<>();

    private final MemoryStorage storage = MemoryStorage.builder()
            .executor(task -> {
                run(afterWrite);
                task.run();
            })
            .expiry(delegate -> new Expiry<>() {
                @Override
                public long expireAfterCreate(String subject, Entry entry, long currentTime) {
                    return delegate.expireAfterCreate(subject, entry, currentTime);
                }

                @Override
                public long expireAfterUpdate(String subject, Entry entry, long currentTime, long currentDuration) {
                    run(inUpdate);
                    return delegate.expireAfterUpdate(subject, entry, currentTime, currentDuration);
                }

                @Override
                public long expireAfterRead(String subject, Entry entry, long currentTime, long currentDuration) {
                    return delegate.expireAfterRead(subject, entry, currentTime, currentDuration);
                }
            })
            .build();
    private final StateKey record = new StateKey("profile", "u:1");
    private final byte[] value = {1, 2, 3};
    private final Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));

    @AfterEach
    void close() {
        storage.close();
    }

    private static void run(AtomicReference<Runnable> hook) {
        Runnable h = hook.getAndSet(null);
        if (h != null) {
            h.run();
        }
    }

    /**
     * Runs a batch of a take from a one-token bucket and a cooldown at the record's key, which another take
     * overtakes right after the batch converted the record's key; checks that the batch rejected and left the
     * record and no cooldown.
     */
    private void overtakenBatchRejects() {
        StateKey perChat = new StateKey("per-chat", "chat:1");
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofSeconds(60));
        // The bucket's holder exists (a look leaves it full), so that taking its token touches no cache entry.
        assertThat(storage.acquire(perChat, bucket, 0, T0)).isEqualTo(Outcome.admitted(1));
        long[] taken = {Long.MIN_VALUE};
        inUpdate.set(() -> taken[0] = storage.acquire(perChat, bucket, 1, T0));

        BatchResult result =
                storage.evaluate(Batch.of(new Step(perChat, bucket, 1), new Step(record, cooldown, 1)), T0);

        assertThat(taken[0]).as("the take that overtook the batch").isEqualTo(Outcome.admitted(0));
        assertThat(result.admitted()).isFalse();
        // The batch came after the take (it saw the bucket empty) and rejected: it changed nothing.
        Optional<VersionedRecord> after = storage.getRecord(record);
        assertThat(after).isPresent();
        assertThat(after.get().version()).isEqualTo(1);
        assertThat(after.get().value()).containsExactly(value);
    }

    @Test
    void aBatchOvertakenAfterItConvertedARecordsKey_rejectsAndLeavesTheRecord_forEver() {
        assertThat(storage.putRecord(record, value, 0)).isEqualTo(1);
        overtakenBatchRejects();

        // A record never expires, wherever the key's holder came from.
        storage.cleanUp(T0 + HOUR);
        assertThat(storage.getRecord(record)).isPresent();
        assertThat(storage.putRecord(record, new byte[] {4}, 1)).isEqualTo(2);
        // A look of the cooldown: none started (a look commits, and drops the record, as in the reference).
        assertThat(storage.acquire(record, cooldown, 0, T0 + HOUR)).isEqualTo(Outcome.admitted(1));
        assertThat(storage.getRecord(record)).isEmpty();
    }

    @Test
    void aRecordLeftInAGroupByARejectedBatch_isNeverPruned_andForgetCountsIt() {
        StateKey member = new StateKey("set:members", "u:1");
        storage.addMember(member, T0 + SECOND, T0);
        assertThat(storage.putRecord(record, value, 0)).isEqualTo(1);
        assertThat(storage.entry("u:1")).isInstanceOf(Group.class);
        overtakenBatchRejects();

        storage.cleanUp(T0 + HOUR);
        Group group = (Group) storage.entry("u:1");
        assertThat(group).isNotNull();
        group.prune(storage.clockMicros());
        assertThat(group.size()).as("the record's slot alone").isEqualTo(1);
        assertThat(storage.getRecord(record)).isPresent();
        assertThat(storage.forget("u:1")).isEqualTo(1);
        assertThat(storage.getRecord(record)).isEmpty();
    }

    @Test
    void aCommitThatDropsARecord_letsTheKeyExpireWithItsState() {
        StateKey other = new StateKey("profile", "u:2");
        StateKey otherMember = new StateKey("set:members", "u:2");
        storage.putRecord(record, value, 0);
        storage.addMember(otherMember, T0 + SECOND, T0);
        storage.putRecord(other, value, 0);
        // One step and one batch, each converting a record's key and committing there.
        assertThat(storage.acquire(record, cooldown, 1, T0)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.evaluate(
                                Batch.of(
                                        new Step(other, cooldown, 1),
                                        new Step(new StateKey("per-chat", "chat:1"), cooldown, 1)),
                                T0)
                        .admitted())
                .isTrue();
        assertThat(storage.getRecord(record)).isEmpty();
        assertThat(storage.getRecord(other)).isEmpty();

        // The cooldowns end after ten seconds; their keys' entries go within two intervals after that.
        storage.cleanUp(T0 + 10 * SECOND + 2 * (10 * SECOND + CallerClock.SLACK_MICROS) + 2 * SECOND);
        assertThat(storage.entry("u:1")).isNull();
        assertThat(storage.entry("u:2")).isNull();
    }

    @Test
    void aRecordWriteBetweenAStepsConversionAndItsCommit_seesTheRecord() {
        assertThat(storage.putRecord(record, value, 0)).isEqualTo(1);
        long[] written = {Long.MIN_VALUE};
        Optional<?>[] read = {null};
        afterWrite.set(() -> {
            // A writer that believes the key holds no record: it does, at version 1, until the step commits.
            written[0] = storage.putRecord(record, new byte[] {9}, 0);
            read[0] = storage.getRecord(record);
        });

        long outcome = storage.acquire(record, cooldown, 1, T0);

        assertThat(read[0]).as("the record read while the step runs").isPresent();
        assertThat(written[0]).as("a write expecting no record").isEqualTo(-1);
        assertThat(outcome).isEqualTo(Outcome.admitted(0));
        assertThat(storage.getRecord(record)).as("after the step committed").isEmpty();
        assertThat(storage.acquire(record, cooldown, 1, T0)).isEqualTo(Outcome.rejected(10_000_000));
    }
}
