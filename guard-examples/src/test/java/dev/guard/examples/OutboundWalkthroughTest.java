package dev.guard.examples;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.route.GroupComparison;
import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.PlatformPreset.WhatsAppTier;
import dev.guard.route.PoolEvent;
import dev.guard.route.PoolStats;
import dev.guard.route.SendDecision;
import dev.guard.route.SendDecision.Delayed;
import dev.guard.route.SendDecision.Granted;
import dev.guard.route.SendDecision.Reason;
import dev.guard.route.SendDecision.Rejected;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.route.SenderStatus;
import dev.guard.route.WarmUpSchedule;
import dev.guard.storage.memory.MemoryStorage;
import java.time.DayOfWeek;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/**
 * The outbound side as a user meets it: what the README and the Javadoc of {@code dev.guard.route} promise, each
 * promise a test, on the in-memory storage and a {@link ManualTicker}. Two {@link SenderPool}s over one storage stand
 * for two bot processes.
 */
class OutboundWalkthroughTest {
    private final ManualTicker ticker = ManualTicker.create();
    private final MemoryStorage storage = MemoryStorage.create();
    private final List<PoolEvent> events = new CopyOnWriteArrayList<>();

    private SenderPool.Builder pool(PlatformPreset preset) {
        return SenderPool.builder(storage)
                .ticker(ticker)
                .preset(preset)
                .listener(events::add)
                .random(new SplittableRandom(7));
    }

    private static Granted granted(SendDecision decision) {
        assertThat(decision).isInstanceOf(Granted.class);
        return (Granted) decision;
    }

    private static Delayed delayed(SendDecision decision, Reason reason) {
        assertThat(decision).isInstanceOf(Delayed.class);
        Delayed delayed = (Delayed) decision;
        assertThat(delayed.reason()).isEqualTo(reason);
        return delayed;
    }

    private static Rejected rejected(SendDecision decision, Reason reason) {
        assertThat(decision).isInstanceOf(Rejected.class);
        Rejected rejected = (Rejected) decision;
        assertThat(rejected.reason()).isEqualTo(reason);
        return rejected;
    }

    private List<PoolEvent> events(PoolEvent.Type type) {
        return events.stream().filter(e -> e.type() == type).toList();
    }

    // --- Telegram's limits -------------------------------------------------------------------------------------

    @Test
    void telegram_privateChat_oneMessagePerSecond_whicheverBotCarriesIt() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();

        Granted first = granted(pool.acquire(OutboundMessage.to(42)));
        assertThat(first.chat()).isEqualTo("42");
        assertThat(first.at()).isEqualTo(ticker.now());

        // The other bot is free, but the chat's limit is the chat's: another sender would not help.
        Delayed second = delayed(pool.acquire(OutboundMessage.to("42")), Reason.CHAT_LIMIT);
        assertThat(second.retryAfter()).isBetween(Duration.ofMillis(1), Duration.ofSeconds(1));
        assertThat(second.until()).isEqualTo(ticker.now().plus(second.retryAfter()));

        // Another chat is not held back by this one.
        granted(pool.acquire(OutboundMessage.to(43)));

