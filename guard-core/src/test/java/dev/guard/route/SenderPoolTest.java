package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.guard.ManualTicker;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.time.DayOfWeek;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class SenderPoolTest {
    private static final long SECOND = 1_000_000L;

    private final ManualTicker ticker = ManualTicker.create();
    private final ReferenceStorage storage = ReferenceStorage.create();
    private final List<PoolEvent> events = new ArrayList<>();
    private int chats;

    private SenderPool.Builder builder(Sender... senders) {
        SenderPool.Builder b =
                SenderPool.builder(storage).ticker(ticker).random(new Random(7)).listener(events::add);
        for (Sender s : senders) {
            b.sender(s);
        }
        return b;
    }

    /** A pool of bot-a and bot-b over {@code over}. */
    private SenderPool twoSenders(Storage over) {
        return poolOver(over, Sender.of("bot-a"), Sender.of("bot-b"));
    }

    /**
     * A pool of {@code senders} over {@code over} (a storage that fails on demand, say), on the test's clock, its
     * events in {@link #events}.
     */
    private SenderPool poolOver(Storage over, Sender... senders) {
        SenderPool.Builder b = SenderPool.builder(over).ticker(ticker).listener(events::add);
        for (Sender sender : senders) {
            b.sender(sender);
        }
        return b.build();
    }

    private SenderPool pool(String... ids) {
        SenderPool.Builder b = builder();
        for (String id : ids) {
            b.sender(Sender.of(id));
        }
        return b.build();
    }

    /** A message to a chat never used before, so that only sender and global limits matter. */
    private OutboundMessage fresh() {
        return OutboundMessage.to("chat-" + chats++);
    }

    private static String granted(SendDecision d) {
        assertThat(d).isInstanceOf(SendDecision.Granted.class);
        return ((SendDecision.Granted) d).sender();
    }

    /** Acquires fresh messages until the pool says no; answers the grants per sender. */
    private Map<String, Integer> drain(SenderPool pool) {
        Map<String, Integer> grants = new HashMap<>();
        for (SendDecision d = pool.acquire(fresh()); d.granted(); d = pool.acquire(fresh())) {
            grants.merge(((SendDecision.Granted) d).sender(), 1, Integer::sum);
        }
        return grants;
    }

    // ------------------------------------------------------------------------------------------------ bad input

    @Test
    void acquire_emptyPool_isRejectedWithNoSenders() {
        SendDecision d = pool().acquire(fresh());

        assertThat(d)
                .isEqualTo(new SendDecision.Rejected(SendDecision.Reason.NO_SENDERS, "pool 'default' has no senders"));
        assertThat(events).extracting(PoolEvent::type).containsExactly(PoolEvent.Type.POOL_EXHAUSTED);
    }

    @Test
    void nullArguments_areRejectedNamingTheField() {
        assertThatThrownBy(() -> Sender.builder("bot-a").tags((String[]) null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tags must not be null");
        assertThatThrownBy(() -> fresh().carrying((String[]) null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tags must not be null");
        assertThatThrownBy(() -> PlatformPreset.whatsAppCloud(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tier must not be null");
        assertThatThrownBy(() -> GroupComparison.test("a", "b", null, 1, 10, 2, 10))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("metric must not be null");
    }

    @Test
    void feedback_unknownSender_throwsNamingIt() {
        SenderPool pool = pool("bot-a");

        assertThatThrownBy(() -> pool.delivered("bot-x", Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.retryAfter("bot-x", Duration.ofSeconds(1)))
                .hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.failed("bot-x", "timeout"))
                .hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.blocked("bot-x")).hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.recipientBlocked("bot-x", "42"))
                .hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.status("bot-x")).hasMessage("unknown sender 'bot-x' in pool 'default'");
        assertThatThrownBy(() -> pool.acquire(fresh().pinnedTo("bot-x")))
                .hasMessage("unknown sender 'bot-x' in pool 'default'");
    }

    @Test
    void feedback_negativeOrAbsurdDurations_throwNamingTheField() {
        SenderPool pool = pool("bot-a");

        assertThatThrownBy(() -> pool.retryAfter("bot-a", Duration.ofSeconds(-1)))
                .hasMessage("retryAfter must not be negative but was PT-1S");
        assertThatThrownBy(() -> pool.retryAfter("bot-a", "chat", Duration.ofMillis(-5)))
                .hasMessage("retryAfter must not be negative but was PT-0.005S");
        assertThatThrownBy(() -> pool.retryAfter("bot-a", null)).hasMessage("retryAfter must not be null");
        assertThatThrownBy(() -> pool.retryAfter("bot-a", Duration.ofDays(365L * 300)))
                .hasMessage("retryAfter must be below 2^53 microseconds but was PT2628000H");
        assertThatThrownBy(() -> pool.delivered("bot-a", Duration.ofMillis(-1)))
                .hasMessage("latency must not be negative but was PT-0.001S");
        assertThatThrownBy(() -> pool.retryAfter("bot-a", "", Duration.ZERO))
                .hasMessage("chat must not be empty but was ''");
        // 2^53 microseconds by its nanoseconds too: 9,007,199,254 s and 999,999 us is past it, one microsecond less
        // than 2^53 is not.
        assertThatThrownBy(() -> pool.retryAfter("bot-a", Duration.ofSeconds(9_007_199_254L, 999_999_000L)))
                .hasMessage("retryAfter must be below 2^53 microseconds but was PT2501999H47M34.999999S");
        // Nothing was gated by the failed calls.
        assertThat(pool.acquire(fresh()).granted()).isTrue();
        pool.retryAfter("bot-a", Duration.ofSeconds(9_007_199_254L, 740_991_000L));
        assertThat(pool.acquire(fresh()).granted()).isFalse();
    }

    @Test
    void builder_syncIntervalOfExactlyOneHour_isAccepted() {
        SenderPool pool =
                builder(Sender.of("bot-a")).syncInterval(Duration.ofHours(1)).build();

        assertThat(pool.acquire(fresh()).granted()).isTrue();
        assertThatThrownBy(() -> builder().syncInterval(Duration.ofHours(1).plusMillis(1)))
                .hasMessage("syncInterval must be positive and at most one hour but was PT1H0.001S");
    }

    @Test
    void limits_of_2pow53OrMore_areRefusedWhereTheyAreSet_namingTheField() {
        long tooMany = 1L << 53;
        assertThatThrownBy(() -> Sender.builder("bot-a").perSecond(Long.MAX_VALUE))
                .hasMessage("perSecond must be below 2^53 but was 9223372036854775807");
        assertThatThrownBy(() -> Sender.builder("bot-a").perDay(tooMany))
                .hasMessage("perDay must be below 2^53 but was 9007199254740992");
        assertThatThrownBy(() -> PlatformPreset.telegram().withPerDay(tooMany))
                .hasMessage("perDay must be below 2^53 but was 9007199254740992");
        assertThatThrownBy(() -> WarmUpSchedule.table(1, tooMany))
                .hasMessage("allowances[1] must be below 2^53 but was 9007199254740992");
        assertThatThrownBy(() -> WarmUpSchedule.geometric(tooMany, 2.0, Long.MAX_VALUE))
                .hasMessage("start must be below 2^53 but was 9007199254740992");
        // The largest count below 2^53 is a limit the pool evaluates.
        SenderPool big = builder(Sender.builder("bot-a")
                        .perSecond(tooMany - 1)
                        .perDay(tooMany - 1)
                        .build())
                .build();
        assertThat(big.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void negativePerDay_isRefusedSayingItMustNotBeNegative_whereZeroIsAllowed() {
        // Zero is valid here (no daily limit, or the configured one): "must be positive" would name the wrong rule.
        assertThatThrownBy(() -> PlatformPreset.telegram().withPerDay(-1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("perDay must not be negative but was -1");
        assertThatThrownBy(() -> pool("bot-a").setGroupLimits("default", 30, -5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("perDay must not be negative but was -5");
        assertThat(PlatformPreset.telegram().withPerDay(0).perDay()).isZero();
        // A sender's own limit has no "unset" value to give: zero is refused as not positive.
        assertThatThrownBy(() -> Sender.builder("bot-a").perDay(0)).hasMessage("perDay must be positive but was 0");
    }

    @Test
    void setGroupLimits_of_2pow53OrMore_isRefusedAndWritesNoRecord() {
        SenderPool pool = pool("bot-a");
        StateKey record = new StateKey("route/default/sender", "bot-a");
        Optional<VersionedRecord> before = storage.getRecord(record);

        assertThatThrownBy(() -> pool.setGroupLimits("default", 30, 1L << 53))
                .hasMessage("perDay must be below 2^53 but was 9007199254740992");
        assertThatThrownBy(() -> pool.setGroupLimits("default", 1L << 53, 0))
                .hasMessage("perSecond must be below 2^53 but was 9007199254740992");

        assertThat(storage.getRecord(record)).isEqualTo(before);
        ticker.advance(Duration.ofSeconds(2));
        assertThat(pool.acquire(fresh()).granted()).isTrue();
        assertThat(pool("bot-a").acquire(fresh()).granted()).isTrue();
    }

    @Test
    void feedbackWhilePicking_aSenderTheCountSawFree_isStillPicked() {
        // What another thread does between the pool's count of free senders and its pick: the platform answers a
        // 429 on bot-a. A random source that runs it at its first draw puts it exactly there, every time.
        SenderPool[] pool = new SenderPool[1];
        boolean[] fired = {false};
        Random draws = new Random(1) {
            @Override
            public int nextInt(int bound) {
                if (!fired[0]) {
                    fired[0] = true;
                    pool[0].retryAfter("bot-a", Duration.ofSeconds(5));
                }
                return super.nextInt(bound);
            }
        };
        pool[0] = SenderPool.builder(storage)
                .ticker(ticker)
                .random(draws)
                .sender(Sender.of("bot-a"))
                .build();

        SendDecision decision = pool[0].acquire(OutboundMessage.to("c1"));

        assertThat(fired[0]).isTrue();
        // No exception: the pick stands on what the count saw, as if the 429 came just after it, and the gate that
        // the 429 raised in the storage then delays the message by its retry_after.
        assertThat(decision).isInstanceOf(SendDecision.Delayed.class);
        assertThat(((SendDecision.Delayed) decision).retryAfter()).isEqualTo(Duration.ofSeconds(5));
    }

    @Test
    void builder_rejectsBadSettings_namingTheSetting() {
        SenderPool.Builder b = SenderPool.builder(storage).sender(Sender.of("bot-a"));

        assertThatThrownBy(() -> SenderPool.builder(null)).hasMessage("storage must not be null");
        assertThatThrownBy(() -> b.sender(Sender.of("bot-a"))).hasMessage("sender 'bot-a' is already configured");
        assertThatThrownBy(() -> b.maxAttempts(0)).hasMessage("maxAttempts must be between 1 and 16 but was 0");
        assertThatThrownBy(() -> b.syncInterval(Duration.ZERO))
                .hasMessage("syncInterval must be positive and at most one hour but was PT0S");
        assertThatThrownBy(() -> b.aimd(1.5, 0.1)).hasMessage("backoff must be between 0 and 1 but was 1.5");
        assertThatThrownBy(() -> b.ejection(0, Duration.ofSeconds(1), 0.5))
                .hasMessage("failuresInRow must be positive but was 0");
        assertThatThrownBy(() -> b.ejection(5, Duration.ofHours(47), 0.5))
                .hasMessage("duration must be positive and at most one day but was PT47H");
        assertThatThrownBy(() -> b.ejection(5, Duration.ofDays(1).plusNanos(1_000), 0.5))
                .hasMessage("duration must be positive and at most one day but was PT24H0.000001S");
        b.ejection(5, Duration.ofDays(1), 0.5);
        assertThatThrownBy(() -> b.warmUpQuality(-0.1, 0.1))
                .hasMessage("maxFailureRate must be between 0 and 1 but was -0.1");
        assertThatThrownBy(() -> b.tagNeedsWarmUpStage("Links!", 1))
                .hasMessage("tag must hold only a-z, 0-9, '-', '_' and '.' but was 'Links!'");
        assertThatThrownBy(() -> b.name("")).hasMessage("name must not be empty but was ''");
        assertThatThrownBy(() -> Sender.builder("x").perSecond(0)).hasMessage("perSecond must be positive but was 0");
        assertThatThrownBy(() -> OutboundMessage.to(null)).hasMessage("chat must not be empty but was null");
    }

    @Test
    void builder_durationsShorterThanAMicrosecond_areRefused_notTruncatedToZero() {
        // The pool counts time in microseconds: 500 ns would be a sync interval of zero (every record re-read on
        // every acquire) and an ejection that ends as it starts.
        SenderPool.Builder b = builder(Sender.of("bot-a"));

        assertThatThrownBy(() -> b.syncInterval(Duration.ofNanos(500)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("syncInterval must be at least 1 microsecond but was PT0.0000005S");
        assertThatThrownBy(() -> b.ejection(5, Duration.ofNanos(999), 0.5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duration must be at least 1 microsecond but was PT0.000000999S");
        // Nor is a part finer than a microsecond cut off a longer one.
        assertThatThrownBy(() -> b.syncInterval(Duration.ofNanos(1_500)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("syncInterval must be a whole number of microseconds but was PT0.0000015S");
        assertThatThrownBy(() -> b.ejection(5, Duration.ofSeconds(30).plusNanos(1), 0.5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duration must be a whole number of microseconds but was PT30.000000001S");
        b.syncInterval(Duration.ofNanos(1_000)).ejection(5, Duration.ofNanos(1_000), 0.5);
    }

    @Test
    void operations_rejectUnknownGroupsAndDerivedStatus() {
        SenderPool pool = pool("bot-a");

        assertThatThrownBy(() -> pool.setGroupStatus("nope", SenderStatus.RETIRED))
                .hasMessage("unknown group 'nope' in pool 'default'");
        assertThatThrownBy(() -> pool.setStatus("bot-a", SenderStatus.COOLING))
                .hasMessage("status must be ACTIVE, BLOCKED or RETIRED but was COOLING");
        assertThatThrownBy(() -> pool.setGroupLimits("default", 0, 0))
                .hasMessage("perSecond must be positive but was 0");
        assertThatThrownBy(() -> pool.add(Sender.of("bot-a")))
                .hasMessage("sender 'bot-a' is already in pool 'default'");
    }

    @Test
    void recipientBlocked_noSenderOfThePoolWritesToThatChat_inAnyPoolOverTheStorage_untilUnblocked() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c");
        SenderPool.Builder other = builder(Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"));
        SenderPool otherProcess = other.build();
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(OutboundMessage.to("42"));

        g.recipientBlocked();
        ticker.advance(Duration.ofDays(30));

        // Not through another sender: the person said no to the bot, not to one of its accounts.
        for (SenderPool p : List.of(pool, otherProcess)) {
            SendDecision d = p.acquire(OutboundMessage.to("42"));
            assertThat(d).isInstanceOf(SendDecision.Rejected.class);
            assertThat(((SendDecision.Rejected) d).reason()).isEqualTo(SendDecision.Reason.RECIPIENT_BLOCKED);
            assertThat(((SendDecision.Rejected) d).detail())
                    .isEqualTo("the recipient of chat '42' blocked a sender of pool 'default': no sender writes to it"
                            + " until recipientUnblocked");
            assertThat(p.acquire(OutboundMessage.to("42").pinnedTo("bot-c"))).isInstanceOf(SendDecision.Rejected.class);
            assertThat(p.isRecipientBlocked("42")).isTrue();
        }
        assertThat(pool.acquire(OutboundMessage.to("43")).granted()).isTrue();
        assertThat(pool.stats().sender(g.sender()).recipientBlocks()).isEqualTo(1);

        assertThat(otherProcess.recipientUnblocked("42")).isTrue();
        assertThat(otherProcess.recipientUnblocked("42")).isFalse();
        assertThat(pool.isRecipientBlocked("42")).isFalse();
        assertThat(pool.acquire(OutboundMessage.to("42")).granted()).isTrue();
    }

    @Test
    void recipientBlocked_reportedForEveryMessageInFlightToThePerson_countsAndBrakesOnce() {
        SenderPool pool = pool("bot-a", "bot-b");
        List<SendDecision.Granted> album = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            album.add((SendDecision.Granted) pool.acquire(OutboundMessage.to("42")));
            ticker.advance(Duration.ofSeconds(1));
        }

        // The person blocked the bot with the album in flight: each message's send answers 403.
        for (SendDecision.Granted g : album) {
            g.recipientBlocked();
        }

        PoolStats stats = pool.stats();
        assertThat(stats.sender("bot-a").recipientBlocks()
                        + stats.sender("bot-b").recipientBlocks())
                .isEqualTo(1);
        assertThat(stats.brake()).isEqualTo(0.9);
    }

    @Test
    void recipientBlocked_whileTheStorageFails_throws_andNeitherMarksNorCounts_soThatAReportAgainCountsOnce() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.of("bot-a"));
        failing.failingWrites = true;

        assertThatThrownBy(() -> pool.recipientBlocked("bot-a", "42")).isInstanceOf(GuardStorageException.class);
        assertThat(pool.stats().sender("bot-a").recipientBlocks()).isZero();
        assertThat(pool.stats().brake()).isEqualTo(1.0);

        failing.failingWrites = false;
        pool.recipientBlocked("bot-a", "42");
        assertThat(pool.stats().sender("bot-a").recipientBlocks()).isEqualTo(1);
        assertThat(pool.stats().brake()).isEqualTo(0.9);
        assertThat(pool.isRecipientBlocked("42")).isTrue();
    }

    @Test
    void recipientBlocked_emptyChat_isRejectedNamingIt() {
        SenderPool pool = pool("bot-a");
        assertThatThrownBy(() -> pool.recipientBlocked("bot-a", ""))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("chat must not be empty but was ''");
        assertThatThrownBy(() -> pool.recipientUnblocked(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("chat must not be empty but was null");
        assertThat(pool.stats().sender("bot-a").recipientBlocks()).isZero();
    }

    // Recipient blocks brake the whole pool (from a review): a block raised only the blocked sender's risk, so routing
    // moved the same traffic to the senders blocked less and the pool kept its full throughput, spreading the blocks
    // thin over its accounts, each under the platform's per-account signals.

    private static Sender tenPerSecond(String id) {
        return Sender.builder(id).perSecond(10).build();
    }

    /** Acquires messages made by {@code next} until the pool says no; answers the grants per sender. */
    private static Map<String, Integer> drain(SenderPool pool, java.util.function.Supplier<OutboundMessage> next) {
        Map<String, Integer> grants = new HashMap<>();
        for (SendDecision d = pool.acquire(next.get()); d.granted(); d = pool.acquire(next.get())) {
            grants.merge(((SendDecision.Granted) d).sender(), 1, Integer::sum);
        }
        return grants;
    }

    private List<PoolEvent.Type> brakeEvents() {
        return events.stream()
                .map(PoolEvent::type)
                .filter(t -> t == PoolEvent.Type.POOL_BRAKED || t == PoolEvent.Type.POOL_BRAKE_RELEASED)
                .toList();
    }

    @Test
    void recipientBlock_brakesEverySender_soThePoolSendsLessPerSecond_thoughTheOthersAreFree() {
        SenderPool pool = builder(tenPerSecond("bot-a"), tenPerSecond("bot-b"), tenPerSecond("bot-c"))
                .recipientBlockBrake(0.5, 0.05)
                .build();
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 10, "bot-b", 10, "bot-c", 10));

        pool.recipientBlocked("bot-a", "42");
        ticker.advance(Duration.ofMillis(1100));

        // Halved, and 0.05 back per second since: 0.555 of each sender's 10, bot-b's and bot-c's too.
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 5, "bot-b", 5, "bot-c", 5));
        assertThat(pool.stats().brake()).isCloseTo(0.555, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.POOL_BRAKED)
                .singleElement()
                .satisfies(e -> {
                    assertThat(e.sender()).isEqualTo("bot-a");
                    assertThat(e.detail())
                            .isEqualTo("a recipient blocked sender 'bot-a': every sender's per-second limit at 0.5000"
                                    + " of its pace");
                });
    }

    @Test
    void recipientBlockBrake_recoversAdditivelyWithTimeWithoutBlocks_andTellsWhenThePoolIsBrakedAndReleased() {
        SenderPool pool = builder(tenPerSecond("bot-a"), tenPerSecond("bot-b"))
                .recipientBlockBrake(0.5, 0.05)
                .build();
        Instant start = ticker.now();

        pool.recipientBlocked("bot-a", "41");
        pool.recipientBlocked("bot-b", "42");
        assertThat(pool.stats().brake()).isEqualTo(0.25);

        // 0.05 per second without a block: 0.5 five seconds later, 0.75 ten seconds later, 1 after fifteen.
        ticker.advance(Duration.ofSeconds(5));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 5, "bot-b", 5));
        ticker.advance(Duration.ofSeconds(5));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 7, "bot-b", 7));
        ticker.advance(Duration.ofSeconds(5));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 10, "bot-b", 10));
        assertThat(pool.stats().brake()).isEqualTo(1.0);
        assertThat(brakeEvents()).containsExactly(PoolEvent.Type.POOL_BRAKED, PoolEvent.Type.POOL_BRAKE_RELEASED);
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.POOL_BRAKE_RELEASED)
                .singleElement()
                .satisfies(e -> {
                    assertThat(e.sender()).isEmpty();
                    assertThat(e.at()).isEqualTo(start.plusSeconds(15));
                    assertThat(e.detail()).isEqualTo("no recipient block since " + start + ": full speed again");
                });

        // A new episode; and one that ended while no message was acquired ends before the next begins.
        pool.recipientBlocked("bot-a", "43");
        ticker.advance(Duration.ofSeconds(30));
        pool.recipientBlocked("bot-a", "44");
        assertThat(brakeEvents())
                .containsExactly(
                        PoolEvent.Type.POOL_BRAKED,
                        PoolEvent.Type.POOL_BRAKE_RELEASED,
                        PoolEvent.Type.POOL_BRAKED,
                        PoolEvent.Type.POOL_BRAKE_RELEASED,
                        PoolEvent.Type.POOL_BRAKED);
    }

    @Test
    void aBurstOfRecipientBlocks_slowsEverySenderToOneMessagePerSecond_neverToNone_fullSpeedWithinTwentySeconds() {
        SenderPool pool = builder(tenPerSecond("bot-a"), tenPerSecond("bot-b")).build();

        for (int i = 0; i < 100; i++) {
            pool.recipientBlocked(i % 2 == 0 ? "bot-a" : "bot-b", "blocked-" + i);
        }

        // No lower than where the fastest sender is down to one message per second: lower would only delay recovery.
        assertThat(pool.stats().brake()).isEqualTo(0.1);
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 1, "bot-b", 1));
        ticker.advance(Duration.ofSeconds(19));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 10, "bot-b", 10));
    }

    @Test
    void recipientBlocks_inAPoolWhoseFastestSenderSendsOneMessagePerSecond_brakeNothing_andTellNoEpisode() {
        // One message per second is the floor of every sender's limit: the brake has nothing to slow. It told a
        // POOL_BRAKED for every block (each found the pool "at full speed" again) and never a release.
        SenderPool pool = builder(
                        Sender.builder("bot-a").perSecond(1).build(),
                        Sender.builder("bot-b").perSecond(1).build())
                .build();

        pool.recipientBlocked("bot-a", "41");
        ticker.advance(Duration.ofSeconds(30));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 1, "bot-b", 1));
        pool.recipientBlocked("bot-b", "42");
        ticker.advance(Duration.ofSeconds(30));
        assertThat(drain(pool)).isEqualTo(Map.of("bot-a", 1, "bot-b", 1));

        assertThat(pool.stats().brake()).isEqualTo(1.0);
        assertThat(brakeEvents()).isEmpty();

        // Raised above one a second, the same senders are braked again, and the episode is told once.
        pool.setGroupLimits("default", 10, 0);
        pool.recipientBlocked("bot-a", "43");
        pool.recipientBlocked("bot-b", "44");
        assertThat(pool.stats().brake()).isCloseTo(0.81, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(brakeEvents()).containsExactly(PoolEvent.Type.POOL_BRAKED);
    }

    @Test
    void recipientBlockBrake_slowsMessagesPinnedToASender_andStickyOnes() {
        SenderPool pool = builder(tenPerSecond("bot-a"), tenPerSecond("bot-b"))
                .recipientBlockBrake(0.5, 0.05)
                .build();
        pool.recipientBlocked("bot-b", "42");

        // Five per second: pinning a message to the sender that was not blocked does not get around the brake.
        assertThat(drain(pool, () -> fresh().pinnedTo("bot-a"))).isEqualTo(Map.of("bot-a", 5));
        SendDecision busy = pool.acquire(fresh().pinnedTo("bot-a"));
        assertThat(((SendDecision.Delayed) busy).reason()).isEqualTo(SendDecision.Reason.SENDERS_BUSY);

        ticker.advance(Duration.ofMillis(1100));
        String home = granted(pool.acquire(fresh().stickyBy("user-7")));
        Map<String, Integer> sticky = drain(pool, () -> fresh().stickyBy("user-7"));
        sticky.merge(home, 1, Integer::sum);
        // 0.555 of 10 for the key's sender, then the other sender while it is busy: braked as well.
        assertThat(sticky).isEqualTo(Map.of("bot-a", 5, "bot-b", 5));
    }

    @Test
    void builder_recipientBlockBrake_rejectsBadValues_namingTheSettingAndTheValue() {
        SenderPool.Builder b = builder(Sender.of("bot-a"));

        // A backoff of 1 would turn the brake off: there is no such setting.
        assertThatThrownBy(() -> b.recipientBlockBrake(1.0, 0.05))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("recipientBlockBrake backoff must be between 0 and 1 but was 1.0");
        assertThatThrownBy(() -> b.recipientBlockBrake(0, 0.05))
                .hasMessage("recipientBlockBrake backoff must be between 0 and 1 but was 0.0");
        assertThatThrownBy(() -> b.recipientBlockBrake(Double.NaN, 0.05))
                .hasMessage("recipientBlockBrake backoff must be between 0 and 1 but was NaN");
        assertThatThrownBy(() -> b.recipientBlockBrake(0.5, 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("recipientBlockBrake recoveryPerSecond must be above 0 and at most 1 but was 0.0");
        assertThatThrownBy(() -> b.recipientBlockBrake(0.5, 1.5))
                .hasMessage("recipientBlockBrake recoveryPerSecond must be above 0 and at most 1 but was 1.5");
        assertThatThrownBy(() -> b.recipientBlockBrake(0.5, Double.NaN))
                .hasMessage("recipientBlockBrake recoveryPerSecond must be above 0 and at most 1 but was NaN");

        SenderPool pool = b.recipientBlockBrake(0.2, 1).build();
        pool.recipientBlocked("bot-a", "42");
        assertThat(pool.stats().brake()).isEqualTo(0.2);
        ticker.advance(Duration.ofMillis(500));
        assertThat(pool.stats().brake()).isCloseTo(0.7, org.assertj.core.data.Offset.offset(1e-9));
    }

    @Test
    void acquire_storageFailing_isRejectedAsUnavailable_neverThrown() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.of("bot-a"));
        failing.failing = true;

        SendDecision d = pool.acquire(fresh());

        assertThat(d).isInstanceOf(SendDecision.Rejected.class);
        assertThat(((SendDecision.Rejected) d).reason()).isEqualTo(SendDecision.Reason.STORAGE_UNAVAILABLE);
        assertThat(((SendDecision.Rejected) d).detail()).isEqualTo("test evaluate failed: down");
        failing.failing = false;
        assertThat(pool.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void blocked_whileTheStorageFails_holdsInThisProcess_untilSetActive() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = twoSenders(failing);
        failing.failingWrites = true;

        assertThatThrownBy(() -> pool.blocked("bot-a"))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("down");
        failing.failingWrites = false;
        ticker.advance(Duration.ofSeconds(2));
        pool.sync();

        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-b");
        }
        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
    }

    @Test
    void anUnrecordedBlock_endsWhenARecordWrittenSinceSaysActive() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool here = twoSenders(failing);
        SenderPool there = twoSenders(storage);
        failing.failingWrites = true;
        assertThatThrownBy(() -> here.blocked("bot-a")).isInstanceOf(GuardStorageException.class);
        failing.failingWrites = false;
        ticker.advance(Duration.ofSeconds(2));

        // Another pool blocks the sender and sets it active again: its record, written after the unrecorded block,
        // says active.
        there.blocked("bot-a");
        ticker.advance(Duration.ofSeconds(2));
        there.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofMinutes(2));
        here.sync();

        assertThat(here.status("bot-a")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(granted(here.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
    }

    /** Reports a 30 s retry_after for {@code g} that the storage fails to record: only this process holds it. */
    private static void retryAfterHeldOnlyHere(FailingStorage failing, SendDecision.Granted g) {
        failing.failingGates = true;
        assertThatThrownBy(() -> g.retryAfter(Duration.ofSeconds(30))).isInstanceOf(GuardStorageException.class);
        failing.failingGates = false;
    }

    @Test
    void aRetryAfterTheStorageFailedToRecord_survivesAChangeOfLimits() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.builder("bot-a").group("g").build());
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
        retryAfterHeldOnlyHere(failing, g);

        pool.setGroupLimits("g", 10, 1000);
        ticker.advance(Duration.ofSeconds(10));
        pool.sync();

        assertThat(pool.acquire(fresh()).granted())
                .as("still within the platform's retry_after")
                .isFalse();
        ticker.advance(Duration.ofSeconds(20));
        assertThat(pool.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void aRetryAfterReportedWhileAnAttemptIsAnswered_outlastsTheAttemptsShorterWait() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.builder("bot-a").perSecond(1).build());
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
        // Another thread reports the platform's retry_after while this thread's attempt, busy for about a second by
        // the per-second quota, is being answered; the storage fails to record the gate, so only this process has it.
        failing.afterNextEvaluate = () -> retryAfterHeldOnlyHere(failing, g);
        assertThat(pool.acquire(fresh()).granted()).isFalse();

        assertThat(pool.acquire(fresh()))
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusSeconds(30), Duration.ofSeconds(30), SendDecision.Reason.SENDERS_BUSY));
        ticker.advance(Duration.ofSeconds(2));
        assertThat(pool.acquire(fresh()).granted())
                .as("still within the platform's retry_after")
                .isFalse();
        ticker.advance(Duration.ofSeconds(28));
        assertThat(pool.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void setGroupStatusActive_keepsAMembersLongerRetryAfter() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.builder("bot-a").group("g").build());
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
        retryAfterHeldOnlyHere(failing, g);

        // Re-activates the group's blocked members; bot-a was only cooling, behind a gate longer than re-entry's.
        pool.setGroupStatus("g", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        assertThat(pool.acquire(fresh()).granted())
                .as("still within the platform's retry_after")
                .isFalse();
        ticker.advance(Duration.ofSeconds(28));
        assertThat(pool.acquire(fresh()).granted()).isTrue();
    }

    // ------------------------------------------------------------------------------------------------ gates

    @Test
    void retryAfterOfHours_gatesTheSenderExactlyThatLong_andIsHonoured() {
        SenderPool pool = pool("bot-a");
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
        Instant deadline = ticker.now().plus(Duration.ofHours(3));

        g.retryAfter(Duration.ofHours(3));

        SendDecision d = pool.acquire(fresh());
        assertThat(d)
                .isEqualTo(new SendDecision.Delayed(deadline, Duration.ofHours(3), SendDecision.Reason.SENDERS_BUSY));
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.COOLING);
        ticker.advance(Duration.ofHours(3).minusNanos(1_000));
        assertThat(pool.acquire(fresh()).granted()).isFalse();
        ticker.advanceMicros(1);
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(events)
                .extracting(PoolEvent::type)
                .containsSubsequence(PoolEvent.Type.COOLING_STARTED, PoolEvent.Type.COOLING_ENDED);
    }

    @Test
    void retryAfterWithAPartOfAMicrosecond_gatesTheSenderUntilTheWholeWaitHasPassed() {
        // Found by a review: the part of a microsecond was cut off, so a wait shorter than one was taken for zero (no
        // gate at all) and a longer one ended up to 999 ns before the platform's deadline.
        SenderPool pool = pool("bot-a");

        pool.retryAfter("bot-a", Duration.ofNanos(500));

        assertThat(pool.acquire(fresh()).granted()).isFalse();
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.COOLING);
        ticker.advanceMicros(1);
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");

        pool.retryAfter("bot-a", Duration.ofSeconds(2).plusNanos(1));

        ticker.advance(Duration.ofSeconds(2));
        assertThat(pool.acquire(fresh()).granted()).isFalse();
        ticker.advanceMicros(1);
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
    }

    @Test
    void retryAfterInChat_gatesTheChatForEverySender_andTheSender() {
        SenderPool pool = pool("bot-a", "bot-b");
        OutboundMessage busy = OutboundMessage.to("group-1").inGroup();
        SendDecision.Granted g = (SendDecision.Granted) pool.acquire(busy);

        g.retryAfterInChat(Duration.ofSeconds(10));

        SendDecision d = pool.acquire(busy);
        assertThat(d).isInstanceOf(SendDecision.Delayed.class);
        assertThat(((SendDecision.Delayed) d).reason()).isEqualTo(SendDecision.Reason.CHAT_LIMIT);
        assertThat(((SendDecision.Delayed) d).retryAfter()).isEqualTo(Duration.ofSeconds(10));
        // Other chats go through the sender that was not pushed back.
        String other = g.sender().equals("bot-a") ? "bot-b" : "bot-a";
        assertThat(granted(pool.acquire(fresh()))).isEqualTo(other);
        ticker.advance(Duration.ofSeconds(10));
        assertThat(pool.acquire(busy).granted()).isTrue();
    }

    @Test
    void chatLimits_delayTheMessage_withoutMovingItToAnotherSender() {
        SenderPool pool = pool("bot-a", "bot-b");
        OutboundMessage user = OutboundMessage.to("user-1");
        assertThat(pool.acquire(user).granted()).isTrue();

        SendDecision d = pool.acquire(user);

        assertThat(d)
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusSeconds(1), Duration.ofSeconds(1), SendDecision.Reason.CHAT_LIMIT));
        OutboundMessage group = OutboundMessage.to("group-1").inGroup();
        for (int i = 0; i < 20; i++) {
            assertThat(pool.acquire(group).granted()).isTrue();
            ticker.advance(Duration.ofSeconds(1));
        }
        assertThat(((SendDecision.Delayed) pool.acquire(group)).reason()).isEqualTo(SendDecision.Reason.CHAT_LIMIT);
    }

    @Test
    void chatLimitFreeInLessThanAMillisecond_delaysByAMillisecond_neverLess() {
        SenderPool pool = pool("bot-a");
        OutboundMessage user = OutboundMessage.to("user-1");
        assertThat(pool.acquire(user).granted()).isTrue();
        ticker.advance(Duration.ofSeconds(1).minusNanos(500_000)); // the chat's window ends in 0.5 ms

        SendDecision d = pool.acquire(user);

        assertThat(d)
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusMillis(1), Duration.ofMillis(1), SendDecision.Reason.CHAT_LIMIT));
        ticker.advance(Duration.ofMillis(1));
        assertThat(pool.acquire(user).granted()).isTrue();
    }

    @Test
    void pinnedSenderFreeInLessThanAMillisecond_delaysByAMillisecond_neverLess() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(1).build()).build();
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
        Duration busy = ((SendDecision.Delayed) pool.acquire(fresh().pinnedTo("bot-a"))).retryAfter();
        ticker.advance(busy.minusNanos(500_000)); // the wait it learnt ends in 0.5 ms

        SendDecision d = pool.acquire(fresh().pinnedTo("bot-a"));

        assertThat(d)
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusMillis(1), Duration.ofMillis(1), SendDecision.Reason.SENDERS_BUSY));
        ticker.advance(Duration.ofMillis(1));
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
    }

    @Test
    void telegramGroup_getsOneMessagePerSecond_and20PerMinute() {
        SenderPool pool =
                builder(Sender.of("bot-a")).preset(PlatformPreset.telegram()).build();
        OutboundMessage group = OutboundMessage.to("g").inGroup();
        assertThat(pool.acquire(group).granted()).isTrue();

        SendDecision d = pool.acquire(group);

        assertThat(d)
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusSeconds(1), Duration.ofSeconds(1), SendDecision.Reason.CHAT_LIMIT));
        for (int i = 1; i < 20; i++) {
            ticker.advance(Duration.ofSeconds(1));
            assertThat(pool.acquire(group).granted()).isTrue();
        }
        ticker.advance(Duration.ofSeconds(1));
        // 20 in the last 20 seconds: the minute's limit holds until the first one is a minute old.
        assertThat(((SendDecision.Delayed) pool.acquire(group)).retryAfter()).isEqualTo(Duration.ofSeconds(40));
    }

    @Test
    void telegramGroupOrChannelId_notMarkedInGroup_stillGets20PerMinute() {
        // Telegram's group, supergroup and channel ids are negative, and a channel may be addressed by @username; a
        // private chat's id is a user's, positive. A bot that forgets inGroup() must not send a group 60 a minute.
        SenderPool pool =
                builder(Sender.of("bot-a")).preset(PlatformPreset.telegram()).build();
        for (String chat : List.of("-1001234567890", "-4242", "@news_channel")) {
            OutboundMessage unmarked = OutboundMessage.to(chat);
            for (int i = 0; i < 20; i++) {
                assertThat(pool.acquire(unmarked).granted())
                        .as("%s #%d", chat, i)
                        .isTrue();
                ticker.advance(Duration.ofSeconds(1));
            }

            SendDecision d = pool.acquire(unmarked);

            assertThat(d).as(chat).isInstanceOf(SendDecision.Delayed.class);
            assertThat(((SendDecision.Delayed) d).retryAfter()).as(chat).isEqualTo(Duration.ofSeconds(40));
            assertThat(((SendDecision.Delayed) d).reason()).isEqualTo(SendDecision.Reason.CHAT_LIMIT);
            // The same group marked inGroup() shares the count: one group, one limit.
            assertThat(pool.acquire(unmarked.inGroup()).granted()).isFalse();
        }
        // A numeric id is its decimal text: the same group, at its limit still.
        assertThat(pool.acquire(OutboundMessage.to(-4242L)).granted()).isFalse();
        // A private chat (a positive id, or a key of the bot's own) keeps its one message a second, no more.
        for (String chat : List.of("12345", "user-7")) {
            for (int i = 0; i < 25; i++) {
                assertThat(pool.acquire(OutboundMessage.to(chat)).granted())
                        .as("%s #%d", chat, i)
                        .isTrue();
                ticker.advance(Duration.ofSeconds(1));
            }
        }
    }

    @Test
    void whatsAppGroup_getsThePairLimitOnce() {
        SenderPool pool = builder(Sender.of("num-a"))
                .preset(PlatformPreset.whatsAppCloud(PlatformPreset.WhatsAppTier.UNLIMITED))
                .build();
        OutboundMessage group = OutboundMessage.to("g").inGroup();
        assertThat(pool.acquire(group).granted()).isTrue();

        assertThat(((SendDecision.Delayed) pool.acquire(group)).retryAfter()).isEqualTo(Duration.ofSeconds(6));
        ticker.advance(Duration.ofSeconds(6));
        assertThat(pool.acquire(group).granted()).isTrue();
    }

    @Test
    void raisedPerDayLimit_appliesAtOnce_insteadOfAfterTheOldDay() {
        SenderPool pool =
                builder(Sender.builder("bot-a").group("g").perDay(3).build()).build();
        for (int i = 0; i < 3; i++) {
            assertThat(pool.acquire(fresh()).granted()).isTrue();
        }
        assertThat(((SendDecision.Delayed) pool.acquire(fresh())).retryAfter()).isGreaterThan(Duration.ofHours(20));

        pool.setGroupLimits("g", 30, 10);

        for (int i = 0; i < 7; i++) {
            assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
        }
        assertThat(pool.acquire(fresh()).granted()).isFalse();
    }

    @Test
    void globalLimit_whatsAppTier250_admitsExactly250Messages_sharedByAllNumbers() {
        SenderPool pool = builder(Sender.of("num-1"), Sender.of("num-2"), Sender.of("num-3"))
                .preset(PlatformPreset.whatsAppCloud(PlatformPreset.WhatsAppTier.TIER_250))
                .build();

        int grants = 0;
        SendDecision d;
        for (d = pool.acquire(fresh()); ; d = pool.acquire(fresh())) {
            if (d.granted()) {
                grants++;
            } else if (((SendDecision.Delayed) d).reason() == SendDecision.Reason.SENDERS_BUSY) {
                ticker.advance(((SendDecision.Delayed) d).retryAfter()); // 3 x 80 per second
            } else {
                break;
            }
        }

        assertThat(grants).isEqualTo(250);
        assertThat(((SendDecision.Delayed) d).reason()).isEqualTo(SendDecision.Reason.GLOBAL_LIMIT);
        // The moving 24 hours start to free capacity about a day later (one sub-bucket of an hour early at most).
        assertThat(((SendDecision.Delayed) d).retryAfter()).isBetween(Duration.ofHours(23), Duration.ofHours(25));
    }

    @Test
    void perDayLimit_admitsItsQuota_thenDelaysForAboutADay() {
        SenderPool pool = builder(Sender.builder("bot-a").perDay(5).build()).build();
        int granted = 0;
        SendDecision d;
        for (d = pool.acquire(fresh()); d.granted(); d = pool.acquire(fresh())) {
            granted++;
        }

        assertThat(granted).isEqualTo(5);
        // The moving 24 hours free capacity one sub-bucket (an hour) after the day at most.
        assertThat(((SendDecision.Delayed) d).retryAfter()).isBetween(Duration.ofHours(24), Duration.ofHours(25));
    }

    @Test
    void perDayLimit_isAMoving24Hours_notACalendarDay_andFreesWithinTheHourAfter() {
        SenderPool pool = builder(Sender.builder("bot-a").perDay(3).build()).build();
        ticker.set(Instant.parse("2026-03-01T23:30:00Z"));
        for (int i = 0; i < 3; i++) {
            assertThat(pool.acquire(fresh()).granted()).isTrue();
        }

        // Past midnight UTC (and in every other zone's midnight within the day): no reset.
        ticker.set(Instant.parse("2026-03-02T00:30:00Z"));
        assertThat(pool.acquire(fresh()).granted()).isFalse();
        ticker.set(Instant.parse("2026-03-02T23:29:59Z"));
        assertThat(pool.acquire(fresh()).granted()).isFalse();
        // Counted in one-hour steps: the three stop counting once their hour (23:00-24:00) is a whole day old.
        ticker.set(Instant.parse("2026-03-03T00:00:00Z"));
        assertThat(drain(pool)).containsEntry("bot-a", 3);
    }

    @Test
    void poolExhausted_isReportedOncePerEpisode_andRecoveryToo() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(1).build()).build();
        assertThat(pool.acquire(fresh()).granted()).isTrue();

        pool.acquire(fresh());
        pool.acquire(fresh());
        ticker.advance(Duration.ofSeconds(2));
        assertThat(pool.acquire(fresh()).granted()).isTrue();

        assertThat(events)
                .extracting(PoolEvent::type)
                .containsExactly(PoolEvent.Type.POOL_EXHAUSTED, PoolEvent.Type.POOL_RECOVERED);
    }

    @Test
    void retryAfter_backOffHalvesPacing_andTheWaitItselfDoesNotUndoIt() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(10).build()).build();
        granted(pool.acquire(fresh()));
        pool.delivered("bot-a", Duration.ofMillis(30));
        pool.retryAfter("bot-a", Duration.ofSeconds(30));
        double halved = pool.stats().sender("bot-a").pacing();
        assertThat(halved).isLessThan(1.0);

        ticker.advance(Duration.ofSeconds(30));
        granted(pool.acquire(fresh()));
        pool.delivered("bot-a", Duration.ofMillis(30));

        // One delivery recovers one second's worth (0.05 of the limit by default), not the 30 s of the wait.
        assertThat(pool.stats().sender("bot-a").pacing())
                .isCloseTo(halved + 0.05, org.assertj.core.data.Offset.offset(1e-9));
        int granted = 1;
        for (SendDecision d = pool.acquire(fresh()); d.granted(); d = pool.acquire(fresh())) {
            granted++;
        }
        assertThat(granted).as("sends in the second after the wait").isLessThan(10);
    }

    @Test
    void preset_duplicateWindowAsAQuota_isRejectedNamingTheField() {
        dev.guard.limit.DuplicateWindow window = new dev.guard.limit.DuplicateWindow(Duration.ofMinutes(10), 16);
        SlidingWindowLog quota = new SlidingWindowLog(20, Duration.ofMinutes(1));

        assertThatThrownBy(() -> PlatformPreset.of("custom", 30, window, quota))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("privateChat must be a quota, not ");
        assertThatThrownBy(() -> PlatformPreset.of("custom", 30, quota, quota).withGlobal(window))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("global must be a quota, not ");
    }

    // ------------------------------------------------------------------------------------------------ routing

    @Test
    void tags_routeContentOnlyToSendersAllowedToCarryIt() {
        SenderPool pool = builder(Sender.builder("bot-links").tags("links").build(), Sender.of("bot-plain"))
                .build();

        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh().carrying("links")))).isEqualTo("bot-links");
        }
        SendDecision media = pool.acquire(fresh().carrying("media"));
        assertThat(media)
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER, "no sender of pool 'default' may carry [media]"));

        assertThat(pool.addGroupTag("default", "media")).isEqualTo(2);
        assertThat(pool.acquire(fresh().carrying("media")).granted()).isTrue();
        pool.removeGroupTag("default", "links");
        assertThat(((SendDecision.Rejected) pool.acquire(fresh().carrying("links"))).reason())
                .isEqualTo(SendDecision.Reason.NO_ELIGIBLE_SENDER);
    }

    @Test
    void tagNeedsWarmUpStage_keepsLinksAwayFromAColdSender_untilItReachesTheStage() {
        WarmUpSchedule schedule = WarmUpSchedule.table(1000, 1000).withStageLength(Duration.ofMinutes(1));
        SenderPool pool = builder(
                        Sender.builder("bot-new").tags("links").warmUp(schedule).build(),
                        Sender.builder("bot-old").tags("links").build())
                .tagNeedsWarmUpStage("links", 1)
                .build();

        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh().carrying("links")))).isEqualTo("bot-old");
        }
        sendClean(pool, "bot-new", SenderPool.MIN_STAGE_SENT);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();

        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        List<String> senders = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            senders.add(granted(pool.acquire(fresh().carrying("links"))));
        }
        assertThat(senders).contains("bot-new");
    }

    @Test
    void tagNeedsWarmUpStage_withOnlyColdCarriers_isRejectedSayingTheyAreNotWarmEnough() {
        WarmUpSchedule schedule = WarmUpSchedule.table(1000, 1000);
        SenderPool pool = builder(
                        Sender.builder("bot-new").tags("links").warmUp(schedule).build(), Sender.of("bot-plain"))
                .tagNeedsWarmUpStage("links", 1)
                .build();

        // bot-new carries links: the tag is configured right, its warm-up is what holds the message back.
        assertThat(pool.acquire(fresh().carrying("links")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER,
                        "no active sender of pool 'default' that may carry [links] has reached the warm-up stage"
                                + " they need (links from stage 1)"));
        pool.removeGroupTag("default", "links");
        assertThat(pool.acquire(fresh().carrying("links")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER,
                        "no active sender of pool 'default' may carry [links]"));
    }

    @Test
    void routing_prefersHealthySenders_overOnesThatFailOrAreSlow() {
        SenderPool pool = builder(
                        Sender.builder("bot-a").perSecond(1000).build(),
                        Sender.builder("bot-b").perSecond(1000).build(),
                        Sender.builder("bot-c").perSecond(1000).build(),
                        Sender.builder("bot-d").perSecond(1000).build())
                .build();
        for (int i = 0; i < 3; i++) {
            pool.failed("bot-a", "timeout");
        }
        pool.delivered("bot-b", Duration.ofSeconds(4));

        Map<String, Integer> grants = new HashMap<>();
        for (int i = 0; i < 400; i++) {
            grants.merge(granted(pool.acquire(fresh())), 1, Integer::sum);
        }

        // Power of two choices: the worst sender wins no comparison, the second worst only against the worst.
        assertThat(grants.getOrDefault("bot-a", 0)).isZero();
        assertThat(grants.get("bot-b")).isBetween(40, 100);
        assertThat(grants.get("bot-c") + grants.get("bot-d")).isGreaterThan(300);
    }

    @Test
    void stickyBy_sendsAKeyToTheSameSender_inEveryPool() {
        SenderPool one = pool("bot-a", "bot-b", "bot-c", "bot-d");
        SenderPool two = builder(Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"), Sender.of("bot-d"))
                .random(new Random(99))
                .build();
        Map<String, Integer> byFirst = new HashMap<>();

        for (int k = 0; k < 40; k++) {
            String key = "user-" + k;
            String first = granted(one.acquire(OutboundMessage.to("a-" + k).stickyBy(key)));
            String second = granted(two.acquire(OutboundMessage.to("b-" + k).stickyBy(key)));
            assertThat(second).as(key).isEqualTo(first);
            byFirst.merge(first, 1, Integer::sum);
        }
        assertThat(byFirst).hasSize(4);
    }

    @Test
    void stickyBy_sendersWhoseIdsHashAlike_getAKeyToTheSameSender_inPoolsThatAddedThemInAnotherOrder() {
        // Found by a review: "bot-Aa" and "bot-BB" have the same String.hashCode, so every key weighs them alike, and
        // the tie went to the sender the pool had added first: two processes that list their senders in another order
        // sent a key to different senders.
        assertThat("bot-Aa".hashCode()).isEqualTo("bot-BB".hashCode());
        SenderPool one = pool("bot-Aa", "bot-BB");
        SenderPool two = pool("bot-BB", "bot-Aa");

        for (int k = 0; k < 20; k++) {
            String key = "user-" + k;
            String first = granted(one.acquire(OutboundMessage.to("a-" + k).stickyBy(key)));
            String second = granted(two.acquire(OutboundMessage.to("b-" + k).stickyBy(key)));
            assertThat(second).as(key).isEqualTo(first);
        }
    }

    @Test
    void pinnedTo_usesOnlyThatSender_delaysWhileBusy_andRejectsWhenBlocked() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(2).build(), Sender.of("bot-b"))
                .build();

        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
        SendDecision busy = pool.acquire(fresh().pinnedTo("bot-a"));
        assertThat(((SendDecision.Delayed) busy).reason()).isEqualTo(SendDecision.Reason.SENDERS_BUSY);

        pool.blocked("bot-a");

        assertThat(pool.acquire(fresh().pinnedTo("bot-a")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE, "sender 'bot-a' is BLOCKED"));
    }

    @Test
    void pinnedTo_aSenderThatCannotCarryTheContent_isRejectedSayingWhy_notThatItIsActive() {
        WarmUpSchedule schedule = WarmUpSchedule.table(1000, 1000);
        SenderPool pool = builder(
                        Sender.builder("bot-cold")
                                .tags("links")
                                .warmUp(schedule)
                                .build(),
                        Sender.builder("bot-plain").build())
                .tagNeedsWarmUpStage("links", 1)
                .build();

        // It carries links, but not before its warm-up reaches stage 1: waiting for the stage is what helps.
        assertThat(pool.acquire(fresh().carrying("links").pinnedTo("bot-cold")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE,
                        "sender 'bot-cold' may carry [links] only from warm-up stage 1 but is at stage 0"));
        // It does not carry links at all; cooling after a 429 is no part of why.
        pool.retryAfter("bot-plain", Duration.ofSeconds(30));
        assertThat(pool.acquire(fresh().carrying("links").pinnedTo("bot-plain")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE, "sender 'bot-plain' may not carry [links]"));
        // A tag no sender of the pool carries: still the pinned sender's answer, not the pool's.
        assertThat(pool.acquire(fresh().carrying("media", "links").pinnedTo("bot-cold")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE,
                        "sender 'bot-cold' may not carry [media] and may carry [links] only from warm-up stage 1 but is"
                                + " at stage 0"));
        pool.setStatus("bot-plain", SenderStatus.RETIRED);
        assertThat(pool.acquire(fresh().pinnedTo("bot-plain")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE, "sender 'bot-plain' is RETIRED"));
    }

    @Test
    void pushback_halvesThePacedLimit_andSuccessRecoversItAdditively() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(10).build()).build();
        assertThat(drain(pool)).containsEntry("bot-a", 10);

        pool.retryAfter("bot-a", Duration.ZERO);
        ticker.advance(Duration.ofMillis(1100));

        assertThat(drain(pool)).containsEntry("bot-a", 5);
        // 0.05 of the limit per second of successful sending: back to full speed 10 s later.
        for (int i = 0; i < 11; i++) {
            ticker.advance(Duration.ofSeconds(1));
            pool.delivered("bot-a", Duration.ofMillis(30));
        }
        ticker.advance(Duration.ofMillis(1100));
        assertThat(drain(pool)).containsEntry("bot-a", 10);
        assertThat(pool.stats().sender("bot-a").pacing()).isEqualTo(1.0);
    }

    @Test
    void ejection_takesAFailingSenderOut_butNeverEmptiesThePool() {
        SenderPool pool = pool("bot-a", "bot-b");

        for (int i = 0; i < 5; i++) {
            pool.failed("bot-a", "timeout");
        }
        for (int i = 0; i < 20; i++) {
            pool.failed("bot-b", "timeout");
        }

        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.SENDER_EJECTED)
                .extracting(PoolEvent::sender)
                .containsExactly("bot-a");
        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-b");
        }
        ticker.advance(Duration.ofSeconds(30));
        List<String> after = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            after.add(granted(pool.acquire(fresh())));
        }
        assertThat(after).contains("bot-a");
    }

    @Test
    void ejectedSenderFreeWhileTheOtherIsBusy_delaysUntilTheOtherIsFree_neverByZero() {
        SenderPool pool = builder(Sender.builder("bot-a").perSecond(1).build(), Sender.of("bot-b"))
                .build();
        for (int i = 0; i < 5; i++) {
            pool.failed("bot-b", "timeout");
        }
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");

        Duration wait = Duration.ZERO;
        for (int i = 0; i < 2; i++) {
            SendDecision d = pool.acquire(fresh());

            assertThat(d).isInstanceOf(SendDecision.Delayed.class);
            wait = ((SendDecision.Delayed) d).retryAfter();
            // bot-a's per-second counter frees up within its window plus one sub-bucket.
            assertThat(wait).isPositive().isLessThanOrEqualTo(Duration.ofMillis(1100));
        }
        ticker.advance(wait);
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
    }

    @Test
    void stickyBy_skipsAnEjectedSender_andReturnsToItAfterTheEjection() {
        SenderPool pool = pool("bot-a", "bot-b");
        OutboundMessage sticky = OutboundMessage.to("user-1").stickyBy("user-1");
        String home = granted(pool.acquire(sticky));
        String other = home.equals("bot-a") ? "bot-b" : "bot-a";
        for (int i = 0; i < 5; i++) {
            pool.failed(home, "timeout");
        }
        ticker.advance(Duration.ofSeconds(1)); // past the chat's limit

        assertThat(granted(pool.acquire(sticky))).isEqualTo(other);
        ticker.advance(Duration.ofSeconds(30));
        assertThat(granted(pool.acquire(sticky))).isEqualTo(home);
    }

    @Test
    void tags_aMessageCarrying64Tags_goesToTheSenderThatCarriesThemAll() {
        String[] tags = new String[64];
        for (int i = 0; i < tags.length; i++) {
            tags[i] = "t" + i;
        }
        SenderPool pool = builder(Sender.builder("bot-a").tags(tags).build()).build();

        assertThat(granted(pool.acquire(fresh().carrying(tags)))).isEqualTo("bot-a");
        assertThat(pool.acquire(fresh().carrying("unknown")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER, "no sender of pool 'default' may carry [unknown]"));
    }

    @Test
    void add_overTheTagLimit_addsNoneOfTheSendersTags_andLeavesTheRoomToOthers() {
        SenderPool pool =
                builder(Sender.builder("s1").tags(numbered("t", 60)).build()).build();

        assertThatThrownBy(() ->
                        pool.add(Sender.builder("s2").tags(numbered("u", 10)).build()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("pool 'default' may hold at most 64 distinct tags; 'u4' is one too many");

        assertThat(pool.senders()).containsExactly("s1");
        // u0 stays unknown, as no sender carries it.
        assertThat(pool.acquire(fresh().carrying("u0")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER, "no sender of pool 'default' may carry [u0]"));
        // The four tags that fit are left for another sender.
        pool.add(Sender.builder("s3").tags(numbered("v", 4)).build());
        assertThat(granted(pool.acquire(fresh().carrying("v0", "v3")))).isEqualTo("s3");
    }

    @Test
    void add_whoseRecordCannotBeRead_addsNeitherTheSenderNorItsTags() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool =
                poolOver(failing, Sender.builder("s1").tags(numbered("t", 62)).build());
        failing.unreadableRecord = new StateKey("route/default/sender", "s2");

        assertThatThrownBy(() -> pool.add(Sender.builder("s2").tags("u0").build()))
                .isInstanceOf(GuardStorageException.class);

        assertThat(pool.senders()).containsExactly("s1");
        assertThat(pool.acquire(fresh().carrying("u0")))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER, "no sender of pool 'default' may carry [u0]"));
        // 62 tags and v0: room for u0 still, once the storage reads s2's record.
        pool.add(Sender.builder("s3").tags("v0").build());
        failing.unreadableRecord = null;
        pool.add(Sender.builder("s2").tags("u0").build());
        assertThat(granted(pool.acquire(fresh().carrying("u0")))).isEqualTo("s2");
    }

    /** The tags {@code prefix}0 to {@code prefix}{@code n - 1}. */
    private static String[] numbered(String prefix, int n) {
        String[] tags = new String[n];
        for (int i = 0; i < n; i++) {
            tags[i] = prefix + i;
        }
        return tags;
    }

    @Test
    void failuresOfABlockedSendersMessagesInFlight_ejectNothing_andLeaveItsNextEjectionItsFirst() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c");
        List<SendDecision.Granted> inFlight = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            inFlight.add((SendDecision.Granted) pool.acquire(fresh().pinnedTo("bot-a")));
        }
        // Banned with six messages in flight: one reports the block, the other five time out.
        inFlight.get(0).blocked();
        for (SendDecision.Granted g : inFlight.subList(1, 6)) {
            g.failed("timeout");
        }
        assertThat(events).extracting(PoolEvent::type).doesNotContain(PoolEvent.Type.SENDER_EJECTED);

        pool.setStatus("bot-a", SenderStatus.ACTIVE);

        // Its first ejection: the default 30 s, not twice that.
        assertFiveFailuresEjectBotAForTheFirstTime(pool);
    }

    /**
     * Five failures of bot-a two seconds on, which eject it: its first ejection, 30 s, is the only one the listener
     * got.
     */
    private void assertFiveFailuresEjectBotAForTheFirstTime(SenderPool pool) {
        ticker.advance(Duration.ofSeconds(2));
        for (int i = 0; i < 5; i++) {
            pool.failed("bot-a", "timeout");
        }
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.SENDER_EJECTED)
                .extracting(PoolEvent::detail)
                .containsExactly(
                        "failing in a row (timeout) until " + ticker.now().plusSeconds(30));
    }

    @Test
    void ejection_ofTheOnlySenderForAMessage_isIgnored() {
        SenderPool pool = builder(Sender.builder("bot-a").tags("media").build(), Sender.of("bot-b"), Sender.of("bot-c"))
                .build();

        for (int i = 0; i < 5; i++) {
            pool.failed("bot-a", "timeout");
        }

        assertThat(events).extracting(PoolEvent::type).contains(PoolEvent.Type.SENDER_EJECTED);
        assertThat(granted(pool.acquire(fresh().carrying("media")))).isEqualTo("bot-a");
    }

    // ------------------------------------------------------------------------------------------------ warm-up

    @Test
    void warmUp_holdsAStage_whenTheFailureRateIsTooHigh() {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200).withStageLength(Duration.ofMinutes(1));
        SenderPool pool = builder(Sender.builder("bot-new").warmUp(schedule).build())
                .ejection(1_000, Duration.ofSeconds(1), 0.5)
                .build();
        for (int i = 0; i < 20; i++) {
            SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
            if (i % 5 == 0) {
                g.failed("timeout"); // 20% > 5%
            } else {
                g.delivered(Duration.ofMillis(20));
            }
        }

        ticker.advance(Duration.ofMinutes(1));
        pool.sync();

        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.WARM_UP_HELD)
                .hasSize(1);
        // A clean stage next: it advances.
        sendClean(pool, "bot-new", SenderPool.MIN_STAGE_SENT);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(pool.allowance("bot-new")).isEqualTo(200);
    }

    @Test
    void warmUp_pushbackOnTheSenderAboveTheLimit_holdsTheStage_butABusyChatsPushbackDoesNot() {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200, 400).withStageLength(Duration.ofHours(1));
        SenderPool pool =
                builder(Sender.builder("bot-new").warmUp(schedule).build()).build();

        // Stage 0: a quarter of the sends draw a 429 that names a busy chat. The chat's traffic, not the sender's
        // standing: the stage advances.
        sendReporting(pool, 20, 4, g -> g.retryAfterInChat(Duration.ofSeconds(1)));
        ticker.advance(Duration.ofHours(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);

        // Stage 1: one 429 on the sender in 20 sends, 0.05 > 0.01: held.
        sendReporting(pool, 20, 20, g -> g.retryAfter(Duration.ofSeconds(1)));
        ticker.advance(Duration.ofHours(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(eventsOf("bot-new"))
                .last()
                .isEqualTo("WARM_UP_HELD: stage 1 again, failure rate 0.0000, block rate 0.0000, pushback rate 0.0500"
                        + " over 20 sent");

        // Stage 1 again: one in 100, at the limit and not above it: it advances.
        sendReporting(pool, 100, 100, g -> g.retryAfter(Duration.ofSeconds(1)));
        ticker.advance(Duration.ofHours(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(2);
        assertThat(pool.stats().sender("bot-new").pushbacks())
                .as("every pushback still counts in the stats")
                .isEqualTo(7);
    }

    @Test
    void maxWarmUpPushbackRate_isTheRateAtWhichAStageStillAdvances() {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200, 400).withStageLength(Duration.ofHours(1));
        SenderPool pool = builder(Sender.builder("bot-new").warmUp(schedule).build())
                .maxWarmUpPushbackRate(0.1)
                .build();

        sendReporting(pool, 20, 10, g -> g.retryAfter(Duration.ofSeconds(1))); // 2 in 20: 0.1
        ticker.advance(Duration.ofHours(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);

        sendReporting(pool, 20, 6, g -> g.retryAfter(Duration.ofSeconds(1))); // 3 in 20: 0.15
        ticker.advance(Duration.ofHours(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(eventsOf("bot-new"))
                .last()
                .isEqualTo("WARM_UP_HELD: stage 1 again, failure rate 0.0000, block rate 0.0000, pushback rate 0.1500"
                        + " over 20 sent");
    }

    @Test
    void maxWarmUpPushbackRate_outsideZeroToOne_isRefusedNamingTheSettingAndTheValue() {
        SenderPool.Builder b = builder(Sender.of("bot-a"));

        assertThatThrownBy(() -> b.maxWarmUpPushbackRate(Double.NaN))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxWarmUpPushbackRate must be between 0 and 1 but was NaN");
        assertThatThrownBy(() -> b.maxWarmUpPushbackRate(-0.01))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxWarmUpPushbackRate must be between 0 and 1 but was -0.01");
        assertThatThrownBy(() -> b.maxWarmUpPushbackRate(1.5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("maxWarmUpPushbackRate must be between 0 and 1 but was 1.5");
        b.maxWarmUpPushbackRate(0).maxWarmUpPushbackRate(1);
    }

    /**
     * Two pools of one name share a warming sender's stage but each counts the reports it was given: a pushback on the
     * sender weighs in the quality of the pool it was reported to exactly as a failure does. The first pool to judge a
     * stage that is over ends it for both: held by the pool that saw the trouble, whose end the other reads (its own
     * clean sends do not advance it then), and advanced by the one that saw none if it judges first.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"failed", "retryAfter"})
    void warmUp_twoPools_judgeAStageOnTheReportsEachGot_aPushbackAsAFailure(String report) {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200).withStageLength(Duration.ofHours(1));
        SenderPool here =
                builder(Sender.builder("bot-new").warmUp(schedule).build()).build();
        SenderPool there = SenderPool.builder(storage)
                .ticker(ticker)
                .sender(Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        Consumer<SendDecision.Granted> trouble =
                report.equals("failed") ? g -> g.failed("timeout") : g -> g.retryAfter(Duration.ofSeconds(1));

        // 2 in 20 here: above both limits (0.05 failures, 0.01 pushbacks); none there.
        sendReporting(here, 20, 10, trouble);
        sendReporting(there, 20, 0, trouble);
        ticker.advance(Duration.ofHours(1));
        here.sync();
        there.sync();

        assertThat(here.warmUpStage("bot-new"))
                .as("held by the pool that was told")
                .isZero();
        assertThat(there.warmUpStage("bot-new")).as("read by the other").isZero();
        assertThat(eventsOf("bot-new"))
                .filteredOn(e -> e.startsWith("WARM_UP"))
                .singleElement(InstanceOfAssertFactories.STRING)
                .startsWith("WARM_UP_HELD: stage 0 again");

        // The same stage again, but the pool that saw nothing judges first: it advances the sender for both.
        sendReporting(here, 20, 10, trouble);
        sendReporting(there, 20, 0, trouble);
        ticker.advance(Duration.ofHours(1));
        there.sync();
        here.sync();

        assertThat(there.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(here.warmUpStage("bot-new")).isEqualTo(1);
    }

    /**
     * Sends {@code n} messages through the pool, each to a fresh chat a second after the one before (a pushback's
     * one-second gate is over by then, and pacing never goes below one a second), and reports every {@code every}-th
     * ({@code every} zero: none), counted from one, with {@code report}; the others are delivered.
     */
    private void sendReporting(SenderPool pool, int n, int every, Consumer<SendDecision.Granted> report) {
        for (int i = 1; i <= n; i++) {
            ticker.advance(Duration.ofSeconds(1));
            SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
            if (every > 0 && i % every == 0) {
                report.accept(g);
            } else {
                g.delivered(Duration.ofMillis(20));
            }
        }
    }

    @Test
    void warmUp_idleSender_staysAtItsStage_untilItHasSentEnough() {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200).withStageLength(Duration.ofMinutes(1));
        SenderPool pool =
                builder(Sender.builder("bot-new").warmUp(schedule).build()).build();

        for (int i = 0; i < 10; i++) {
            ticker.advance(Duration.ofMinutes(1));
            pool.sync();
        }

        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(events).extracting(PoolEvent::type).doesNotContain(PoolEvent.Type.WARM_UP_ADVANCED);
        sendClean(pool, SenderPool.MIN_STAGE_SENT - 1);
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isZero();
        sendClean(pool, 1);
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
    }

    @Test
    void warmUp_reactivatedAfterALongBlock_restartsTheStage() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        SenderPool pool =
                builder(Sender.builder("bot-new").warmUp(schedule).build()).build();
        sendClean(pool, 10);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        pool.blocked("bot-new");
        assertThat(pool.warmUpStage("bot-new")).isZero();
        ticker.advance(Duration.ofMinutes(5));

        pool.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofMillis(1001));
        sendClean(pool, 10);
        pool.sync();

        // The stage began at re-activation, not at the block: a minute has not passed yet.
        assertThat(pool.warmUpStage("bot-new")).isZero();
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
    }

    /** Sends {@code n} messages through the pool, each to a fresh chat and delivered. */
    private void sendClean(SenderPool pool, long n) {
        for (long i = 0; i < n; i++) {
            ((SendDecision.Granted) pool.acquire(fresh())).delivered(Duration.ofMillis(20));
        }
    }

    /** Sends {@code n} messages through {@code sender}, each to a fresh chat and delivered. */
    private void sendClean(SenderPool pool, String sender, long n) {
        for (long i = 0; i < n; i++) {
            ((SendDecision.Granted) pool.acquire(fresh().pinnedTo(sender))).delivered(Duration.ofMillis(20));
        }
    }

    @Test
    void blocked_stepsAWarmingSenderBack_andActiveAgainWaitsOneSyncInterval() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        SenderPool pool = builder(Sender.builder("bot-new").warmUp(schedule).build(), Sender.of("bot-old"))
                .build();
        sendClean(pool, "bot-new", 10);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();
        ticker.advance(Duration.ofMinutes(1)); // the warm-up window forgets stage 0's sends
        sendClean(pool, "bot-new", 20);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();
        assertThat(pool.allowance("bot-new")).isEqualTo(40);

        pool.blocked("bot-new");

        assertThat(pool.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(pool.allowance("bot-new")).isEqualTo(20);
        assertThat(events)
                .extracting(PoolEvent::type)
                .contains(PoolEvent.Type.SENDER_BLOCKED, PoolEvent.Type.WARM_UP_STEPPED_BACK);
        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-old");
        }
        ticker.advance(Duration.ofMinutes(1)); // blocked a while; the warm-up window forgets the earlier sends

        pool.setStatus("bot-new", SenderStatus.ACTIVE);

        assertThat(pool.acquire(fresh().pinnedTo("bot-new")).granted()).isFalse();
        ticker.advance(Duration.ofMillis(1001));
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-new")))).isEqualTo("bot-new");
    }

    @Test
    void blocked_reportedForEveryMessageInFlight_stepsBackOneStage_andLeavesARetiredSenderRetired() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40, 80)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        SenderPool pool = builder(Sender.builder("bot-new").warmUp(schedule).build(), Sender.of("bot-old"))
                .build();
        long[] allowances = {10, 20, 40};
        for (long allowance : allowances) {
            sendClean(pool, "bot-new", Math.min(allowance, SenderPool.MIN_STAGE_SENT));
            ticker.advance(Duration.ofMinutes(1));
            pool.sync();
            ticker.advance(Duration.ofMinutes(1));
        }
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(3);

        // The platform banned it with three messages in flight: each reports the block.
        pool.blocked("bot-new");
        pool.blocked("bot-new");
        pool.blocked("bot-new");

        assertThat(pool.warmUpStage("bot-new")).isEqualTo(2);
        assertThat(pool.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.WARM_UP_STEPPED_BACK)
                .hasSize(1);
        pool.setStatus("bot-old", SenderStatus.RETIRED);
        pool.blocked("bot-old");
        assertThat(pool.status("bot-old")).isEqualTo(SenderStatus.RETIRED);
    }

    @Test
    void blocked_reportedForEveryMessageInFlight_countsOneBlock_inTheStatsAndTheGroupComparison() {
        SenderPool pool = groupsAAndB();
        List<SendDecision.Granted> inFlight = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            inFlight.add((SendDecision.Granted) pool.acquire(fresh().pinnedTo("a-1")));
            pool.acquire(fresh().pinnedTo("b-1"));
        }
        pool.recipientBlocked("b-1", "42");

        // The platform banned a-1 with ten messages in flight: each reports the block.
        for (SendDecision.Granted g : inFlight) {
            g.blocked();
        }

        SenderStats a = pool.stats().sender("a-1");
        assertThat(a.blocks()).isEqualTo(1);
        assertThat(a.blockRate()).isEqualTo(0.1);
        assertThat(a.blocksByHour().total()).isEqualTo(1);
        assertThat(pool.stats().group("a").blocks()).isEqualTo(1);
        GroupComparison c = pool.compare("a", "b", GroupComparison.Metric.BLOCK_RATE);
        assertThat(c.eventsA()).isEqualTo(c.eventsB()).isEqualTo(1);
        assertThat(c.z()).isZero();
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.SENDER_BLOCKED)
                .hasSize(1);
        // A block after the sender was set active again is another block.
        pool.setStatus("a-1", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));
        ((SendDecision.Granted) pool.acquire(fresh().pinnedTo("a-1"))).blocked();
        assertThat(pool.stats().sender("a-1").blocks()).isEqualTo(2);
    }

    @Test
    void blocked_thenSetActive_takesItsShareOfLightTrafficAgain() {
        SenderPool pool = pool("bot-a", "bot-b");
        sendLightly(pool, 20);
        pool.blocked("bot-a");
        ticker.advance(Duration.ofMinutes(5));

        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofMillis(1001));

        // A message a second leaves bot-b free every time: only the scores decide, so a block that still weighed on
        // bot-a's score would keep it idle, and without feedback its score would never recover.
        Map<String, Integer> grants = sendLightly(pool, 100);
        assertThat(grants.getOrDefault("bot-a", 0)).isBetween(35, 65);
    }

    /** Routes {@code n} fresh messages a second apart, each delivered after 20 ms; answers the grants per sender. */
    private Map<String, Integer> sendLightly(SenderPool pool, int n) {
        Map<String, Integer> grants = new HashMap<>();
        for (int i = 0; i < n; i++) {
            SendDecision.Granted g = (SendDecision.Granted) pool.acquire(fresh());
            g.delivered(Duration.ofMillis(20));
            grants.merge(g.sender(), 1, Integer::sum);
            ticker.advance(Duration.ofSeconds(1));
        }
        return grants;
    }

    @Test
    void aSenderHurtByABurst_isAvoidedAtFirst_thenTakesItsShareOfLightTrafficAgain() {
        SenderPool pool = pool("bot-a", "bot-b");
        sendLightly(pool, 20);
        // A burst of trouble on bot-a, reported on permits it was granted: three timeouts and a 429.
        for (int i = 0; i < 3; i++) {
            ((SendDecision.Granted) pool.acquire(fresh().pinnedTo("bot-a"))).failed("timeout");
        }
        ((SendDecision.Granted) pool.acquire(fresh().pinnedTo("bot-a"))).retryAfter(Duration.ofSeconds(1));
        ticker.advance(Duration.ofSeconds(2));

        // Right after it, the reports count: bot-b is free for every message of a light traffic and wins them all.
        assertThat(sendLightly(pool, 60).getOrDefault("bot-a", 0)).isZero();
        // Then bot-a gets no message, hence no report, yet the trouble is long over: its marks fade with time alone.
        sendLightly(pool, 600);
        Map<String, Integer> grants = sendLightly(pool, 100);
        assertThat(grants.getOrDefault("bot-a", 0)).isBetween(35, 65);
        // Tried again in the last seconds of the fade, once what was left of its marks weighed less than the mark of
        // bot-b's latency, which bot-a's own had faded below: the risk left from then is next to nothing.
        assertThat(pool.stats().sender("bot-a").risk()).isLessThan(1e-4);
    }

    @Test
    void stats_marksOfReportsFadeLinearlyOverTenMinutes_butPacingIsEarnedBySending() {
        SenderPool pool = pool("bot-a");
        pool.failed("bot-a", "timeout");
        pool.retryAfter("bot-a", Duration.ZERO);
        SenderStats hurt = pool.stats().sender("bot-a");

        ticker.advance(Duration.ofMinutes(5));

        // Half the marks are left: half the lost success, half the exponent of the risk.
        SenderStats half = pool.stats().sender("bot-a");
        assertThat(half.success()).isCloseTo(1 - (1 - hurt.success()) / 2, org.assertj.core.data.Offset.offset(1e-12));
        assertThat(half.risk()).isCloseTo(1 - Math.sqrt(1 - hurt.risk()), org.assertj.core.data.Offset.offset(1e-12));
        assertThat(half.pacing()).isEqualTo(hurt.pacing()).isLessThan(1.0);
        // A report starts the fade anew: ten minutes after the first report, the marks of the second are still there.
        pool.failed("bot-a", "timeout");
        ticker.advance(Duration.ofMinutes(5));
        assertThat(pool.stats().sender("bot-a").success()).isLessThan(1.0);
        assertThat(pool.stats().sender("bot-a").risk()).isPositive();
        ticker.advance(Duration.ofMinutes(5));
        SenderStats faded = pool.stats().sender("bot-a");
        assertThat(faded.success()).isEqualTo(1.0);
        assertThat(faded.risk()).isZero();
        assertThat(faded.pacing()).isEqualTo(hurt.pacing());
    }

    @Test
    void blocked_riskStaysOne_untilSetActive_howeverLongItIsHeld() {
        SenderPool pool = pool("bot-a", "bot-b");
        pool.blocked("bot-a");

        ticker.advance(Duration.ofHours(5));

        assertThat(pool.stats().sender("bot-a").risk()).isEqualTo(1.0);
    }

    @Test
    void blocked_riskStaysOne_whenTheMessagesItHadInFlightReportAfterTheBlock() {
        SenderPool pool = pool("bot-a", "bot-b");
        List<SendDecision.Granted> inFlight = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            inFlight.add((SendDecision.Granted) pool.acquire(fresh().pinnedTo("bot-a")));
        }
        inFlight.get(0).blocked();

        // The other messages it had in flight come back after the block: one delivered, one failed, one recipient
        // block. None is the sender set active again.
        ticker.advance(Duration.ofSeconds(1));
        inFlight.get(1).delivered(Duration.ofMillis(20));
        inFlight.get(2).failed("timeout");
        inFlight.get(3).recipientBlocked();

        assertThat(pool.stats().sender("bot-a").risk()).isEqualTo(1.0);
        ticker.advance(Duration.ofHours(1));
        assertThat(pool.stats().sender("bot-a").risk()).isEqualTo(1.0);
        assertThat(pool.stats().group("default").risk()).isEqualTo(1.0);
    }

    @Test
    void warmUp_stageAdvance_endsTheWaitLearntFromTheUsedUpAllowance() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 100).withStageLength(Duration.ofMinutes(1));
        SenderPool pool =
                builder(Sender.builder("bot-new").warmUp(schedule).build()).build();
        sendClean(pool, "bot-new", 10);
        assertThat(pool.acquire(fresh())).isInstanceOf(SendDecision.Delayed.class);

        ticker.advance(Duration.ofMinutes(1));
        pool.sync();

        assertThat(pool.allowance("bot-new")).isEqualTo(100);
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-new");
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-new")))).isEqualTo("bot-new");
    }

    // ------------------------------------------------------------------------------------------------ bulk

    @Test
    void groupChanges_applyToEverySenderOfTheGroup() {
        SenderPool pool = builder(
                        Sender.builder("a-1").group("a").build(),
                        Sender.builder("a-2").group("a").build(),
                        Sender.builder("b-1").group("b").build())
                .build();

        assertThat(pool.setGroupStatus("b", SenderStatus.RETIRED)).isEqualTo(1);
        assertThat(pool.setGroupLimits("a", 3, 0)).isEqualTo(2);

        Map<String, Integer> grants = drain(pool);
        assertThat(grants)
                .containsOnlyKeys("a-1", "a-2")
                .containsEntry("a-1", 3)
                .containsEntry("a-2", 3);
        assertThat(pool.status("b-1")).isEqualTo(SenderStatus.RETIRED);
        assertThat(pool.setGroupStatus("a", SenderStatus.RETIRED)).isEqualTo(2);
        assertThat(pool.acquire(fresh()))
                .isEqualTo(new SendDecision.Rejected(
                        SendDecision.Reason.NO_ELIGIBLE_SENDER,
                        "every sender of pool 'default' is blocked or retired"));
    }

    @Test
    void setStatusActive_onActiveSenders_changesNothing_andEmitsNothing() {
        SenderPool pool = builder(
                        Sender.builder("bot-a").group("g").build(),
                        Sender.builder("bot-b").group("g").build())
                .build();
        StateKey record = new StateKey("route/default/sender", "bot-a");
        Optional<VersionedRecord> before = storage.getRecord(record);
        events.clear();

        assertThat(pool.setGroupStatus("g", SenderStatus.ACTIVE)).isEqualTo(2);
        pool.setStatus("bot-a", SenderStatus.ACTIVE);

        assertThat(storage.getRecord(record)).as("the record is not rewritten").isEqualTo(before);
        assertThat(events).isEmpty();
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-b")))).isEqualTo("bot-b");
    }

    @Test
    void setStatusActive_onAnEjectedActiveSender_keepsItsEjectionAndItsFailuresInARow() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c", "bot-d");
        for (int i = 0; i < 5; i++) {
            pool.failed("bot-a", "timeout");
        }
        for (int i = 0; i < 4; i++) {
            pool.failed("bot-b", "timeout");
        }

        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        pool.setStatus("bot-b", SenderStatus.ACTIVE);
        pool.failed("bot-b", "timeout");

        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.SENDER_EJECTED)
                .extracting(PoolEvent::sender)
                .containsExactly("bot-a", "bot-b");
        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).isIn("bot-c", "bot-d");
        }
    }

    @Test
    void setStatus_toTheStatusASenderHasAlready_rewritesNoRecordAndEmitsNothing() {
        SenderPool pool = pool("bot-a", "bot-b");
        StateKey record = new StateKey("route/default/sender", "bot-a");
        pool.setStatus("bot-a", SenderStatus.BLOCKED);
        Optional<VersionedRecord> blocked = storage.getRecord(record);
        events.clear();

        pool.setStatus("bot-a", SenderStatus.BLOCKED);

        assertThat(storage.getRecord(record)).isEqualTo(blocked);
        assertThat(events).isEmpty();
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);

        pool.setStatus("bot-a", SenderStatus.RETIRED);

        assertThat(storage.getRecord(record)).isNotEqualTo(blocked);
        assertThat(events).extracting(PoolEvent::detail).containsExactly("status RETIRED");
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.RETIRED);
    }

    @Test
    void setStatusActive_onASenderHeldInTheStorageOnly_releasesIt() {
        SenderPool pool = pool("bot-a");
        // Another pool's block got the sender held but failed to write its record, which still says active.
        storage.addMember(new StateKey("route/default/held", "bot-a"), Long.MAX_VALUE, ticker.epochMicros());

        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
    }

    // ------------------------------------------------------------------------------------------------ sharing

    @Test
    void twoPoolsOverOneStorage_shareTheSendersQuotaAndGate() {
        SenderPool one = builder(Sender.builder("bot-a").perSecond(6).build()).build();
        SenderPool two = builder(Sender.builder("bot-a").perSecond(6).build()).build();
        int granted = 0;
        for (int i = 0; i < 20; i++) {
            granted += (i % 2 == 0 ? one : two).acquire(fresh()).granted() ? 1 : 0;
        }
        assertThat(granted).isEqualTo(6);

        ticker.advance(Duration.ofSeconds(2));
        one.retryAfter("bot-a", Duration.ofSeconds(5));

        SendDecision d = two.acquire(fresh());
        assertThat(((SendDecision.Delayed) d).retryAfter()).isEqualTo(Duration.ofSeconds(5));
        ticker.advance(Duration.ofSeconds(5));
        assertThat(two.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void twoPoolsOverOneStorage_aBlockInOneStopsTheOther() {
        SenderPool one = pool("bot-a", "bot-b");
        SenderPool two = builder(Sender.of("bot-a"), Sender.of("bot-b"))
                .random(new Random(3))
                .build();

        one.blocked("bot-a");

        for (int i = 0; i < 30; i++) {
            assertThat(granted(two.acquire(fresh()))).isEqualTo("bot-b");
        }
        assertThat(two.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
    }

    @Test
    void aBlockSeenHere_thenActiveAgainInAnotherPool_letsTheSenderWarmUpHereAgain() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        SenderPool here = builder(
                        Sender.of("bot-old"),
                        Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        SenderPool there = builder(
                        Sender.of("bot-old"),
                        Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        sendClean(here, "bot-new", 10);
        ticker.advance(Duration.ofMinutes(1));
        here.sync();
        ticker.advance(Duration.ofMinutes(1)); // the warm-up window forgets stage 0's sends
        here.blocked("bot-new");
        assertThat(here.warmUpStage("bot-new")).isZero();

        there.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        // Stage 0 again: 10 a minute, and it ends after a minute of sending them well through this pool.
        Map<String, Integer> grants = sendLightly(here, 90);
        assertThat(grants.getOrDefault("bot-new", 0)).isBetween(10, 45);
        assertThat(here.warmUpStage("bot-new")).isEqualTo(1);
    }

    /**
     * A pool over {@code over} that read bot-new at warm-up stage 1 (50 per minute) and has not synced since another
     * pool blocked it, which stepped it back to stage 0 (5 per minute), and set it active again; the re-entry gate is
     * over, and a sync is due.
     */
    private SenderPool steppedBackElsewhere(Storage over) {
        WarmUpSchedule schedule =
                WarmUpSchedule.table(5, 50).withWindow(Duration.ofMinutes(1)).withStageLength(Duration.ofMinutes(1));
        SenderPool one = builder(
                        Sender.of("bot-x"),
                        Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        SenderPool two = poolOver(
                over,
                Sender.of("bot-x"),
                Sender.builder("bot-new").warmUp(schedule).build());
        sendClean(two, "bot-new", 5);
        ticker.advance(Duration.ofMinutes(2)); // the stage is over and its window has forgotten the sends
        two.sync();
        assertThat(two.allowance("bot-new")).isEqualTo(50);
        one.blocked("bot-new");
        one.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));
        return two;
    }

    @Test
    void aStepBackInAnotherPool_holdsForThreadsThatRouteWhileThisPoolSyncs() {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool two = steppedBackElsewhere(hooked);

        // The sync reads bot-x's record first; other threads route meanwhile, before it reads bot-new's.
        int[] granted = new int[1];
        hooked.beforeNextGetRecord = () -> {
            for (int i = 0; i < 20; i++) {
                granted[0] += two.acquire(fresh().pinnedTo("bot-new")).granted() ? 1 : 0;
            }
        };
        assertThat(granted(two.acquire(fresh().pinnedTo("bot-x")))).isEqualTo("bot-x");

        assertThat(granted[0]).as("grants on the stepped-back allowance").isEqualTo(5);
        assertThat(two.allowance("bot-new")).isEqualTo(5);
    }

    @Test
    void aStepBackInAnotherPool_holdsWhenThisPoolsSyncFailed() {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool two = steppedBackElsewhere(hooked);

        // The sync reads bot-x's record, then fails at bot-new's; the next sync is an interval away.
        hooked.beforeNextGetRecord = () -> hooked.beforeNextGetRecord = () -> {
            throw new GuardStorageException("test", "getRecord", "down", null);
        };
        int granted = 0;
        for (int i = 0; i < 20; i++) {
            granted += two.acquire(fresh().pinnedTo("bot-new")).granted() ? 1 : 0;
        }

        assertThat(granted).as("grants on the stepped-back allowance").isEqualTo(5);
        assertThat(two.allowance("bot-new")).isEqualTo(5);
    }

    /**
     * A pool over {@code over} of bot-new, warming up on 10, 20 and 40 a minute in stages of a minute, and bot-old;
     * bot-new has sent the 10 of stage 0 cleanly, and the stage is over: the next sync ends it.
     */
    private SenderPool warmingAtTheEndOfStage0(Storage over) {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        SenderPool pool =
                poolOver(over, Sender.builder("bot-new").warmUp(schedule).build(), Sender.of("bot-old"));
        sendClean(pool, "bot-new", 10);
        ticker.advance(Duration.ofMinutes(1));
        return pool;
    }

    @Test
    void aBlockReportedWhileASyncReadsTheRecord_isNotUndoneByTheRecordItRead() {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = warmingAtTheEndOfStage0(hooked);
        pool.sync();
        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);

        // The sync has read bot-new's record (active, stage 1) when another thread reports the platform's block,
        // which records it blocked at stage 0; then the sync installs what it read.
        hooked.afterNextGetRecord = () -> pool.blocked("bot-new");
        pool.sync();

        assertThat(pool.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(pool.stats().sender("bot-new").risk()).isEqualTo(1.0);
        // Set active again, it starts afresh; a record the pool reads later is installed as before.
        pool.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));
        pool.sync();
        assertThat(pool.status("bot-new")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(pool.stats().sender("bot-new").risk()).isZero();
    }

    // ------------------------------------------------------------------------------------------------ races

    /**
     * Another thread's call that a hook starts while this thread is inside the storage: {@link #start} returns once
     * that call has ended or waits for this thread (a lock it holds), {@link #end} once it has ended, with its failure.
     */
    private record Meanwhile(FutureTask<Void> call) {
        static Meanwhile start(Runnable operation) {
            FutureTask<Void> call = new FutureTask<>(operation, null);
            Thread thread = new Thread(call, "meanwhile");
            thread.start();
            for (Thread.State s = thread.getState();
                    s == Thread.State.NEW || s == Thread.State.RUNNABLE;
                    s = thread.getState()) {
                Thread.onSpinWait();
            }
            return new Meanwhile(call);
        }

        void end() throws Exception {
            call.get(10, TimeUnit.SECONDS);
        }
    }

    /** Waits for {@code latch}, opened by the test's thread once it has done what this thread waits for. */
    private static void await(CountDownLatch latch) {
        try {
            assertThat(latch.await(10, TimeUnit.SECONDS))
                    .as("the test thread went on")
                    .isTrue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The events of {@code sender} as type and detail, in the order the listener got them. */
    private List<String> eventsOf(String sender) {
        return eventsOf(events, sender);
    }

    /** The events of {@code sender} among {@code events}, as type and detail, in their order. */
    static List<String> eventsOf(List<PoolEvent> events, String sender) {
        List<String> of = new ArrayList<>();
        for (PoolEvent e : events) {
            if (e.sender().equals(sender)) {
                of.add(e.type() + ": " + e.detail());
            }
        }
        return of;
    }

    @Test
    void setActiveWhileABlockIsBeingRecorded_takesEffectAfterTheBlock() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = twoSenders(hooked);
        Meanwhile[] activation = new Meanwhile[1];
        // The block has read the record (active) and is about to write it when an operator sets the sender active.
        hooked.beforeNextPutRecord =
                () -> activation[0] = Meanwhile.start(() -> pool.setStatus("bot-a", SenderStatus.ACTIVE));

        pool.blocked("bot-a");
        activation[0].end();

        // As if the block came first: active again, the block counted once, the events in that order.
        assertThat(eventsOf("bot-a"))
                .containsExactly("SENDER_BLOCKED: blocked by the platform", "STATUS_CHANGED: status ACTIVE");
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(pool.stats().sender("bot-a").blocks()).isEqualTo(1);
        assertThat(pool.stats().sender("bot-a").risk()).isZero();
        assertThat(storage.isMember(new StateKey("route/default/held", "bot-a"), ticker.epochMicros()))
                .isFalse();
        ticker.advance(Duration.ofSeconds(2));
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo("bot-a");
    }

    @Test
    void aBlockWhileSetActiveIsBeingRecorded_takesEffectAfterTheActivation() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = twoSenders(hooked);
        pool.blocked("bot-a");
        events.clear();
        Meanwhile[] block = new Meanwhile[1];
        // The activation has written the record (active) when the platform's block of a message sent since comes.
        hooked.afterNextPutRecord = () -> block[0] = Meanwhile.start(() -> pool.blocked("bot-a"));

        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        block[0].end();

        // As if the activation came first: blocked again, held in every pool, a second block counted.
        assertThat(eventsOf("bot-a"))
                .containsExactly("STATUS_CHANGED: status ACTIVE", "SENDER_BLOCKED: blocked by the platform");
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(pool.stats().sender("bot-a").blocks()).isEqualTo(2);
        assertThat(pool.stats().sender("bot-a").risk()).isEqualTo(1.0);
        assertThat(storage.isMember(new StateKey("route/default/held", "bot-a"), ticker.epochMicros()))
                .isTrue();
        ticker.advance(Duration.ofSeconds(2));
        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-b");
        }
    }

    @Test
    void aBlockWhileTheEndOfAWarmUpStageIsRecorded_stepsBackAfterTheAdvance() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = warmingAtTheEndOfStage0(hooked);
        Meanwhile[] block = new Meanwhile[1];
        // The sync has written the end of stage 0 (stage 1 now) when the platform's block comes.
        hooked.afterNextPutRecord = () -> block[0] = Meanwhile.start(() -> pool.blocked("bot-new"));

        pool.sync();
        block[0].end();

        assertThat(pool.warmUpStage("bot-new")).isZero();
        assertThat(pool.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(eventsOf("bot-new"))
                .containsExactly(
                        "WARM_UP_ADVANCED: stage 0 -> 1, failure rate 0.0000, block rate 0.0000, pushback rate 0.0000"
                                + " over 10 sent",
                        "SENDER_BLOCKED: blocked by the platform",
                        "WARM_UP_STEPPED_BACK: stage 1 -> 0");
    }

    /** A pool of four senders over {@code over} where bot-a is blocked with four failures in flight reported. */
    private SenderPool blockedWithFailuresInFlight(Storage over) {
        SenderPool pool =
                poolOver(over, Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"), Sender.of("bot-d"));
        pool.blocked("bot-a");
        for (int i = 0; i < 4; i++) {
            pool.failed("bot-a", "timeout");
        }
        return pool;
    }

    @Test
    void failuresReportedWhileSetActiveIsUnderWay_countBeforeIt_andEjectNothing() {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = blockedWithFailuresInFlight(hooked);
        events.clear();
        // The activation has written the record and raises the re-entry gate when more messages in flight fail.
        hooked.beforeNextRaiseGate = () -> {
            for (int i = 0; i < 5; i++) {
                pool.failed("bot-a", "timeout");
            }
        };

        pool.setStatus("bot-a", SenderStatus.ACTIVE);

        assertThat(eventsOf("bot-a")).containsExactly("STATUS_CHANGED: status ACTIVE");
        assertFiveFailuresEjectBotAForTheFirstTime(pool);
    }

    @Test
    void failuresReportedWhileSetActiveIsUnderWay_doNotCountInTheWarmUpStageItBegins() {
        WarmUpSchedule schedule = WarmUpSchedule.table(100, 200).withStageLength(Duration.ofMinutes(1));
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool =
                poolOver(hooked, Sender.builder("bot-new").warmUp(schedule).build(), Sender.of("bot-old"));
        pool.blocked("bot-new");
        // The activation has written the record (a new stage begins) and raises the re-entry gate when messages it
        // had in flight fail: before the activation, so not in the new stage either.
        hooked.beforeNextRaiseGate = () -> {
            for (int i = 0; i < 5; i++) {
                pool.failed("bot-new", "timeout");
            }
        };
        pool.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        sendClean(pool, "bot-new", SenderPool.MIN_STAGE_SENT);
        ticker.advance(Duration.ofMinutes(1));
        pool.sync();

        assertThat(pool.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(eventsOf("bot-new"))
                .last()
                .isEqualTo(
                        "WARM_UP_ADVANCED: stage 0 -> 1, failure rate 0.0000, block rate 0.0000, pushback rate 0.0000"
                                + " over 20 sent");
    }

    @Test
    void aFailureCountedBeforeSetActive_isNoReasonToEjectTheSenderAfterIt() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = blockedWithFailuresInFlight(hooked);
        events.clear();

        whileAFifthFailureOfBotAWaitsToEjectIt(hooked, pool, () -> pool.setStatus("bot-a", SenderStatus.ACTIVE));

        assertThat(eventsOf("bot-a")).containsExactly("STATUS_CHANGED: status ACTIVE");
        assertFiveFailuresEjectBotAForTheFirstTime(pool);
    }

    @Test
    void aDeliveryAfterTheFailureThatEjectsTheSender_leavesItEjected() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool =
                poolOver(hooked, Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"), Sender.of("bot-d"));
        for (int i = 0; i < 4; i++) {
            pool.failed("bot-a", "timeout");
        }

        whileAFifthFailureOfBotAWaitsToEjectIt(hooked, pool, () -> pool.delivered("bot-a", Duration.ofMillis(20)));

        // As if the failure came first: ejected, and the delivery after it.
        assertThat(eventsOf("bot-a"))
                .containsExactly("SENDER_EJECTED: failing in a row (timeout) until "
                        + ticker.now().plusSeconds(30));
    }

    /**
     * Reports a fifth failure of bot-a in another thread and runs {@code meanwhile} once it is counted and waits to
     * eject the sender: adding a sender holds the pool's lock, which an ejection takes, and the hook of that add's
     * read of the new sender's record does both.
     */
    private static void whileAFifthFailureOfBotAWaitsToEjectIt(
            FailingStorage hooked, SenderPool pool, Runnable meanwhile) throws Exception {
        Meanwhile[] failure = new Meanwhile[1];
        hooked.beforeNextGetRecord = () -> {
            failure[0] = Meanwhile.start(() -> pool.failed("bot-a", "timeout"));
            meanwhile.run();
        };
        pool.add(Sender.of("bot-e"));
        failure[0].end();
    }

    @Test
    void setActiveWhileAnAttemptFindsTheSenderHeld_leavesItActive() {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool here = twoSenders(hooked);
        here.sync();
        SenderPool there = twoSenders(storage);
        there.blocked("bot-a");
        // This pool has not read the block yet: its attempt finds bot-a held, and an operator sets it active as the
        // storage answers.
        hooked.afterNextEvaluate = () -> here.setStatus("bot-a", SenderStatus.ACTIVE);

        here.acquire(fresh().pinnedTo("bot-a"));

        assertThat(here.status("bot-a")).isEqualTo(SenderStatus.ACTIVE);
        assertThat(here.acquire(fresh().pinnedTo("bot-a")))
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusMillis(1000).plusNanos(1000),
                        Duration.ofMillis(1000).plusNanos(1000),
                        SendDecision.Reason.SENDERS_BUSY));
    }

    @Test
    void aBlockAfterAnotherPoolSetTheSenderActive_countsAsANewBlock_beforeThisPoolSyncs() {
        SenderPool here = pool("bot-a", "bot-b");
        SenderPool there = pool("bot-a", "bot-b");
        here.blocked("bot-a");
        there.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        // A message sent through another pool since got the sender blocked again; this pool hears of it first.
        here.blocked("bot-a");

        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.SENDER_BLOCKED)
                .hasSize(2);
        assertThat(here.stats().sender("bot-a").blocks()).isEqualTo(2);
    }

    @Test
    void aBlockReportedWhileASyncAsksWhetherTheStorageStillHoldsTheSender_isNotUndoneByTheAnswer() throws Exception {
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool pool = twoSenders(hooked);
        StateKey held = new StateKey("route/default/held", "bot-a");
        // Another pool's block got the sender held but failed to write its record, which still says active: an
        // attempt here finds it held. That pool then sets it active again, which ends the hold in the storage.
        storage.addMember(held, Long.MAX_VALUE, ticker.epochMicros());
        assertThat(pool.acquire(fresh().pinnedTo("bot-a")).granted()).isFalse();
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
        storage.removeMember(held);
        // The sync asks the storage whether it still holds the sender when the platform's block of a message sent
        // here is reported in another thread, which writes the hold once the sync is done.
        CountDownLatch synced = new CountDownLatch(1);
        Meanwhile[] block = new Meanwhile[1];
        hooked.beforeNextAddMember = () -> await(synced);
        hooked.beforeNextIsMember = () -> block[0] = Meanwhile.start(() -> pool.blocked("bot-a"));

        pool.sync();
        synced.countDown();
        block[0].end();

        // The block stands: risk one, and the reports of the other messages in flight are the same block.
        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(pool.stats().sender("bot-a").risk()).isEqualTo(1.0);
        pool.blocked("bot-a");
        assertThat(pool.stats().sender("bot-a").blocks()).isEqualTo(1);
        assertThat(eventsOf("bot-a")).containsExactly("SENDER_BLOCKED: blocked by the platform");
    }

    @Test
    void aBlockBeingWritten_isNotEndedByARecordThatAnotherPoolWroteMeanwhile() throws Exception {
        // Two pools of one name over one storage. While this pool writes the platform's block of a warming sender, the
        // other ends its warm-up stage (a record, active, whose stage began after the block's hold), and a routing
        // thread of this pool syncs that record: no activation, so the block's hold on its marks stands.
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20, 40)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(1));
        FailingStorage hooked = new FailingStorage(storage);
        SenderPool here =
                poolOver(hooked, Sender.builder("bot-new").warmUp(schedule).build());
        SenderPool there = SenderPool.builder(storage)
                .ticker(ticker)
                .sender(Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        sendClean(there, 10); // enough for the other pool to judge stage 0
        ticker.advance(Duration.ofMinutes(1)); // stage 0 is over
        here.sync();
        events.clear();
        Meanwhile[] routing = new Meanwhile[1];
        hooked.beforeNextAddMember = () -> {
            ticker.advanceMicros(1);
            there.sync(); // the other pool ends stage 0
            routing[0] = Meanwhile.start(here::sync);
        };

        here.blocked("bot-new");
        routing[0].end();

        assertThat(there.warmUpStage("bot-new"))
                .as("the other pool's stage advance")
                .isEqualTo(1);
        assertThat(here.status("bot-new")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(here.stats().sender("bot-new").risk())
                .as("risk after the block")
                .isEqualTo(1.0);
        here.blocked("bot-new"); // another message that was in flight: the same block
        assertThat(here.stats().sender("bot-new").blocks()).isEqualTo(1);
        assertThat(eventsOf("bot-new"))
                .filteredOn(e -> e.startsWith("SENDER_BLOCKED"))
                .hasSize(1);
    }

    @Test
    void sync_aSenderRecordThatCannotBeRead_isReported_andTheOtherSendersAreStillRead() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"));
        SenderPool other = pool("bot-a", "bot-b", "bot-c");
        other.setStatus("bot-b", SenderStatus.RETIRED);
        other.setStatus("bot-c", SenderStatus.BLOCKED);
        failing.unreadableRecord = new StateKey("route/default/sender", "bot-a");

        assertThatThrownBy(pool::sync)
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("route sync failed: pool 'default' could not read sender 'bot-a' (1 of 3 senders): "
                        + "test getRecord failed: cannot read bot-a");

        assertThat(pool.status("bot-b")).isEqualTo(SenderStatus.RETIRED);
        assertThat(pool.status("bot-c")).isEqualTo(SenderStatus.BLOCKED);
    }

    @Test
    void periodicSync_goesOnPastASenderRecordThatCannotBeDecoded() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c");
        SenderPool other = pool("bot-a", "bot-b", "bot-c");
        damageRecord("bot-a");
        other.setStatus("bot-c", SenderStatus.RETIRED);
        ticker.advance(Duration.ofSeconds(2));

        // The sync of this acquire, the pool's own, fails at bot-a's record; bot-b's message needs no other read.
        assertThat(granted(pool.acquire(fresh().pinnedTo("bot-b")))).isEqualTo("bot-b");

        assertThat(pool.status("bot-c")).isEqualTo(SenderStatus.RETIRED);
    }

    @Test
    void routing_passesOverASenderWhoseRecordCannotBeDecoded_toTheOthers() {
        // A record no sync could read for an interval is read before its sender's attempt; one that does not decode
        // (another version's format, a damaged write) keeps that sender out, not the message out of the pool.
        SenderPool pool = pool("bot-a", "bot-b");
        damageRecord("bot-a");
        ticker.advance(Duration.ofSeconds(2));

        for (int i = 0; i < 20; i++) {
            assertThat(granted(pool.acquire(fresh()))).as("message %d", i).isEqualTo("bot-b");
            ticker.advance(Duration.ofMillis(100));
        }
        // Pinned to it, once the interval it is passed over for has ended, a message has nowhere else to go: the
        // storage's failure says why.
        ticker.advance(Duration.ofSeconds(2));
        SendDecision pinned = pool.acquire(fresh().pinnedTo("bot-a"));
        assertThat(pinned).isInstanceOf(SendDecision.Rejected.class);
        assertThat(((SendDecision.Rejected) pinned).reason()).isEqualTo(SendDecision.Reason.STORAGE_UNAVAILABLE);
    }

    @Test
    void aSenderPassedOverForItsRecord_isNotBusy_theStorageFailureStaysTheAnswer() {
        // bot-a's record does not decode, and bot-a is the pool's only sender: no attempt gets further than the read.
        SenderPool pool = pool("bot-a");
        StateKey record = new StateKey("route/default/sender", "bot-a");
        byte[] good = storage.getRecord(record).orElseThrow().value();
        damageRecord("bot-a");
        ticker.advance(Duration.ofSeconds(2));

        assertThat(reason(pool.acquire(fresh()))).isEqualTo(SendDecision.Reason.STORAGE_UNAVAILABLE);
        // Within the interval it is passed over for, the storage's failure is still why nothing can be sent: not a
        // sender busy for a second, and no pool exhausted.
        ticker.advance(Duration.ofMillis(100));
        assertThat(reason(pool.acquire(fresh()))).isEqualTo(SendDecision.Reason.STORAGE_UNAVAILABLE);
        assertThat(reason(pool.acquire(fresh().pinnedTo("bot-a")))).isEqualTo(SendDecision.Reason.STORAGE_UNAVAILABLE);
        assertThat(events).noneMatch(e -> e.type() == PoolEvent.Type.POOL_EXHAUSTED);

        // Once a read of its record succeeds, the sender takes messages again at once.
        storage.putRecord(record, good, storage.getRecord(record).orElseThrow().version());
        pool.sync();
        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-a");
    }

    /** Overwrites the record of sender {@code id} with bytes that do not decode (another version's, a damaged write). */
    private void damageRecord(String id) {
        StateKey record = new StateKey("route/default/sender", id);
        storage.putRecord(
                record,
                "not a record".getBytes(java.nio.charset.StandardCharsets.UTF_8),
                storage.getRecord(record).orElseThrow().version());
    }

    @Test
    void aSenderPassedOverForItsRecord_besideOneThatIsOnlyCooling_givesAWait_notTheStorageFailure() {
        SenderPool pool = pool("bot-a", "bot-b");
        damageRecord("bot-a");
        pool.retryAfter("bot-b", Duration.ofSeconds(10));
        ticker.advance(Duration.ofSeconds(2));

        // bot-b takes messages again once its retry_after ends, and bot-a's record is read again in a second: a
        // wait until the earlier, not "no sender without a change".
        assertThat(pool.acquire(fresh()))
                .isEqualTo(new SendDecision.Delayed(
                        ticker.now().plusSeconds(1), Duration.ofSeconds(1), SendDecision.Reason.SENDERS_BUSY));
    }

    @Test
    void sendersPassedOverForTheirRecords_areNoAttempts_andDoNotHideAFreeOne() {
        // A storage shard that holds three senders' records is down; the draws pick bot-a, bot-b and bot-c first
        // (equal scores: no reports yet). The attempts, three by default, must not run out on them.
        Random firstFirst = new Random() {
            @Override
            public int nextInt(int bound) {
                return 0;
            }
        };
        SenderPool pool = builder(Sender.of("bot-a"), Sender.of("bot-b"), Sender.of("bot-c"), Sender.of("bot-d"))
                .random(firstFirst)
                .build();
        for (String id : List.of("bot-a", "bot-b", "bot-c")) {
            damageRecord(id);
        }
        ticker.advance(Duration.ofSeconds(2));

        assertThat(granted(pool.acquire(fresh()))).isEqualTo("bot-d");
    }

    @Test
    void aRetryAfterTheStorageFailedToRecord_makesTheSenderCoolingHere() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.of("bot-a"));
        failing.failingGates = true;

        assertThatThrownBy(() -> pool.retryAfter("bot-a", Duration.ofSeconds(30)))
                .isInstanceOf(GuardStorageException.class);
        failing.failingGates = false;

        assertThat(pool.acquire(fresh()).granted()).as("the gate holds here").isFalse();
        assertThat(pool.status("bot-a")).as("and the status says so").isEqualTo(SenderStatus.COOLING);
        assertThat(events).extracting(PoolEvent::type).contains(PoolEvent.Type.COOLING_STARTED);
    }

    @Test
    void aRecordCreatedElsewhereAndGoneBeforeItIsRead_isAStorageFailure_neverAnEscapedException() {
        FailingStorage failing = new FailingStorage(storage);
        SenderPool pool = poolOver(failing, Sender.of("bot-a"));
        StateKey record = new StateKey("route/default/sender", "bot-a");
        storage.forget("bot-a");
        // The pool finds no record and creates one; another process created it just before (so the create answers
        // -1), and the record is forgotten again before the pool reads the other's.
        failing.beforeNextPutRecord = () -> storage.putRecord(record, new byte[] {1}, 0);
        failing.afterNextPutRecord = () -> storage.forget("bot-a");
        ticker.advance(Duration.ofSeconds(2));

        SendDecision d = pool.acquire(fresh());

        // The sync's read fails and is not thrown; the attempt reads again and creates the record.
        assertThat(d.granted()).as("answered, not thrown: %s", d).isTrue();
        assertThat(storage.getRecord(record)).as("the record exists again").isPresent();
    }

    private static SendDecision.Reason reason(SendDecision d) {
        assertThat(d).isInstanceOf(SendDecision.Rejected.class);
        return ((SendDecision.Rejected) d).reason();
    }

    @Test
    void aSenderRecordThatTheStorageForgot_isReadAgainFromScratch() {
        SenderPool pool = pool("bot-a", "bot-b");
        pool.setGroupLimits("default", 5, 0);
        pool.blocked("bot-a");
        pool.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));
        SenderPool other = pool("bot-a", "bot-b");

        // The storage forgets the record (its version starts again at 1), then another pool blocks the sender.
        storage.forget("bot-a");
        other.blocked("bot-a");
        pool.sync();

        assertThat(pool.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);
    }

    // ------------------------------------------------------------------------------------------------ stats

    @Test
    void stats_countPerSenderAndGroup_withHeatMapsAndExports() throws Exception {
        SenderPool pool = builder(
                        Sender.builder("a-1").group("a").build(),
                        Sender.builder("b,1").group("b").build())
                .build();
        for (int i = 0; i < 10; i++) {
            pool.acquire(fresh().pinnedTo("a-1"));
            pool.acquire(fresh().pinnedTo("b,1"));
        }
        pool.delivered("a-1", Duration.ofMillis(100));
        pool.failed("a-1", "timeout");
        pool.recipientBlocked("b,1", "42");
        pool.retryAfter("b,1", Duration.ofSeconds(1));

        PoolStats stats = pool.stats();

        SenderStats a = stats.sender("a-1");
        assertThat(a.sent()).isEqualTo(10);
        assertThat(a.delivered()).isEqualTo(1);
        assertThat(a.failed()).isEqualTo(1);
        assertThat(a.failureRate()).isEqualTo(0.1);
        // 2026-01-01T00:00Z is a Thursday.
        assertThat(a.sentByHour().count(DayOfWeek.THURSDAY, 0)).isEqualTo(10);
        assertThat(a.failuresByHour().count(DayOfWeek.THURSDAY, 0)).isEqualTo(1);
        SenderStats b = stats.sender("b,1");
        assertThat(b.blockRate()).isEqualTo(0.1);
        assertThat(b.pushbacks()).isEqualTo(1);
        assertThat(b.risk()).isPositive();
        assertThat(stats.group("b").recipientBlocks()).isEqualTo(1);

        String csv = stats.toCsv();
        assertThat(csv)
                .startsWith("sender,group,status,stage,allowance,sent,delivered,failed,pushbacks,recipient_blocks,"
                        + "blocks,failure_rate,block_rate,latency_ms,success,pacing,risk,brake\n");
        assertThat(csv).contains("\na-1,a,ACTIVE,-1,,10,1,1,0,0,0,0.100000,0.000000,");
        // The pool's brake, down to 0.9 by b,1's recipient block, in every row.
        assertThat(stats.brake()).isEqualTo(0.9);
        assertThat(csv.lines().skip(1)).hasSize(2).allMatch(row -> row.endsWith(",0.900000"));
        assertThat(csv).contains("\n\"b,1\",b,COOLING,");
        assertThat(stats.heatMapCsv().lines()).hasSize(1 + 2 * 3 * 7);

        JsonNode json = new ObjectMapper().readTree(stats.toJson());
        assertThat(json.get("pool").asText()).isEqualTo("default");
        assertThat(json.get("brake").asDouble()).isEqualTo(0.9);
        assertThat(json.get("senders").get(0).get("sent").asLong()).isEqualTo(10);
        assertThat(json.get("senders").get(1).get("sender").asText()).isEqualTo("b,1");
        assertThat(json.get("senders").get(0).get("sentByHour").get(3).get(0).asLong())
                .isEqualTo(10);
        assertThat(json.get("groups").get(1).get("blockRate").asDouble()).isEqualTo(0.1);
    }

    @Test
    void stats_nullArguments_areRejectedNamingTheParameter() {
        SenderPool pool = pool("bot-a");
        PoolStats stats = pool.stats();
        HeatMap map = stats.sender("bot-a").sentByHour();
        SenderStats a = stats.sender("bot-a");

        assertThatThrownBy(() -> map.count(null, 3))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("day must not be null");
        assertThatThrownBy(() -> map.day(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("day must not be null");
        assertThatThrownBy(() -> new PoolStats("p", stats.at(), 1.0, null, List.of()))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("senders must not be null");
        assertThatThrownBy(() -> new PoolStats("p", stats.at(), 1.0, List.of(), null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("groups must not be null");
        assertThatThrownBy(() -> new PoolStats(null, stats.at(), 1.0, List.of(), List.of()))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("pool must not be null");
        assertThatThrownBy(() -> new PoolStats("p", null, 1.0, List.of(), List.of()))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("at must not be null");
        assertThatThrownBy(() -> new PoolStats("p", stats.at(), 1.0, Arrays.asList(a, null), List.of()))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("senders must not hold null but held it at index 1");
        assertThatThrownBy(() -> new PoolStats("p", stats.at(), 0, List.of(), List.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("brake must be above 0 and at most 1 but was 0.0");
        assertThatThrownBy(() -> new PoolStats("p", stats.at(), Double.NaN, List.of(), List.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("brake must be above 0 and at most 1 but was NaN");
        assertThatThrownBy(() -> new SenderStats(
                        "bot-x",
                        "g",
                        SenderStatus.ACTIVE,
                        -1,
                        Long.MAX_VALUE,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        null,
                        1,
                        1,
                        0,
                        map,
                        map,
                        map))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("latency must not be null");
        assertThatThrownBy(() -> new GroupStats("g", 1, 0, 0, 0, 0, 0, 0, 0, map, null, 0, 0))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("blocksByHour must not be null");
        assertThatThrownBy(() -> new GroupStats("g", 1, 5, 0, 2, 0, 0, 0, 0, map, map, 4, 5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("failureTrials must be at least sent (5) and failed (2) but was 4");
        assertThatThrownBy(() -> new GroupStats("g", 1, 1, 0, 0, 0, 2, 1, 0, map, map, 1, 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("blockTrials must be at least sent (1) and the blocks (3) but was 2");
    }

    @Test
    void groupOperations_nullGroup_areRejectedNamingTheParameter() {
        SenderPool pool = pool("bot-a");

        assertThatThrownBy(() -> pool.setGroupStatus(null, SenderStatus.ACTIVE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("group must not be null");
        assertThatThrownBy(() -> pool.setGroupLimits(null, 1, 0)).hasMessage("group must not be null");
        assertThatThrownBy(() -> pool.addGroupTag(null, "links")).hasMessage("group must not be null");
        assertThatThrownBy(() -> pool.removeGroupTag(null, "links")).hasMessage("group must not be null");
    }

    @Test
    void compare_nullGroup_isRejectedNamingWhichParameter() {
        SenderPool pool = pool("bot-a");

        assertThatThrownBy(() -> pool.compare(null, "default", GroupComparison.Metric.BLOCK_RATE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("groupA must not be null");
        assertThatThrownBy(() -> pool.compare("default", null, GroupComparison.Metric.BLOCK_RATE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("groupB must not be null");
    }

    @Test
    void heatMaps_countInTheStatsZone() {
        SenderPool pool = builder(Sender.of("bot-a"))
                .statsZone(java.time.ZoneOffset.ofHours(-3))
                .build();

        pool.failed("bot-a", "timeout");

        // 2026-01-01T00:00Z is Wednesday 21:00 three hours west of UTC.
        assertThat(pool.stats().sender("bot-a").failuresByHour().count(DayOfWeek.WEDNESDAY, 21))
                .isEqualTo(1);
    }

    @Test
    void risk_risesWithPushbackAndFailures_beforeABlock() {
        SenderPool pool = pool("bot-a");
        double previous = pool.stats().sender("bot-a").risk();
        for (int i = 0; i < 5; i++) {
            pool.retryAfter("bot-a", Duration.ZERO);
            pool.failed("bot-a", "timeout");
            double risk = pool.stats().sender("bot-a").risk();
            assertThat(risk).isGreaterThan(previous);
            previous = risk;
        }
        assertThat(previous).isGreaterThan(0.5).isLessThan(1.0);
    }

    /** A pool of sender a-1 in group a and b-1 in group b. */
    private SenderPool groupsAAndB() {
        return builder(
                        Sender.builder("a-1").group("a").build(),
                        Sender.builder("b-1").group("b").build())
                .build();
    }

    @Test
    void compare_feedbackWithoutALocalGrant_countsAsTrials() {
        SenderPool pool = groupsAAndB();
        pool.acquire(fresh().pinnedTo("a-1"));
        for (int i = 0; i < 3; i++) {
            pool.failed("a-1", "timeout"); // two of them for sends another process granted
        }
        pool.blocked("b-1");

        GroupComparison failures = pool.compare("a", "b", GroupComparison.Metric.FAILURE_RATE);
        GroupComparison blocks = pool.compare("a", "b", GroupComparison.Metric.BLOCK_RATE);

        assertThat(failures.trialsA()).isEqualTo(3);
        assertThat(failures.rateA()).isEqualTo(1.0);
        assertThat(blocks.rateB()).isEqualTo(1.0);
    }

    @Test
    void stats_feedbackWithoutALocalGrant_ratesCountItAsSent_asCompareDoes() {
        SenderPool pool = groupsAAndB();
        pool.acquire(fresh().pinnedTo("a-1"));
        for (int i = 0; i < 3; i++) {
            pool.failed("a-1", "timeout"); // two of them for sends another process granted
        }
        pool.recipientBlocked("b-1", "42"); // b-1 granted nothing here: the send was another process's

        PoolStats stats = pool.stats();

        // Not 3.0 (three failures over one local grant) and not 0.0 (no local grant): every event is a send.
        assertThat(stats.sender("a-1").failureRate()).isEqualTo(1.0);
        assertThat(stats.group("a").failureRate()).isEqualTo(1.0);
        assertThat(stats.sender("b-1").blockRate()).isEqualTo(1.0);
        assertThat(stats.group("b").blockRate()).isEqualTo(1.0);
        assertThat(stats.group("a").failureRate())
                .isEqualTo(pool.compare("a", "b", GroupComparison.Metric.FAILURE_RATE)
                        .rateA());
        assertThat(stats.group("b").blockRate())
                .isEqualTo(pool.compare("a", "b", GroupComparison.Metric.BLOCK_RATE)
                        .rateB());
        assertThat(stats.toCsv()).contains("\na-1,a,ACTIVE,-1,,1,0,3,0,0,0,1.000000,0.000000,");
    }

    @Test
    void groupRates_countEachSendersTrials_soOneSendersForeignFeedbackDoesNotHideInAnothersSends() {
        SenderPool pool = builder(
                        Sender.builder("a-1").group("a").build(),
                        Sender.builder("a-2").group("a").build(),
                        Sender.builder("b-1").group("b").build())
                .build();
        for (int i = 0; i < 10; i++) {
            pool.acquire(fresh().pinnedTo("a-1")); // delivered, say: no failure
        }
        for (int i = 0; i < 3; i++) {
            pool.failed("a-2", "timeout"); // sends another process granted
        }
        pool.acquire(fresh().pinnedTo("b-1"));

        GroupStats a = pool.stats().group("a");
        GroupComparison failures = pool.compare("a", "b", GroupComparison.Metric.FAILURE_RATE);

        // Thirteen sends (a-1's ten, a-2's three), not max(10, 3) = 10 of the group's sums: 3/13, not 0.3.
        assertThat(a.failureTrials()).isEqualTo(13);
        assertThat(a.failureRate()).isEqualTo(3.0 / 13);
        assertThat(failures.trialsA()).isEqualTo(13);
        assertThat(failures.rateA()).isEqualTo(3.0 / 13);
        assertThat(a.blockTrials()).isEqualTo(10);
    }

    @Test
    void compare_aGroupWithItself_isRejected_notAnsweredNoDifference() {
        SenderPool pool = groupsAAndB();
        pool.acquire(fresh().pinnedTo("a-1"));
        pool.failed("a-1", "timeout");

        // A typo for "b" would read as "no difference, p = 1" about a group against itself.
        assertThatThrownBy(() -> pool.compare("a", "a", GroupComparison.Metric.FAILURE_RATE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("groupB must differ from groupA but both were 'a'");
    }

    @Test
    void compare_findsTheGroupWithMoreBlocks() {
        SenderPool pool = builder(
                        Sender.builder("a-1").group("a").perSecond(1000).build(),
                        Sender.builder("b-1").group("b").perSecond(1000).build())
                .build();
        for (int i = 0; i < 500; i++) {
            // Two seconds apart: the blocks brake the pool, but never below one message per second per sender.
            ticker.advance(Duration.ofSeconds(2));
            granted(pool.acquire(fresh().pinnedTo("a-1")));
            granted(pool.acquire(fresh().pinnedTo("b-1")));
            if (i % 10 == 0) {
                pool.recipientBlocked("a-1", "a" + i); // 10%
            }
            if (i % 50 == 0) {
                pool.recipientBlocked("b-1", "b" + i); // 2%
            }
        }

        GroupComparison c = pool.compare("a", "b", GroupComparison.Metric.BLOCK_RATE);

        assertThat(c.trialsA()).isEqualTo(500);
        assertThat(c.rateA()).isEqualTo(0.1);
        assertThat(c.rateB()).isEqualTo(0.02);
        assertThat(c.significant(0.001)).isTrue();
        assertThatThrownBy(() -> pool.compare("a", "c", GroupComparison.Metric.BLOCK_RATE))
                .hasMessage("unknown group 'c' in pool 'default'");
    }

    @Test
    void listenerFailure_neverBreaksRouting() {
        SenderPool pool = builder(Sender.of("bot-a"))
                .listener(e -> {
                    throw new IllegalStateException("listener bug");
                })
                .build();

        pool.retryAfter("bot-a", Duration.ofSeconds(1));

        assertThat(pool.acquire(fresh()).granted()).isFalse();
        assertThat(events).extracting(PoolEvent::type).contains(PoolEvent.Type.COOLING_STARTED);
    }

    @Test
    void listenerThrowingABareThrowable_neverBreaksRouting() {
        // Kotlin may throw Throwable("...") itself, or a checked exception that Java's signature does not declare.
        SenderPool pool = builder(Sender.of("bot-a"))
                .listener(e -> {
                    throw sneaky(new Throwable("listener bug"));
                })
                .build();

        pool.retryAfter("bot-a", Duration.ofSeconds(1));

        assertThat(pool.acquire(fresh()).granted()).isFalse();
        assertThat(events).extracting(PoolEvent::type).contains(PoolEvent.Type.COOLING_STARTED);
    }

    /**
     * A listener of the bot's that was interrupted (a reply it sends, a blocking call) and lets its
     * InterruptedException through undeclared, as Kotlin code does: the pool goes on, as for any other exception of
     * a listener, but throwing it cleared the thread's interrupt status, which the pool must set again so that the
     * code running the thread (an executor shut down with shutdownNow) still learns that it was asked to stop. Both
     * ways events reach the listeners: at once (cooling) and queued under a sender's lock (a block).
     */
    @Test
    void listenerThrowingInterruptedException_leavesTheThreadInterrupted_andTheOtherListenersAreTold() {
        SenderPool pool = builder(Sender.of("bot-a"), Sender.of("bot-b"))
                .listener(e -> {
                    throw sneaky(new InterruptedException("listener interrupted"));
                })
                .build();

        boolean afterCooling;
        boolean afterBlock;
        try {
            pool.retryAfter("bot-a", Duration.ofSeconds(1));
        } finally {
            afterCooling = Thread.interrupted(); // clears it: the other tests run on this thread
        }
        try {
            pool.blocked("bot-b");
        } finally {
            afterBlock = Thread.interrupted();
        }

        assertThat(afterCooling).as("interrupted after COOLING_STARTED").isTrue();
        assertThat(afterBlock).as("interrupted after SENDER_BLOCKED").isTrue();
        assertThat(events)
                .extracting(PoolEvent::type)
                .containsExactly(PoolEvent.Type.COOLING_STARTED, PoolEvent.Type.SENDER_BLOCKED);
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
        throw (E) e;
    }

    @Test
    void customPreset_appliesItsChatLimits() {
        SenderPool pool = builder(Sender.of("bot-a"))
                .preset(PlatformPreset.of(
                        "custom",
                        100,
                        new SlidingWindowLog(3, Duration.ofSeconds(10)),
                        new SlidingWindowLog(1, Duration.ofMinutes(1))))
                .build();
        OutboundMessage user = OutboundMessage.to("user-1");

        for (int i = 0; i < 3; i++) {
            assertThat(pool.acquire(user).granted()).isTrue();
        }
        assertThat(((SendDecision.Delayed) pool.acquire(user)).retryAfter()).isEqualTo(Duration.ofSeconds(10));
    }

    /**
     * A storage that fails every evaluate while {@code failing}, delegating everything else, and runs one-shot hooks
     * inside a call: what another thread does while this one waits for the storage.
     */
    static final class FailingStorage implements Storage {
        private final Storage delegate;
        volatile boolean failing;
        /** Fails every membership and record write. */
        volatile boolean failingWrites;
        /** Fails every record write (membership writes go on). */
        volatile boolean failingRecordWrites;
        /** Fails every gate raise. */
        volatile boolean failingGates;
        /** Runs once, inside the next evaluate, after the storage answered: what another thread does meanwhile. */
        volatile Runnable afterNextEvaluate;
        /** Runs once, inside the next record read, before it: what another thread does meanwhile. */
        volatile Runnable beforeNextGetRecord;
        /** Runs once, inside the next record read, after the storage answered: what another thread does meanwhile. */
        volatile Runnable afterNextGetRecord;
        /** Fails every read of this record (one sender's), and only of it. */
        volatile StateKey unreadableRecord;
        /** Runs once, inside the next record write, before it: between the writer's read and its write. */
        volatile Runnable beforeNextPutRecord;
        /** Runs once, inside the next record write, after the storage answered: before the writer goes on. */
        volatile Runnable afterNextPutRecord;
        /** Runs once, inside the next gate raise, before it: what another thread does meanwhile. */
        volatile Runnable beforeNextRaiseGate;
        /** Runs once, inside the next membership write, before it: what another thread does meanwhile. */
        volatile Runnable beforeNextAddMember;
        /** Runs once, inside the next membership read, before it: what another thread does meanwhile. */
        volatile Runnable beforeNextIsMember;

        FailingStorage(Storage delegate) {
            this.delegate = delegate;
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            if (failing) {
                throw new GuardStorageException("test", "evaluate", "down", null);
            }
            BatchResult result = delegate.evaluate(batch, nowMicros);
            runOnce(afterNextEvaluate, () -> afterNextEvaluate = null);
            return result;
        }

        private static void runOnce(Runnable hook, Runnable clear) {
            if (hook != null) {
                clear.run();
                hook.run();
            }
        }

        @Override
        public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
            if (failingGates) {
                throw new GuardStorageException("test", "raiseGate", "down", null);
            }
            runOnce(beforeNextRaiseGate, () -> beforeNextRaiseGate = null);
            return delegate.raiseGate(key, untilMicros, nowMicros);
        }

        @Override
        public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
            if (failingWrites) {
                throw new GuardStorageException("test", "addMember", "down", null);
            }
            runOnce(beforeNextAddMember, () -> beforeNextAddMember = null);
            delegate.addMember(key, expiresAtMicros, nowMicros);
        }

        @Override
        public boolean removeMember(StateKey key) {
            return delegate.removeMember(key);
        }

        @Override
        public boolean isMember(StateKey key, long nowMicros) {
            runOnce(beforeNextIsMember, () -> beforeNextIsMember = null);
            return delegate.isMember(key, nowMicros);
        }

        @Override
        public Optional<VersionedRecord> getRecord(StateKey key) {
            if (key.equals(unreadableRecord)) {
                throw new GuardStorageException("test", "getRecord", "cannot read " + key.subject(), null);
            }
            runOnce(beforeNextGetRecord, () -> beforeNextGetRecord = null);
            Optional<VersionedRecord> record = delegate.getRecord(key);
            runOnce(afterNextGetRecord, () -> afterNextGetRecord = null);
            return record;
        }

        @Override
        public long putRecord(StateKey key, byte[] value, long expectedVersion) {
            if (failingWrites || failingRecordWrites) {
                throw new GuardStorageException("test", "putRecord", "down", null);
            }
            runOnce(beforeNextPutRecord, () -> beforeNextPutRecord = null);
            long version = delegate.putRecord(key, value, expectedVersion);
            runOnce(afterNextPutRecord, () -> afterNextPutRecord = null);
            return version;
        }

        @Override
        public long forget(String subject) {
            return delegate.forget(subject);
        }

        @Override
        public StorageHealth health() {
            return delegate.health();
        }

        @Override
        public void close() {}
    }
}
