package dev.guard.storage.tck;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.PoolEvent;
import dev.guard.route.SendDecision;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.route.SenderStatus;
import dev.guard.route.WarmUpSchedule;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The sender pool's contract with a storage backend: two {@link SenderPool}s of the same name over two clients of one
 * backend (two processes) share the senders' quotas, the chats' limits, the global limit, gates, blocks and warm-up
 * allowances exactly. A backend's test extends this class and supplies {@link #open()}.
 *
 * <pre>{@code
 * class MyStorageSenderPoolTest extends SenderPoolContractTest {
 *     @Override
 *     protected Storage open() {
 *         return MyStorage.connect(...);
 *     }
 * }
 * }</pre>
 *
 * <p>Each test names its pools with a fresh random name, so tests sharing one real server never see each other's keys.
 * Time is a {@link ManualTicker} shared by both pools.
 */
public abstract class SenderPoolContractTest {
    private static final long SECOND = 1_000_000L;

    private final OpenedStorages opened = new OpenedStorages();
    private final List<PoolEvent> events = new CopyOnWriteArrayList<>();
    private final AtomicInteger chats = new AtomicInteger();
    private String name;

    /** The clock of both pools, at 2026-01-01T00:00:00Z when a test starts. */
    protected ManualTicker ticker;

    /**
     * Opens a new client over the backend under test; every client must see the same state. Called twice per test (one
     * client per pool) and more by the race. The suite closes every storage it opened.
     */
    protected abstract Storage open();

    @BeforeEach
    final void start() {
        ticker = ManualTicker.create();
        name = "tck-pool-" + UUID.randomUUID();
    }

    @AfterEach
    final void closeStorages() {
        opened.closeAll();
    }

    /** A pool over a new client, named like every other pool of this test, with the given senders. */
    private SenderPool pool(PlatformPreset preset, Sender... senders) {
        Storage client = open();
        assertThat(client).as("open()").isNotNull();
        opened.add(client);
        SenderPool.Builder b = SenderPool.builder(client)
                .name(name)
                .ticker(ticker)
                .preset(preset)
                .random(new Random(opened.size()))
                .listener(events::add);
        for (Sender s : senders) {
            b.sender(s);
        }
        return b.build();
    }

    private SenderPool pool(Sender... senders) {
        return pool(PlatformPreset.telegram(), senders);
    }

    /** A message to a chat that no test used before: only sender and global limits apply. */
    private OutboundMessage fresh() {
        return OutboundMessage.to("tck-chat-" + chats.incrementAndGet());
    }

    private static int grants(SenderPool one, SenderPool two, int attempts) {
        int granted = 0;
        for (int i = 0; i < attempts; i++) {
            granted += (i % 2 == 0 ? one : two)
                            .acquire(OutboundMessage.to("tck-chat-" + UUID.randomUUID()))
                            .granted()
                    ? 1
                    : 0;
        }
        return granted;
    }

    private static SendDecision.Delayed delayed(SendDecision d) {
        assertThat(d).isInstanceOf(SendDecision.Delayed.class);
        return (SendDecision.Delayed) d;
    }

    @Test
    void twoPools_shareASendersPerSecondQuota_exactly() {
        SenderPool one = pool(Sender.builder("bot").perSecond(7).build());
        SenderPool two = pool(Sender.builder("bot").perSecond(7).build());

        assertThat(grants(one, two, 30)).isEqualTo(7);
        ticker.advance(Duration.ofMillis(1100));
        assertThat(grants(two, one, 30)).isEqualTo(7);
    }

    @Test
    void twoPools_shareAChatsLimit() {
        SenderPool one = pool(Sender.of("bot-a"));
        SenderPool two = pool(Sender.of("bot-b"));
        OutboundMessage user = fresh();

        assertThat(one.acquire(user).granted()).isTrue();

        SendDecision.Delayed d = delayed(two.acquire(user));
        assertThat(d.reason()).isEqualTo(SendDecision.Reason.CHAT_LIMIT);
        assertThat(d.retryAfter()).isEqualTo(Duration.ofSeconds(1));
    }

