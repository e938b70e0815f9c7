package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.spi.ReferenceStorage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Broadcasts through a pool against the {@link SimulatedPlatform}, under a manual clock. */
class SenderPoolBroadcastTest {
    private static final long SECOND = 1_000_000L;

    private final ManualTicker ticker = ManualTicker.create();
    private final SimulatedPlatform platform = new SimulatedPlatform(ticker, 30);
    private final List<PoolEvent> events = new ArrayList<>();

    private SenderPool.Builder pool(String... senders) {
        SenderPool.Builder b = SenderPool.builder(ReferenceStorage.create())
                .ticker(ticker)
                .preset(PlatformPreset.telegram())
                .random(new Random(42))
                .listener(events::add);
        for (String s : senders) {
            b.sender(Sender.of(s));
        }
        return b;
    }

    private static OutboundMessage user(int i) {
        return OutboundMessage.to("user-" + i);
    }

    @Test
    void broadcast_100kMessagesOverFourSendersWithTelegramPreset_drawsNo429s() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c", "bot-d").build();
        long start = ticker.epochMicros();

        Broadcast b = new Broadcast(pool, platform, ticker).run(0, 100_000, SenderPoolBroadcastTest::user);

        assertThat(platform.tooMany()).isZero();
        assertThat(platform.accepted()).hasSize(100_000);
        for (String bot : List.of("bot-a", "bot-b", "bot-c", "bot-d")) {
            assertThat(b.delivered(bot)).as(bot).isBetween(22_000, 28_000);
            assertThat(platform.maxInWindow(bot, SECOND)).as(bot).isLessThanOrEqualTo(30);
        }
        // 4 bots at 30/s need at least 833 s; the approximate per-second window costs at most 10% more.
        long seconds = (ticker.epochMicros() - start) / SECOND;
        assertThat(seconds).isBetween(833L, 1_000L);
    }

    @Test
    void throttledSender_isGatedAfterOne429_andTheOthersTakeItsLoad() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c", "bot-d").build();
        Broadcast b = new Broadcast(pool, platform, ticker);
        b.run(0, 2_000, SenderPoolBroadcastTest::user);
        int acceptedBefore = platform.accepted().size();
        long throttleEnd = ticker.epochMicros() + 60 * SECOND;
        platform.throttle("bot-b", throttleEnd, 20);

        b.run(2_000, 20_000, SenderPoolBroadcastTest::user);

        // The first message routed to bot-b drew a 429 with retry_after 20 s, and the gate kept bot-b out for exactly
        // that long; two probes at 20 s and 40 s found it still throttled. Those three 429s are all it cost.
        List<SimulatedPlatform.Sent> after =
                platform.accepted().subList(acceptedBefore, platform.accepted().size());
        assertThat(after)
                .filteredOn(s -> s.bot().equals("bot-b") && s.atMicros() < throttleEnd)
                .isEmpty();
        assertThat(platform.tooMany()).isEqualTo(3);
        // The others carried the broadcast meanwhile, at about 3 x 27 messages per second.
        assertThat(after).filteredOn(s -> s.atMicros() < throttleEnd).hasSizeGreaterThan(3 * 25 * 59);
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.COOLING_STARTED)
                .extracting(PoolEvent::sender)
                .containsOnly("bot-b");
        // Once the throttle lifted, bot-b took traffic again.
        assertThat(after)
                .filteredOn(s -> s.bot().equals("bot-b") && s.atMicros() >= throttleEnd)
                .isNotEmpty();
    }

    @Test
    void blockedSender_getsNoMoreTraffic() {
        SenderPool pool = pool("bot-a", "bot-b", "bot-c", "bot-d").build();
        Broadcast b = new Broadcast(pool, platform, ticker);
        b.run(0, 1_000, SenderPoolBroadcastTest::user);
        platform.block("bot-c");
        int attemptsAtBlock = platform.attempts("bot-c");

        b.run(1_000, 20_000, SenderPoolBroadcastTest::user);

        // One attempt revealed the block; nothing after it.
        assertThat(platform.attempts("bot-c")).isEqualTo(attemptsAtBlock + 1);
        assertThat(platform.forbidden()).isEqualTo(1);
        assertThat(pool.status("bot-c")).isEqualTo(SenderStatus.BLOCKED);
        assertThat(events).extracting(PoolEvent::type).contains(PoolEvent.Type.SENDER_BLOCKED);
        assertThat(b.delivered("bot-a") + b.delivered("bot-b") + b.delivered("bot-d") + b.delivered("bot-c"))
                .isEqualTo(20_000);
        assertThat(platform.tooMany()).isZero();
    }

    @Test
    void warmingSender_neverExceedsItsAllowance_andAdvancesStageByStage() {
        WarmUpSchedule schedule = WarmUpSchedule.table(20, 40, 80)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(10));
        SenderPool pool = pool("bot-a")
                .sender(Sender.builder("bot-new").warmUp(schedule).build())
                .build();
        long start = ticker.epochMicros();
        List<long[]> stages = new ArrayList<>(); // [from micros, allowance]
        stages.add(new long[] {start, 20});
        Broadcast b = new Broadcast(pool, platform, ticker).beforeMessage(i -> {
            long allowance = pool.allowance("bot-new");
            if (allowance != stages.get(stages.size() - 1)[1]) {
                stages.add(new long[] {ticker.epochMicros(), allowance});
            }
        });

        // 40 minutes at about 27 + allowance per minute.
        b.run(0, 70_000, SenderPoolBroadcastTest::user);

        assertThat(pool.warmUpStage("bot-new")).isEqualTo(3);
        assertThat(pool.allowance("bot-new")).isEqualTo(Long.MAX_VALUE);
        assertThat(events)
                .filteredOn(e -> e.type() == PoolEvent.Type.WARM_UP_ADVANCED)
                .hasSize(3);
        // In every minute-long window that ends before the sender was warm, it sent at most the allowance in force
        // at the window's end (allowances only grow here).
        long warmAt = stages.get(stages.size() - 1)[0];
        List<SimulatedPlatform.Sent> sends = platform.accepted().stream()
                .filter(s -> s.bot().equals("bot-new") && s.atMicros() < warmAt)
                .toList();
        int first = 0;
        int busiest = 0;
        for (int last = 0; last < sends.size(); last++) {
            long end = sends.get(last).atMicros();
            while (sends.get(first).atMicros() + 60 * SECOND <= end) {
                first++;
            }
            long allowance = 0;
            for (long[] stage : stages) {
                if (stage[0] <= end) {
                    allowance = stage[1];
                }
            }
            assertThat((long) (last - first + 1))
                    .as("sends in the minute before %d", end)
                    .isLessThanOrEqualTo(allowance);
            busiest = Math.max(busiest, last - first + 1);
        }
        // It was used up to its allowance, not merely left idle.
        assertThat(busiest).isGreaterThanOrEqualTo(60);
        assertThat(platform.tooMany()).isZero();
    }
}