        // Waiting out the delay is enough, in one process.
        ticker.set(second.until());
        granted(pool.acquire(OutboundMessage.to(42)));
    }

    @Test
    void telegram_group_getsOnePerSecond_and20PerMinute_evenUnmarked_byItsNegativeId() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        long group = -1001234567890L;
        Instant start = ticker.now();

        granted(pool.acquire(OutboundMessage.to(group))); // not marked inGroup(): the negative id says it
        delayed(pool.acquire(OutboundMessage.to(group)), Reason.CHAT_LIMIT); // one a second in any chat
        for (int i = 1; i < 20; i++) {
            ticker.advance(Duration.ofSeconds(1));
            granted(pool.acquire(OutboundMessage.to(Long.toString(group))));
        }
        ticker.advance(Duration.ofSeconds(1));
        Delayed twentyFirst = delayed(pool.acquire(OutboundMessage.to(group).inGroup()), Reason.CHAT_LIMIT);
        assertThat(twentyFirst.until()).isAfter(start.plusSeconds(59)).isBeforeOrEqualTo(start.plusSeconds(60));

        ticker.set(twentyFirst.until());
        granted(pool.acquire(OutboundMessage.to(group)));
    }

    @Test
    void telegram_usernameChat_isAGroup_andAPositiveIdIsOneOnlyWhenMarked() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();

        for (int i = 0; i < 20; i++) {
            granted(pool.acquire(OutboundMessage.to("@mychannel")));
            granted(pool.acquire(OutboundMessage.to(555).inGroup()));
            granted(pool.acquire(OutboundMessage.to(777))); // a private chat: one a second, no minute limit
            ticker.advance(Duration.ofSeconds(1));
        }
        delayed(pool.acquire(OutboundMessage.to("@mychannel")), Reason.CHAT_LIMIT);
        delayed(pool.acquire(OutboundMessage.to(555).inGroup()), Reason.CHAT_LIMIT);
        granted(pool.acquire(OutboundMessage.to(777)));
    }

    @Test
    void telegram_aBotTakesThirtyMessagesASecond_andEachBotAddsItsOwn() {
        SenderPool one =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        for (int chat = 1; chat <= 30; chat++) {
            assertThat(granted(one.acquire(OutboundMessage.to(chat))).sender()).isEqualTo("bot-a");
        }
        // The per-second quota is a counter of ten 100 ms sub-buckets: a message counts for one second and at most
        // one sub-bucket more, never less (the safe side).
        Delayed busy = delayed(one.acquire(OutboundMessage.to(31)), Reason.SENDERS_BUSY);
        assertThat(busy.retryAfter()).isBetween(Duration.ofSeconds(1), Duration.ofMillis(1100));

        SenderPool two = pool(PlatformPreset.telegram())
                .name("two-bots")
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        Map<String, Integer> bySender = new HashMap<>();
        for (int chat = 1; chat <= 60; chat++) {
            SendDecision decision = two.acquire(OutboundMessage.to(chat));
            bySender.merge(granted(decision).sender(), 1, Integer::sum);
        }
        assertThat(bySender).containsExactlyInAnyOrderEntriesOf(Map.of("bot-a", 30, "bot-b", 30));
        Delayed bothBusy = delayed(two.acquire(OutboundMessage.to(61)), Reason.SENDERS_BUSY);

        ticker.set(bothBusy.until());
        granted(two.acquire(OutboundMessage.to(61)));
    }

    @Test
    void telegramPaidBroadcast_liftsTheBotsCeilingTo1000_butKeepsTheChatLimits() {
        PlatformPreset paid = PlatformPreset.telegramPaidBroadcast();
        assertThat(paid.perSecond()).isEqualTo(1000);
        SenderPool pool = pool(paid).sender(Sender.of("bot-a")).build();

        for (int chat = 1; chat <= 1000; chat++) {
            granted(pool.acquire(OutboundMessage.to(chat)));
        }
        Delayed busy = delayed(pool.acquire(OutboundMessage.to(1001)), Reason.SENDERS_BUSY);
        ticker.set(busy.until());
        granted(pool.acquire(OutboundMessage.to(1)));
        delayed(pool.acquire(OutboundMessage.to(1)), Reason.CHAT_LIMIT);
    }

    // --- WhatsApp Cloud API ------------------------------------------------------------------------------------

    @Test
    void whatsApp_eightyASecondPerNumber_lowerWhereTheNumberAlsoReceives() {
        SenderPool pool = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.UNLIMITED))
                .sender(Sender.of("+15550001"))
                .sender(Sender.builder("+15550002").perSecond(60).build()) // 20 a second of inbound peak
                .build();

        Map<String, Integer> bySender = new HashMap<>();
        for (int user = 1; user <= 140; user++) {
            bySender.merge(
                    granted(pool.acquire(OutboundMessage.to("4917000" + user))).sender(), 1, Integer::sum);
        }
        assertThat(bySender).containsExactlyInAnyOrderEntriesOf(Map.of("+15550001", 80, "+15550002", 60));
        delayed(pool.acquire(OutboundMessage.to("4917000999")), Reason.SENDERS_BUSY);
    }

    @Test
    void whatsApp_oneMessageEverySixSecondsToOneUser_acrossAllNumbers() {
        SenderPool pool = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.TIER_10K))
                .sender(Sender.of("+15550001"))
                .sender(Sender.of("+15550002"))
                .build();

        granted(pool.acquire(OutboundMessage.to("491701234567")));
        ticker.advance(Duration.ofSeconds(5));
        Delayed pair = delayed(pool.acquire(OutboundMessage.to("491701234567")), Reason.CHAT_LIMIT);
        assertThat(pair.retryAfter()).isLessThanOrEqualTo(Duration.ofSeconds(1));
        ticker.advance(Duration.ofSeconds(1));
        granted(pool.acquire(OutboundMessage.to("491701234567")));
    }

    @Test
    void whatsApp_tier_isTheBusinessPortfoliosMessagesPer24Hours_sharedByItsNumbers() {
        assertThat(PlatformPreset.whatsAppCloud(WhatsAppTier.UNLIMITED).global())
                .isNull();
        assertThat(WhatsAppTier.TIER_250.users()).isEqualTo(250);
        assertThat(WhatsAppTier.TIER_2K.users()).isEqualTo(2_000);
        assertThat(WhatsAppTier.TIER_10K.users()).isEqualTo(10_000);
        assertThat(WhatsAppTier.TIER_100K.users()).isEqualTo(100_000);

        SenderPool pool = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.TIER_250))
                .sender(Sender.of("+15550001"))
                .sender(Sender.of("+15550002"))
                .build();
        // Two seconds of both numbers' 80 a second (320) would hold more than the tier lets out.
        int granted = grants(pool, 160, 1);
        ticker.advance(Duration.ofSeconds(2));
        granted += grants(pool, 160, 1001);
        assertThat(granted).isEqualTo(250);
        Delayed tier = delayed(pool.acquire(OutboundMessage.to("4917999")), Reason.GLOBAL_LIMIT);
        assertThat(tier.retryAfter()).isGreaterThan(Duration.ofHours(23));

        ticker.advance(Duration.ofHours(25));
        granted(pool.acquire(OutboundMessage.to("4917999")));
    }

    @Test
    void perDay_isAMovingTwentyFourHours_countedInOneHourSteps() {
        SenderPool pool = pool(PlatformPreset.telegram().withPerDay(3))
                .sender(Sender.of("bot-a"))
                .build();
        for (int chat = 1; chat <= 3; chat++) {
            granted(pool.acquire(OutboundMessage.to(chat)));
        }
        Delayed day = delayed(pool.acquire(OutboundMessage.to(4)), Reason.SENDERS_BUSY);
        assertThat(day.retryAfter()).isBetween(Duration.ofHours(24), Duration.ofHours(25));
        ticker.set(day.until());
        granted(pool.acquire(OutboundMessage.to(4)));
    }

    @Test
    void setGroupLimits_reachesEveryPool_atItsNextSync() {
        SenderPool pool = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.UNLIMITED))
                .sender(Sender.of("+15550001"))
                .build();
        SenderPool otherProcess = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.UNLIMITED))
                .sender(Sender.of("+15550001"))
                .build();

        assertThat(pool.setGroupLimits(Sender.DEFAULT_GROUP, 5, 0)).isEqualTo(1);

        assertThat(grants(pool, 30, 1)).isEqualTo(5);
        ticker.advance(Duration.ofSeconds(2)); // past the counter's second and the other pool's sync interval
        assertThat(grants(otherProcess, 30, 100)).isEqualTo(5);
    }

    /** Asks {@code count} messages to distinct chats at this instant; answers how many were granted. */
    private static int grants(SenderPool pool, int count, int firstChat) {
        int granted = 0;
        for (int chat = firstChat; chat < firstChat + count; chat++) {
            if (pool.acquire(OutboundMessage.to(chat)).granted()) {
                granted++;
            }
        }
        return granted;
    }

    @Test
    void aChat_isTheTextOfItsId_oneSpellingPerChat() {
        SenderPool pool = pool(PlatformPreset.whatsAppCloud(WhatsAppTier.UNLIMITED))
                .sender(Sender.of("+15550001"))
                .build();

        granted(pool.acquire(OutboundMessage.to("491701234567")));
        delayed(pool.acquire(OutboundMessage.to("491701234567")), Reason.CHAT_LIMIT);
        granted(pool.acquire(OutboundMessage.to("+491701234567"))); // as documented: another chat to the pool
    }

    // --- Pushback: 429 retry_after -----------------------------------------------------------------------------

    @Test
    void retryAfter_gatesTheSenderForExactlyThatLong_inEveryPool_andTrafficMovesToTheOthers() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        SenderPool otherProcess = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        Instant start = ticker.now();

        Granted first = granted(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a")));
        first.retryAfter(Duration.ofSeconds(30));

        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.COOLING);
        assertThat(events(PoolEvent.Type.COOLING_STARTED)).singleElement().satisfies(e -> assertThat(e.sender())
                .isEqualTo("bot-a"));
        assertThat(pool.stats().sender("bot-a").pacing()).isEqualTo(0.5);
        for (int chat = 2; chat < 14; chat++) { // bot-b's 30 a second are shared by both processes
            assertThat(granted(pool.acquire(OutboundMessage.to(chat))).sender()).isEqualTo("bot-b");
            assertThat(granted(otherProcess.acquire(OutboundMessage.to(chat + 100)))
                            .sender())
                    .isEqualTo("bot-b");
        }
        Delayed pinned = delayed(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a")), Reason.SENDERS_BUSY);
        assertThat(pinned.until()).isEqualTo(start.plusSeconds(30));
        delayed(otherProcess.acquire(OutboundMessage.to(1).pinnedTo("bot-a")), Reason.SENDERS_BUSY);

        ticker.set(start.plusSeconds(30).minusNanos(1000));
        delayed(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a")), Reason.SENDERS_BUSY);
        ticker.set(start.plusSeconds(30));
        assertThat(granted(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a")))
                        .sender())
                .isEqualTo("bot-a");
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(events(PoolEvent.Type.COOLING_ENDED))
                .extracting(PoolEvent::sender)
                .contains("bot-a");
    }

    @Test
    void coolingEnded_isToldBeforeTheSenderTakesItsNextMessage_pinnedOrSticky() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        Instant start = ticker.now();
        pool.retryAfter("bot-a", Duration.ofSeconds(30));
        pool.retryAfter("bot-b", Duration.ofSeconds(30));

        // The pool re-reads its senders every second while it routes; the last time just before the gates pass.
        ticker.set(start.plusSeconds(30).minusMillis(1));
        delayed(pool.acquire(OutboundMessage.to(1)), Reason.SENDERS_BUSY);
        ticker.set(start.plusSeconds(30));

        assertThat(granted(pool.acquire(OutboundMessage.to(2).pinnedTo("bot-a")))
                        .sender())
                .isEqualTo("bot-a");
        assertThat(events(PoolEvent.Type.COOLING_ENDED)).singleElement().satisfies(e -> assertThat(e.sender())
                .isEqualTo("bot-a"));
        String sticky =
                granted(pool.acquire(OutboundMessage.to(3).stickyBy("album-7"))).sender();
        assertThat(events(PoolEvent.Type.COOLING_ENDED))
                .extracting(PoolEvent::sender)
                .contains(sticky);
    }

    @Test
    void coolingEnded_isToldBySync_asByTheSyncWhileRouting() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        pool.retryAfter("bot-a", Duration.ofSeconds(30));
        ticker.advance(Duration.ofSeconds(30));

        pool.sync(); // an operator's timer, say, while no message goes out

        assertThat(events(PoolEvent.Type.COOLING_ENDED)).singleElement().satisfies(e -> assertThat(e.detail())
                .contains("2026-01-01T00:00:30Z"));
    }

    @Test
    void retryAfter_deadlinesMergeByTheLater_andZeroOnlyCountsThePushback() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        Instant start = ticker.now();

        pool.retryAfter("bot-a", Duration.ofSeconds(60));
        pool.retryAfter("bot-a", Duration.ofSeconds(10)); // a shorter, later report does not shorten the first
        Delayed held = delayed(pool.acquire(OutboundMessage.to(1)), Reason.SENDERS_BUSY);
        assertThat(held.until()).isEqualTo(start.plusSeconds(60));

        SenderPool fresh = pool(PlatformPreset.telegram())
                .name("fresh")
                .sender(Sender.of("bot-z"))
                .build();
        fresh.retryAfter("bot-z", Duration.ZERO);
        assertThat(fresh.status("bot-z")).isEqualTo(SenderStatus.ACTIVE);
        granted(fresh.acquire(OutboundMessage.to(1)));
        assertThat(fresh.stats().sender("bot-z").pushbacks()).isEqualTo(1);
    }

    @Test
    void retryAfterInChat_gatesTheChatForEverySender_andTheSender() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        Instant start = ticker.now();

        Granted first = granted(pool.acquire(OutboundMessage.to(-100500).pinnedTo("bot-a")));
        first.retryAfterInChat(Duration.ofSeconds(20));

        Delayed chat = delayed(pool.acquire(OutboundMessage.to(-100500)), Reason.CHAT_LIMIT);
        assertThat(chat.until()).isEqualTo(start.plusSeconds(20));
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.COOLING);
        assertThat(granted(pool.acquire(OutboundMessage.to(7))).sender()).isEqualTo("bot-b");

        ticker.set(start.plusSeconds(20));
        granted(pool.acquire(OutboundMessage.to(-100500)));
    }

    // --- Blocks: the platform's and the recipient's ------------------------------------------------------------

    @Test
    void blocked_takesTheSenderOutOfEveryPool_untilSetActive_thenAfterAReEntryGate() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        SenderPool otherProcess = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();

        granted(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a"))).blocked();

        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(events(PoolEvent.Type.SENDER_BLOCKED)).singleElement().satisfies(e -> assertThat(e.sender())
                .isEqualTo("bot-a"));
        Rejected pinned =
                rejected(pool.acquire(OutboundMessage.to(2).pinnedTo("bot-a")), Reason.PINNED_SENDER_UNAVAILABLE);
        assertThat(pinned.detail()).contains("bot-a");
        for (int chat = 10; chat < 40; chat++) {
            SendDecision decision = otherProcess.acquire(OutboundMessage.to(chat));
            assertThat(granted(decision).sender()).isEqualTo("bot-b"); // at once, before any sync
        }
        ticker.advance(Duration.ofSeconds(2));
        otherProcess.sync();
        assertThat(otherProcess.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);

        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        assertThat(events(PoolEvent.Type.STATUS_CHANGED))
                .extracting(PoolEvent::sender)
                .contains("bot-a");
        // A re-entry gate of one sync interval (1 s by default, and a microsecond) first.
        Delayed reEntry = delayed(pool.acquire(OutboundMessage.to(3).pinnedTo("bot-a")), Reason.SENDERS_BUSY);
        assertThat(reEntry.retryAfter()).isBetween(Duration.ofSeconds(1), Duration.ofMillis(1001));
        ticker.set(reEntry.until());
        granted(pool.acquire(OutboundMessage.to(3).pinnedTo("bot-a")));
        granted(otherProcess.acquire(OutboundMessage.to(4).pinnedTo("bot-a")));
    }

    @Test
    void retired_isAnOperatorsChoice_andNoSenderLeftIsAClearRejection() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();

        pool.setStatus("bot-a", SenderStatus.RETIRED);

        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.RETIRED);
        assertThat(pool.acquire(OutboundMessage.to(1))).isInstanceOf(Rejected.class);
        rejected(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a")), Reason.PINNED_SENDER_UNAVAILABLE);
        assertThatThrownBy(() -> pool.setStatus("bot-a", SenderStatus.COOLING))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("COOLING");
        rejected(
                pool(PlatformPreset.telegram()).name("empty").build().acquire(OutboundMessage.to(1)),
                Reason.NO_SENDERS);
    }

    @Test
    void recipientBlocked_noSenderOfThePoolWritesToThatChat_inAnyProcess_untilUnblocked() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        SenderPool otherProcess = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();

        Granted granted = granted(pool.acquire(OutboundMessage.to(42)));
        granted.recipientBlocked(); // Telegram's 403 "bot was blocked by the user"
        ticker.advance(Duration.ofSeconds(5));

        assertThat(pool.isRecipientBlocked("42")).isTrue();
        assertThat(otherProcess.isRecipientBlocked("42")).isTrue();
        rejected(pool.acquire(OutboundMessage.to(42)), Reason.RECIPIENT_BLOCKED);
        rejected(otherProcess.acquire(OutboundMessage.to(42)), Reason.RECIPIENT_BLOCKED);
        String otherBot = granted.sender().equals("bot-a") ? "bot-b" : "bot-a";
        rejected(pool.acquire(OutboundMessage.to(42).pinnedTo(otherBot)), Reason.RECIPIENT_BLOCKED);
        // The sender keeps working for other chats.
        assertThat(granted(pool.acquire(OutboundMessage.to(43).pinnedTo(granted.sender())))
                        .sender())
                .isEqualTo(granted.sender());
        assertThat(pool.stats().sender(granted.sender()).recipientBlocks()).isEqualTo(1);
        assertThat(pool.status(granted.sender())).isEqualTo(SenderStatus.ACTIVE);

        assertThat(otherProcess.recipientUnblocked("42")).isTrue(); // the user wrote to the bot again
        assertThat(otherProcess.recipientUnblocked("42")).isFalse();
        assertThat(pool.isRecipientBlocked("42")).isFalse();
        granted(pool.acquire(OutboundMessage.to(42)));
    }

    // --- Warm-up ----------------------------------------------------------------------------------------------

    private SenderPool warmingPool(String name) {
        return pool(PlatformPreset.telegram())
                .name(name)
                .sender(Sender.builder("bot-new")
                        .warmUp(WarmUpSchedule.table(20, 40))
                        .build())
                .build();
    }

    /**
     * Sends {@code count} messages to distinct chats through {@code sender}, 20 a second (within Telegram's 30), each
     * reported delivered.
     */
    private List<Granted> send(SenderPool pool, String sender, int count, int firstChat) {
        List<Granted> grants = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            Granted granted =
                    granted(pool.acquire(OutboundMessage.to(firstChat + i).pinnedTo(sender)));
            granted.delivered(Duration.ofMillis(40));
            grants.add(granted);
            ticker.advance(Duration.ofMillis(50));
        }
        return grants;
    }

    @Test
    void warmUp_allowanceIsAHardLimitPerWindow_andAStageAdvancesAfterItsLength_whenTheSenderSentEnough() {
        SenderPool pool = warmingPool("warm");
        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(pool.allowance("bot-new")).isEqualTo(20);

        send(pool, "bot-new", 20, 1);
        // 20 an hour at stage 0, counted in ten sub-buckets of 6 minutes: free again within 66 minutes.
        Delayed allowance = delayed(pool.acquire(OutboundMessage.to(100)), Reason.SENDERS_BUSY);
        assertThat(allowance.retryAfter()).isBetween(Duration.ofHours(1), Duration.ofMinutes(66));
        ticker.set(allowance.until());
        granted(pool.acquire(OutboundMessage.to(100))).delivered(Duration.ofMillis(40));

        ticker.advance(Duration.ofDays(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(pool.allowance("bot-new")).isEqualTo(40);
        assertThat(events(PoolEvent.Type.WARM_UP_ADVANCED)).singleElement().satisfies(e -> assertThat(e.sender())
                .isEqualTo("bot-new"));
        assertThat(pool.stats().sender("bot-new").warmUpStage()).isEqualTo(1);

        send(pool, "bot-new", 40, 200);
        delayed(pool.acquire(OutboundMessage.to(300)), Reason.SENDERS_BUSY);

        ticker.advance(Duration.ofDays(1));
        pool.sync();
        assertThat(pool.allowance("bot-new")).isEqualTo(Long.MAX_VALUE); // past the last stage: warm
        granted(pool.acquire(OutboundMessage.to(300)));
    }

    @Test
    void warmUp_anIdleSender_staysAtItsStage() {
        SenderPool pool = warmingPool("idle");
        send(pool, "bot-new", 19, 1); // fewer than the stage's 20

        ticker.advance(Duration.ofDays(3));
        pool.sync();

        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(events(PoolEvent.Type.WARM_UP_ADVANCED)).isEmpty();
    }

    @Test
    void warmUp_pushbackOnTheSender_holdsTheStage_butABusyChatsPushbackDoesNot() {
        SenderPool held = warmingPool("held");
        List<Granted> grants = send(held, "bot-new", 20, 1);
        grants.get(0).retryAfter(Duration.ofSeconds(1)); // 1 in 20 > 0.01

        SenderPool advanced = warmingPool("advanced");
        List<Granted> others = send(advanced, "bot-new", 20, 1);
        others.get(0).retryAfterInChat(Duration.ofSeconds(1));

        ticker.advance(Duration.ofDays(1));
        held.sync();
        advanced.sync();

        assertThat(held.warmUpStage("bot-new")).isZero();
        assertThat(advanced.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(events(PoolEvent.Type.WARM_UP_HELD)).hasSize(1);
        assertThat(events(PoolEvent.Type.WARM_UP_ADVANCED)).hasSize(1);
    }

    @Test
    void warmUp_failuresAboveTheQuality_holdTheStage_andABlockStepsItBack() {
        SenderPool pool = warmingPool("quality");
        List<Granted> grants = send(pool, "bot-new", 20, 1);
        grants.get(0).failed("timeout");
        grants.get(1).failed("502"); // 2 in 20 > 0.05

        ticker.advance(Duration.ofDays(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(events(PoolEvent.Type.WARM_UP_HELD)).hasSize(1);

        send(pool, "bot-new", 20, 100);
        ticker.advance(Duration.ofDays(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);

        pool.blocked("bot-new");
        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(pool.allowance("bot-new")).isEqualTo(20);
        assertThat(events(PoolEvent.Type.WARM_UP_STEPPED_BACK)).hasSize(1);
    }

    @Test
    void warmUp_aStageWhoseAllowanceIsBelowTwenty_endsOnceTheSenderSentItsAllowance() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.builder("bot-new")
                        .warmUp(WarmUpSchedule.table(5, 10))
                        .build())
                .build();
        send(pool, "bot-new", 5, 1);

        ticker.advance(Duration.ofDays(1));
        pool.sync();

        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
    }

    @Test
    void warmUp_twoProcesses_shareTheStage_judgedByThePoolThatSawTheSends() {
        SenderPool sending = warmingPool("default");
        SenderPool idle = warmingPool("default");
        send(sending, "bot-new", 20, 1);

        ticker.advance(Duration.ofDays(1));
        idle.sync(); // saw no sends in the stage: it leaves the stage to a pool that did
        assertThat(idle.warmUpStage("bot-new")).isZero();
        sending.sync();
        idle.sync();

        assertThat(sending.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(idle.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(idle.allowance("bot-new")).isEqualTo(40);
    }

    @Test
    void warmUp_aTagThatNeedsAStage_isCarriedOnceTheSenderReachedIt() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .tagNeedsWarmUpStage("links", 1)
                .sender(Sender.builder("bot-new")
                        .tags("links")
                        .warmUp(WarmUpSchedule.table(20, 40))
                        .build())
                .build();
        rejected(pool.acquire(OutboundMessage.to(1).carrying("links")), Reason.NO_ELIGIBLE_SENDER);
        send(pool, "bot-new", 20, 1);

        ticker.advance(Duration.ofDays(1));
        pool.sync();

        granted(pool.acquire(OutboundMessage.to(100).carrying("links")));
    }

    @Test
    void warmUp_schedules_growAsDocumented() {
        WarmUpSchedule sendGrid = WarmUpSchedule.sendGrid();
        assertThat(sendGrid.allowance(0)).isEqualTo(20);
        assertThat(sendGrid.allowance(1)).isEqualTo(28);
        assertThat(sendGrid.window()).isEqualTo(Duration.ofHours(1));
        assertThat(sendGrid.stageLength()).isEqualTo(Duration.ofDays(1));
        assertThat(sendGrid.allowance(sendGrid.stages() - 1)).isLessThan(100_000);
        assertThat(sendGrid.allowance(sendGrid.stages())).isEqualTo(Long.MAX_VALUE);

        WarmUpSchedule linear = WarmUpSchedule.linear(10, 10, 50);
        assertThat(linear.stages()).isEqualTo(4);
        assertThat(linear.allowance(3)).isEqualTo(40);
        assertThat(WarmUpSchedule.geometric(5, 1.1, 5).stages()).isEqualTo(1);
        assertThat(WarmUpSchedule.table(5, 10, 20)
                        .withWindow(Duration.ofMinutes(10))
                        .withStageLength(Duration.ofHours(6))
                        .window())
                .isEqualTo(Duration.ofMinutes(10));
    }

    // --- pinnedTo and stickyBy --------------------------------------------------------------------------------

    @Test
    void pinnedTo_neverMovesTheMessage_itWaitsForItsSender() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();

        for (int chat = 1; chat <= 30; chat++) {
            assertThat(granted(pool.acquire(OutboundMessage.to(chat).pinnedTo("bot-a")))
                            .sender())
                    .isEqualTo("bot-a");
        }
        delayed(pool.acquire(OutboundMessage.to(31).pinnedTo("bot-a")), Reason.SENDERS_BUSY);
        assertThatThrownBy(() -> pool.acquire(OutboundMessage.to(31).pinnedTo("bot-x")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bot-x");
    }

    @Test
    void stickyBy_aKeyPrefersOneSender_inEveryProcess_andMovesWhileThatOneIsCooling() {
        List<Sender> senders = List.of(Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"), Sender.of("bot-d"));
        SenderPool.Builder builder = pool(PlatformPreset.telegram());
        SenderPool.Builder otherBuilder = pool(PlatformPreset.telegram()).random(new SplittableRandom(99));
        senders.forEach(builder::sender);
        senders.forEach(otherBuilder::sender);
        SenderPool pool = builder.build();
        SenderPool otherProcess = otherBuilder.build();

        Set<String> chosen = new HashSet<>();
        for (int chat = 1; chat <= 10; chat++) {
            chosen.add(granted(pool.acquire(OutboundMessage.to(chat).stickyBy("album-7")))
                    .sender());
            chosen.add(
                    granted(otherProcess.acquire(OutboundMessage.to(chat + 100).stickyBy("album-7")))
                            .sender());
        }
        assertThat(chosen).hasSize(1);
        String preferred = chosen.iterator().next();

        pool.retryAfter(preferred, Duration.ofSeconds(30));
        assertThat(granted(pool.acquire(OutboundMessage.to(50).stickyBy("album-7")))
                        .sender())
                .isNotEqualTo(preferred);
        ticker.advance(Duration.ofSeconds(30));
        assertThat(granted(pool.acquire(OutboundMessage.to(51).stickyBy("album-7")))
                        .sender())
                .isEqualTo(preferred);
    }

    // --- Tags: content-aware routing --------------------------------------------------------------------------

    @Test
    void tags_contentGoesOnlyToSendersThatMayCarryIt_andWarmEnoughForIt() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .tagNeedsWarmUpStage("links", 1)
                .sender(Sender.builder("bot-media").tags("media").build())
                .sender(Sender.builder("bot-new")
                        .tags("links", "media")
                        .warmUp(WarmUpSchedule.table(20, 40))
                        .build())
                .sender(Sender.of("bot-plain"))
                .build();

        for (int chat = 1; chat <= 20; chat++) {
            assertThat(granted(pool.acquire(OutboundMessage.to(chat).carrying("media")))
                            .sender())
                    .isIn("bot-media", "bot-new");
        }
        Rejected links = rejected(pool.acquire(OutboundMessage.to(30).carrying("links")), Reason.NO_ELIGIBLE_SENDER);
        assertThat(links.detail()).contains("links");
        rejected(
                pool.acquire(OutboundMessage.to(30).carrying("links").pinnedTo("bot-new")),
                Reason.PINNED_SENDER_UNAVAILABLE);
        rejected(pool.acquire(OutboundMessage.to(30).carrying("polls")), Reason.NO_ELIGIBLE_SENDER);

        assertThat(pool.addGroupTag(Sender.DEFAULT_GROUP, "links")).isEqualTo(3);
        assertThat(granted(pool.acquire(OutboundMessage.to(31).carrying("links")))
                        .sender())
                .isIn("bot-media", "bot-plain");
        assertThat(pool.removeGroupTag(Sender.DEFAULT_GROUP, "links")).isEqualTo(3);
        rejected(pool.acquire(OutboundMessage.to(32).carrying("links")), Reason.NO_ELIGIBLE_SENDER);
    }

    // --- Stats and events -------------------------------------------------------------------------------------

    @Test
    void stats_countWhatWasReported_andExportAsDocumented() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.builder("bot-a").group("A").build())
                .sender(Sender.builder("bot-b").group("B").build())
                .build();

        granted(pool.acquire(OutboundMessage.to(1).pinnedTo("bot-a"))).delivered(Duration.ofMillis(40));
        granted(pool.acquire(OutboundMessage.to(2).pinnedTo("bot-a"))).failed("timeout");
        granted(pool.acquire(OutboundMessage.to(3).pinnedTo("bot-a"))).retryAfter(Duration.ofSeconds(1));
        granted(pool.acquire(OutboundMessage.to(4).pinnedTo("bot-b"))).delivered(Duration.ofMillis(60));

        PoolStats stats = pool.stats();
        assertThat(stats.pool()).isEqualTo("default");
        assertThat(stats.at()).isEqualTo(ticker.now());
        assertThat(stats.senders()).extracting(s -> s.sender()).containsExactly("bot-a", "bot-b");
        assertThat(stats.sender("bot-a").sent()).isEqualTo(3);
        assertThat(stats.sender("bot-a").delivered()).isEqualTo(1);
        assertThat(stats.sender("bot-a").failed()).isEqualTo(1);
        assertThat(stats.sender("bot-a").pushbacks()).isEqualTo(1);
        assertThat(stats.sender("bot-a").failureRate()).isEqualTo(1.0 / 3);
        assertThat(stats.sender("bot-a").sentByHour().count(DayOfWeek.THURSDAY, 0))
                .isEqualTo(3); // 2026-01-01T00:00Z is a Thursday
        assertThat(stats.sender("bot-a").failuresByHour().total()).isEqualTo(2);
        assertThat(stats.sender("nobody")).isNull();
        assertThat(stats.group("A").sent()).isEqualTo(3);
        assertThat(stats.group("B").delivered()).isEqualTo(1);

        assertThat(stats.toCsv().lines().findFirst())
                .hasValue("sender,group,status,stage,allowance,sent,delivered,failed,pushbacks,recipient_blocks,"
                        + "blocks,failure_rate,block_rate,latency_ms,success,pacing,risk,brake");
        assertThat(stats.toCsv().lines()).hasSize(3);
        assertThat(stats.toJson()).startsWith("{\"pool\":\"default\"").contains("\"bot-a\"", "\"bot-b\"");
        assertThat(stats.heatMapCsv().lines()).hasSize(1 + 2 * 3 * 7);
    }

    @Test
    void stats_heatMapsCountInTheStatsZone_andGroupsCompareByAZTest() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .statsZone(ZoneOffset.ofHours(3))
                .sender(Sender.builder("bot-a").group("A").build())
                .sender(Sender.builder("bot-b").group("B").build())
                .build();
        for (int chat = 1; chat <= 20; chat++) {
            granted(pool.acquire(OutboundMessage.to(chat).pinnedTo("bot-a"))).failed("timeout");
            granted(pool.acquire(OutboundMessage.to(chat + 100).pinnedTo("bot-b")))
                    .delivered(Duration.ofMillis(40));
            ticker.advance(Duration.ofMillis(100));
        }

        assertThat(pool.stats().sender("bot-a").sentByHour().count(DayOfWeek.THURSDAY, 3))
                .isEqualTo(20); // 00:00 UTC is 03:00 at +03:00
        GroupComparison failures = pool.compare("A", "B", GroupComparison.Metric.FAILURE_RATE);
        assertThat(failures.eventsA()).isEqualTo(20);
        assertThat(failures.trialsB()).isEqualTo(20);
        assertThat(failures.z()).isPositive();
        assertThat(failures.significant(0.001)).isTrue();
    }

    @Test
    void scores_whatFailuresTookOff_fadesOverTenMinutes_butABlockHolds() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        for (int chat = 1; chat <= 3; chat++) {
            granted(pool.acquire(OutboundMessage.to(chat).pinnedTo("bot-a"))).failed("timeout");
        }
        pool.blocked("bot-b");
        assertThat(pool.stats().sender("bot-a").success()).isLessThan(1.0);
        assertThat(pool.stats().sender("bot-a").risk()).isPositive();

        ticker.advance(Duration.ofMinutes(10));

        assertThat(pool.stats().sender("bot-a").success()).isEqualTo(1.0);
        assertThat(pool.stats().sender("bot-a").risk()).isZero();
        assertThat(pool.stats().sender("bot-b").risk()).isEqualTo(1.0);
        assertThat(pool.stats().group(Sender.DEFAULT_GROUP).risk()).isEqualTo(1.0);
    }

    @Test
    void delivered_aLatencyTwiceTheAverageAndAboveHalfASecond_backsThePacingOffByAFifth() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        granted(pool.acquire(OutboundMessage.to(1))).delivered(Duration.ofMillis(300));
        granted(pool.acquire(OutboundMessage.to(2))).delivered(Duration.ofMillis(500)); // not above 500 ms
        assertThat(pool.stats().sender("bot-a").pacing()).isEqualTo(1.0);

        granted(pool.acquire(OutboundMessage.to(3))).delivered(Duration.ofSeconds(2));

        assertThat(pool.stats().sender("bot-a").pacing()).isEqualTo(0.8);
    }

    @Test
    void events_poolExhaustedOncePerEpisode_thenRecovered() {
        SenderPool pool =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        pool.retryAfter("bot-a", Duration.ofSeconds(10));

        delayed(pool.acquire(OutboundMessage.to(1)), Reason.SENDERS_BUSY);
        delayed(pool.acquire(OutboundMessage.to(2)), Reason.SENDERS_BUSY);
        assertThat(events(PoolEvent.Type.POOL_EXHAUSTED)).hasSize(1);

        ticker.advance(Duration.ofSeconds(10));
        granted(pool.acquire(OutboundMessage.to(1)));
        assertThat(events(PoolEvent.Type.POOL_RECOVERED)).hasSize(1);
        assertThat(events).allSatisfy(e -> assertThat(e.at()).isNotNull());
    }

    @Test
    void failuresInARow_ejectASender_butNeverTheLastOne() {
        SenderPool pool = pool(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.of("bot-b"))
                .build();
        for (int i = 0; i < 5; i++) {
            granted(pool.acquire(OutboundMessage.to(i).pinnedTo("bot-a"))).failed("timeout");
        }
        assertThat(events(PoolEvent.Type.SENDER_EJECTED)).singleElement().satisfies(e -> assertThat(e.sender())
                .isEqualTo("bot-a"));
        for (int chat = 10; chat < 30; chat++) {
            assertThat(granted(pool.acquire(OutboundMessage.to(chat))).sender()).isEqualTo("bot-b");
        }

        SenderPool alone = pool(PlatformPreset.telegram())
                .name("alone")
                .sender(Sender.of("bot-z"))
                .build();
        for (int i = 0; i < 10; i++) {
            granted(alone.acquire(OutboundMessage.to(i))).failed("timeout");
        }
        granted(alone.acquire(OutboundMessage.to(99)));
    }

    // --- Several processes over one storage -------------------------------------------------------------------

    @Test
    void twoProcesses_shareChatLimits_senderQuotas_andGates_butPoolsOfOtherNamesDoNot() {
        SenderPool first =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        SenderPool second =
                pool(PlatformPreset.telegram()).sender(Sender.of("bot-a")).build();
        SenderPool unrelated = pool(PlatformPreset.telegram())
                .name("newsletter")
                .sender(Sender.of("bot-a"))
                .build();

        granted(first.acquire(OutboundMessage.to(42)));
        delayed(second.acquire(OutboundMessage.to(42)), Reason.CHAT_LIMIT);
        granted(unrelated.acquire(OutboundMessage.to(42)));

        for (int chat = 100; chat < 129; chat++) {
            granted((chat % 2 == 0 ? first : second).acquire(OutboundMessage.to(chat)));
        }
        delayed(first.acquire(OutboundMessage.to(200)), Reason.SENDERS_BUSY); // 30 a second, together
        delayed(second.acquire(OutboundMessage.to(200)), Reason.SENDERS_BUSY);

        ticker.advance(Duration.ofSeconds(1));
        second.retryAfter("bot-a", Duration.ofSeconds(5));
        delayed(first.acquire(OutboundMessage.to(200)), Reason.SENDERS_BUSY);
        granted(unrelated.acquire(OutboundMessage.to(200)));
    }

    // --- Bad input --------------------------------------------------------------------------------------------

    @Test
    void badInput_failsAtOnce_namingTheFieldAndTheValue() {
        assertThatThrownBy(() -> Sender.builder(""))
                .hasMessageContaining("sender")
                .hasMessageContaining("''");
        assertThatThrownBy(() -> Sender.builder("bot").perSecond(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("perSecond")
                .hasMessageContaining("0");
        assertThatThrownBy(() -> Sender.builder("bot").perDay(-5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("perDay")
                .hasMessageContaining("-5");
        assertThatThrownBy(() -> Sender.builder("bot").tags("Links!"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Links!");
        assertThatThrownBy(() -> OutboundMessage.to("")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> OutboundMessage.to(1).carrying("")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> OutboundMessage.to(1).stickyBy("")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> OutboundMessage.to(1).pinnedTo(null)).isInstanceOf(IllegalArgumentException.class);

        SenderPool.Builder builder = SenderPool.builder(storage);
        assertThatThrownBy(() -> builder.maxAttempts(0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("maxAttempts")
                .hasMessageContaining("0");
        assertThatThrownBy(() -> builder.syncInterval(Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("PT0S");
        assertThatThrownBy(() -> builder.aimd(1.5, 0.05))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("backoff")
                .hasMessageContaining("1.5");
        assertThatThrownBy(() -> builder.warmUpQuality(0.05, 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("2.0");
        assertThatThrownBy(() -> builder.maxWarmUpPushbackRate(Double.NaN))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("NaN");
        assertThatThrownBy(() -> builder.tagNeedsWarmUpStage("links", -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-1");
        assertThatThrownBy(() -> builder.name("")).isInstanceOf(IllegalArgumentException.class);
        builder.sender(Sender.of("bot-a"));
        assertThatThrownBy(() -> builder.sender(Sender.of("bot-a")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bot-a");

        assertThatThrownBy(() -> WarmUpSchedule.geometric(0, 1.4, 100))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("start")
                .hasMessageContaining("0");
        assertThatThrownBy(() -> WarmUpSchedule.table()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> WarmUpSchedule.linear(10, 0, 100))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("step");
        assertThatThrownBy(() -> PlatformPreset.whatsAppCloud(null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PlatformPreset.telegram().withPerDay(-1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("-1");

        SenderPool pool = builder.ticker(ticker).build();
        assertThatThrownBy(() -> pool.acquire(null)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> pool.delivered("bot-x", Duration.ofMillis(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("bot-x");
        assertThatThrownBy(() -> pool.delivered("bot-a", Duration.ofMillis(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("latency");
        assertThatThrownBy(() -> pool.retryAfter("bot-a", Duration.ofSeconds(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("retryAfter")
                .hasMessageContaining("-1");
        assertThatThrownBy(() -> pool.recipientBlocked("bot-a", ""))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("chat");
        assertThatThrownBy(() -> pool.setGroupLimits("nope", 10, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("nope");
        assertThatThrownBy(() -> pool.setGroupLimits(Sender.DEFAULT_GROUP, 0, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("perSecond");
    }
}
