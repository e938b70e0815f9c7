package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A block whose write to the sender's record failed holds in this process until the sender is set active again,
 * here or in another pool; another pool's end of the sender's warm-up stage, a record written after the block and
 * active too, is no activation and does not end it.
 */
class SenderPoolBlockWriteFailureTest {
    private static final WarmUpSchedule SCHEDULE =
            WarmUpSchedule.table(10, 20, 40).withWindow(Duration.ofMinutes(1)).withStageLength(Duration.ofMinutes(1));

    private final ManualTicker ticker = ManualTicker.create();
    private final ReferenceStorage storage = ReferenceStorage.create();
    private final SenderPoolTest.FailingStorage failing = new SenderPoolTest.FailingStorage(storage);
    private final List<PoolEvent> events = new ArrayList<>();
    private int chats;

    /** This process's pool: over the storage that fails writes on demand, its events in {@link #events}. */
    private final SenderPool here = SenderPool.builder(failing)
            .ticker(ticker)
            .listener(events::add)
            .sender(Sender.builder("bot-new").warmUp(SCHEDULE).build())
            .sender(Sender.of("bot-old"))
            .build();

    /** Another process's pool of the same name over the same storage. */
    private final SenderPool there = SenderPool.builder(storage)
            .ticker(ticker)
            .sender(Sender.builder("bot-new").warmUp(SCHEDULE).build())
            .sender(Sender.of("bot-old"))
            .build();

    /**
     * The other pool sends enough through bot-new to judge its stage 0, which is then over; this pool reports the
     * platform's block of bot-new, and the storage fails to write it (the record only, or the held membership too).
     */
    private void blockThatTheStorageFailsToWrite(boolean membershipFailsToo) {
        for (int i = 0; i < 10; i++) {
            ((SendDecision.Granted) there.acquire(fresh().pinnedTo("bot-new"))).delivered(Duration.ofMillis(20));
        }
        ticker.advance(Duration.ofMinutes(1));
        here.sync();
        failing.failingRecordWrites = true;
        failing.failingWrites = membershipFailsToo;

        assertThatThrownBy(() -> here.blocked("bot-new"))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("down");

        failing.failingRecordWrites = false;
        failing.failingWrites = false;
        ticker.advance(Duration.ofSeconds(1));
    }

    private OutboundMessage fresh() {
        return OutboundMessage.to("chat-" + chats++);
    }

    private List<String> eventsOf(String sender) {
        return SenderPoolTest.eventsOf(events, sender);
    }

    @Test
    void aFailedBlockWrite_isNotEndedByAnotherPoolsWarmUpStageAdvance() {
        blockThatTheStorageFailsToWrite(false);

        there.sync(); // the other pool ends stage 0: an active record, written after the block
        assertThat(there.warmUpStage("bot-new")).as("the other pool's stage").isEqualTo(1);
        ticker.advance(Duration.ofSeconds(1));
        here.sync();

        assertThat(here.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(here.stats().sender("bot-new").risk())
                .as("risk after the block")
                .isEqualTo(1.0);
        // Another message that was in flight reports the block: the same block, which the storage now records.
        here.blocked("bot-new");
        assertThat(here.stats().sender("bot-new").blocks()).isEqualTo(1);
        assertThat(eventsOf("bot-new"))
                .containsExactly("SENDER_BLOCKED: blocked by the platform", "WARM_UP_STEPPED_BACK: stage 1 -> 0");
    }

    @Test
    void aFailedBlockWrite_keepsThisPoolFromAdvancingTheBlockedSendersWarmUpStage() {
        // Found by a review: the sync that followed advanced the sender this pool holds blocked to stage 1 (its record
        // still said active), and a block that should have stepped it back left it a stage ahead instead.
        for (int i = 0; i < 10; i++) {
            ((SendDecision.Granted) here.acquire(fresh().pinnedTo("bot-new"))).delivered(Duration.ofMillis(20));
        }
        ticker.advance(Duration.ofMinutes(1)); // stage 0 is over, with enough sends through this pool to judge it
        failing.failingRecordWrites = true;
        assertThatThrownBy(() -> here.blocked("bot-new")).isInstanceOf(GuardStorageException.class);
        failing.failingRecordWrites = false;

        here.sync();

        assertThat(here.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(here.warmUpStage("bot-new")).isZero();
        assertThat(eventsOf("bot-new")).isEmpty();
        // Another message that was in flight reports the block, which the storage now records: still stage 0.
        here.blocked("bot-new");
        there.sync();
        assertThat(there.warmUpStage("bot-new")).isZero();
        assertThat(eventsOf("bot-new")).containsExactly("SENDER_BLOCKED: blocked by the platform");
    }

    @Test
    void aFailedBlockWriteAndMembership_keepTheSenderOutOfRouting_afterAnotherPoolsWarmUpStageAdvance() {
        blockThatTheStorageFailsToWrite(true);

        there.sync();
        ticker.advance(Duration.ofSeconds(1));
        here.sync();

        // Nothing in the storage holds bot-new: only this process knows of the block.
        assertThat(here.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        for (int i = 0; i < 20; i++) {
            SendDecision d = here.acquire(fresh());
            assertThat(d).isInstanceOf(SendDecision.Granted.class);
            assertThat(((SendDecision.Granted) d).sender()).isEqualTo("bot-old");
        }
        assertThat(here.acquire(fresh().pinnedTo("bot-new")).granted()).isFalse();
    }

    @Test
    void aFailedBlockWrite_endsWhenAnotherPoolSetsTheSenderActive_afterItsWarmUpStageAdvance() {
        blockThatTheStorageFailsToWrite(false);
        there.sync(); // stage 0 -> 1
        ticker.advance(Duration.ofSeconds(1));

        there.blocked("bot-new");
        ticker.advance(Duration.ofSeconds(1));
        there.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofMinutes(2));
        here.sync();

        assertThat(here.status("bot-new")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(here.stats().sender("bot-new").risk()).isZero();
        SendDecision d = here.acquire(fresh().pinnedTo("bot-new"));
        assertThat(d).isInstanceOf(SendDecision.Granted.class);
        assertThat(((SendDecision.Granted) d).sender()).isEqualTo("bot-new");
    }
}