    @Test
    void twoPools_shareTheGlobalLimit_exactly() {
        PlatformPreset preset = PlatformPreset.of(
                        "tck",
                        1000,
                        new SlidingWindowLog(1, Duration.ofSeconds(1)),
                        new SlidingWindowLog(20, Duration.ofMinutes(1)))
                .withGlobal(new SlidingWindowCounter(25, Duration.ofMinutes(1), 10));
        SenderPool one = pool(preset, Sender.of("bot-a"), Sender.of("bot-b"));
        SenderPool two = pool(preset, Sender.of("bot-a"), Sender.of("bot-b"));

        assertThat(grants(one, two, 60)).isEqualTo(25);
        assertThat(delayed(two.acquire(fresh())).reason()).isEqualTo(SendDecision.Reason.GLOBAL_LIMIT);
    }

    @Test
    void aPushbackInOnePool_gatesTheSenderInTheOther_untilExactlyTheDeadline() {
        SenderPool one = pool(Sender.of("bot"));
        SenderPool two = pool(Sender.of("bot"));
        Instant deadline = ticker.now().plusSeconds(7);

        one.retryAfter("bot", Duration.ofSeconds(7));
        two.retryAfter("bot", Duration.ofSeconds(3)); // an earlier deadline never shortens the gate

        assertThat(delayed(two.acquire(fresh())).until()).isEqualTo(deadline);
        ticker.set(deadline.minusNanos(1_000));
        assertThat(two.acquire(fresh()).granted()).isFalse();
        ticker.set(deadline);
        assertThat(two.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void aChatPushbackInOnePool_gatesTheChatInTheOther() {
        SenderPool one = pool(Sender.of("bot-a"));
        SenderPool two = pool(Sender.of("bot-b"));
        OutboundMessage group = fresh().inGroup();
        SendDecision.Granted g = (SendDecision.Granted) one.acquire(group);

        g.retryAfterInChat(Duration.ofSeconds(30));

        SendDecision.Delayed d = delayed(two.acquire(group));
        assertThat(d.reason()).isEqualTo(SendDecision.Reason.CHAT_LIMIT);
        assertThat(d.retryAfter()).isEqualTo(Duration.ofSeconds(30));
        assertThat(two.acquire(fresh()).granted()).isTrue();
    }

    @Test
    void aRecipientBlockInOnePool_keepsEverySenderOfTheOtherFromTheChat_untilUnblocked() {
        SenderPool one = pool(Sender.of("bot-a"), Sender.of("bot-b"));
        SenderPool two = pool(Sender.of("bot-a"), Sender.of("bot-b"));
        OutboundMessage user = fresh();
        SendDecision.Granted g = (SendDecision.Granted) one.acquire(user);

        g.recipientBlocked();
        ticker.advance(Duration.ofDays(1));

        SendDecision d = two.acquire(user);
        assertThat(d).isInstanceOf(SendDecision.Rejected.class);
        assertThat(((SendDecision.Rejected) d).reason()).isEqualTo(SendDecision.Reason.RECIPIENT_BLOCKED);
        assertThat(two.acquire(fresh()).granted()).isTrue();
        assertThat(two.recipientUnblocked(user.chat())).isTrue();
        assertThat(one.acquire(user).granted()).isTrue();
    }

    @Test
    void aBlockInOnePool_stopsTheSenderInTheOther_andActiveAgainReleasesIt() {
        SenderPool one = pool(Sender.of("bot-a"), Sender.of("bot-b"));
        SenderPool two = pool(Sender.of("bot-a"), Sender.of("bot-b"));

        one.blocked("bot-a");

        for (int i = 0; i < 20; i++) {
            SendDecision d = two.acquire(fresh());
            assertThat(((SendDecision.Granted) d).sender()).isEqualTo("bot-b");
        }
        assertThat(two.status("bot-a")).isEqualTo(SenderStatus.BLOCKED);

        one.setStatus("bot-a", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        List<String> senders = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            senders.add(((SendDecision.Granted) two.acquire(fresh())).sender());
        }
        assertThat(senders).contains("bot-a");
    }

    @Test
    void aWarmingSender_neverExceedsItsAllowance_whicheverPoolSends() {
        WarmUpSchedule schedule = WarmUpSchedule.table(15, 30).withWindow(Duration.ofMinutes(1));
        SenderPool one = pool(Sender.builder("bot-new").warmUp(schedule).build());
        SenderPool two = pool(Sender.builder("bot-new").warmUp(schedule).build());
        List<Long> sent = new ArrayList<>();
        long start = ticker.epochMicros();

        for (int second = 0; second < 180; second++) {
            for (int i = 0; i < 4; i++) {
                if ((i % 2 == 0 ? one : two).acquire(fresh()).granted()) {
                    sent.add(ticker.epochMicros());
                }
            }
            ticker.advance(Duration.ofSeconds(1));
        }

        assertThat(sent.stream().filter(t -> t < start + 60 * SECOND)).hasSize(15);
        int first = 0;
        for (int last = 0; last < sent.size(); last++) {
            while (sent.get(first) + 60 * SECOND <= sent.get(last)) {
                first++;
            }
            assertThat(last - first + 1)
                    .as("sends in the minute before %d", sent.get(last))
                    .isLessThanOrEqualTo(15);
        }
    }

    @Test
    void aStageEndedByOnePool_isReadByTheOther_andEndsOnce() {
        WarmUpSchedule schedule = WarmUpSchedule.table(10, 20).withStageLength(Duration.ofMinutes(1));
        SenderPool one = pool(Sender.builder("bot-new").warmUp(schedule).build());
        SenderPool two = pool(Sender.builder("bot-new").warmUp(schedule).build());
        for (int i = 0; i < 10; i++) {
            assertThat(one.acquire(fresh()).granted()).isTrue(); // a stage ends only after enough sends
        }
        ticker.advance(Duration.ofMinutes(1));

        one.sync();
        two.sync();

        assertThat(one.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(two.warmUpStage("bot-new")).isEqualTo(1);
        assertThat(two.allowance("bot-new")).isEqualTo(20);
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.WARM_UP_ADVANCED)
                .hasSize(1);
    }

    @Test
    void aStepBackInOnePool_holdsInTheOther_beforeItSendsAgain() {
        WarmUpSchedule schedule =
                WarmUpSchedule.table(5, 50).withWindow(Duration.ofMinutes(1)).withStageLength(Duration.ofMinutes(1));
        SenderPool one = pool(Sender.builder("bot-new").warmUp(schedule).build());
        SenderPool two = pool(Sender.builder("bot-new").warmUp(schedule).build());
        for (int i = 0; i < 5; i++) {
            assertThat(two.acquire(fresh()).granted()).isTrue(); // a stage ends only after enough sends
        }
        ticker.advance(Duration.ofMinutes(2)); // the stage is over and its window has forgotten the sends
        two.sync();
        assertThat(two.allowance("bot-new")).isEqualTo(50);

        one.blocked("bot-new");
        one.setStatus("bot-new", SenderStatus.ACTIVE);
        ticker.advance(Duration.ofSeconds(2));

        // Pool two never heard of the block directly; it re-reads the record before sending and holds to stage 0.
        int granted = 0;
        for (int i = 0; i < 20; i++) {
            granted += two.acquire(fresh()).granted() ? 1 : 0;
        }
        assertThat(granted).isEqualTo(5);
        assertThat(two.allowance("bot-new")).isEqualTo(5);
    }

    @Test
    void groupLimitsSetInOnePool_applyInTheOther_afterItsSync() {
        SenderPool one = pool(Sender.builder("bot").group("g").build());
        SenderPool two = pool(Sender.builder("bot").group("g").build());

        one.setGroupLimits("g", 4, 0);
        two.sync();

        assertThat(grants(two, one, 20)).isEqualTo(4);
    }

    @Test
    void poolsRacingOverSeveralClients_neverAdmitMoreThanTheLimit() throws Exception {
        int threads = 4;
        List<SenderPool> pools = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            pools.add(pool(Sender.builder("bot").perSecond(37).build()));
        }
        CyclicBarrier gate = new CyclicBarrier(threads);
        ExecutorService executor = Executors.newFixedThreadPool(threads, StorageContractTest.daemons());
        try {
            List<Future<Integer>> results = new ArrayList<>();
            for (SenderPool p : pools) {
                results.add(executor.submit(() -> {
                    gate.await();
                    int granted = 0;
                    for (int i = 0; i < 50; i++) {
                        granted += p.acquire(fresh()).granted() ? 1 : 0;
                    }
                    return granted;
                }));
            }
            int total = 0;
            for (Future<Integer> f : results) {
                total += f.get(60, TimeUnit.SECONDS);
            }
            assertThat(total).isEqualTo(37);
        } finally {
            executor.shutdownNow();
        }
    }
}
