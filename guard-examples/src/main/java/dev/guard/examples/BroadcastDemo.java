package dev.guard.examples;

import dev.guard.ManualTicker;
import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.PoolEvent;
import dev.guard.route.SendDecision;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.route.WarmUpSchedule;
import dev.guard.spi.Storage;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;

/**
 * A broadcast through a {@link SenderPool} with the Telegram preset: three warm bots and one new bot warming up, one
 * of the warm bots throttled by the (simulated) platform for a few minutes. Prints how the messages spread over the
 * bots minute by minute, the new bot's warm-up curve, and the pool's stats.
 *
 * <p>Nothing leaves the process: the platform is a few lines below that answers 429 with {@code retry_after} the way
 * Telegram does, and time is a {@link ManualTicker} that the demo moves whenever the pool says "delayed", so half an
 * hour of broadcasting takes about a second. The warm-up schedule is compressed (stages of five minutes, allowances
 * per minute) so that the curve fits in the run; real schedules count days ({@link WarmUpSchedule#sendGrid()}).
 */
public final class BroadcastDemo {
    private static final long SECOND = 1_000_000L;
    private static final int MESSAGES = 150_000;
    private static final List<String> BOTS = List.of("bot-1", "bot-2", "bot-3", "bot-new");
    private static final String THROTTLED = "bot-2";
    private static final Duration THROTTLE_FROM = Duration.ofMinutes(8);
    private static final Duration THROTTLE_TO = Duration.ofMinutes(12);

    private BroadcastDemo() {}

    /**
     * Runs the broadcast over {@code storage} (which it does not close) and prints to {@code out}. Keys go under a
     * fresh pool name, so runs never see each other's state.
     */
    public static void run(Storage storage, PrintStream out) {
        // Simulated time starts at the real now: a shared backend (Redis, a database) expires keys on its own clock.
        ManualTicker ticker = ManualTicker.at(Instant.now().truncatedTo(ChronoUnit.SECONDS));
        List<PoolEvent> events = new ArrayList<>();
        WarmUpSchedule compressed = WarmUpSchedule.geometric(20, 1.4, 1_000)
                .withWindow(Duration.ofMinutes(1))
                .withStageLength(Duration.ofMinutes(5));
        SenderPool.Builder builder = SenderPool.builder(storage)
                .name("broadcast-demo-" + UUID.randomUUID())
                .ticker(ticker)
                .preset(PlatformPreset.telegram())
                .listener(events::add);
        for (String bot : BOTS) {
            builder.sender(
                    bot.equals("bot-new")
                            ? Sender.builder(bot).warmUp(compressed).build()
                            : Sender.of(bot));
        }
        SenderPool pool = builder.build();
        long start = ticker.epochMicros();
        Platform platform =
                new Platform(start + THROTTLE_FROM.toSeconds() * SECOND, start + THROTTLE_TO.toSeconds() * SECOND);

        Map<Integer, Map<String, Integer>> perMinute = new HashMap<>();
        Map<Integer, long[]> allowanceByMinute = new HashMap<>();
        int tooMany = 0;
        for (int i = 0; i < MESSAGES; i++) {
            OutboundMessage message = OutboundMessage.to("user-" + i);
            while (true) {
                SendDecision d = pool.acquire(message);
                if (d instanceof SendDecision.Granted g) {
                    long retryAfter = platform.send(g.sender(), ticker.epochMicros());
                    if (retryAfter == 0) {
                        g.delivered(Duration.ofMillis(35));
                        int minute = (int) ((ticker.epochMicros() - start) / (60 * SECOND));
                        perMinute.computeIfAbsent(minute, m -> new HashMap<>()).merge(g.sender(), 1, Integer::sum);
                        // The stage at the minute's last delivery: the pool advances a stage at its next sync,
                        // which may come after the minute's first messages went out under the stage before.
                        allowanceByMinute.put(
                                minute, new long[] {pool.warmUpStage("bot-new"), pool.allowance("bot-new")});
                        break;
                    }
                    tooMany++;
                    g.retryAfter(Duration.ofSeconds(retryAfter));
                } else if (d instanceof SendDecision.Delayed later) {
                    ticker.advance(later.retryAfter().isZero() ? Duration.ofNanos(1_000) : later.retryAfter());
                } else {
                    out.println("rejected: " + d);
                    return;
                }
            }
        }

        long seconds = (ticker.epochMicros() - start) / SECOND;
        out.printf(
                Locale.ROOT,
                "Broadcast of %,d messages over %d bots (Telegram preset): %d min %02d s of simulated time, %d x 429%n",
                MESSAGES,
                BOTS.size(),
                seconds / 60,
                seconds % 60,
                tooMany);
        out.printf(
                Locale.ROOT,
                "The platform throttles %s from minute %d to %d; "
                        + "bot-new warms up (stage = 5 min, allowance per min).%n%n",
                THROTTLED,
                THROTTLE_FROM.toMinutes(),
                THROTTLE_TO.toMinutes());
        out.printf(Locale.ROOT, "%-6s", "minute");
        for (String bot : BOTS) {
            out.printf(Locale.ROOT, "%9s", bot);
        }
        out.printf(Locale.ROOT, "%9s  %s%n", "total", "bot-new stage / allowance");
        int minutes =
                perMinute.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1);
        for (int m = 0; m <= minutes; m++) {
            Map<String, Integer> row = perMinute.getOrDefault(m, Map.of());
            out.printf(Locale.ROOT, "%-6d", m);
            int total = 0;
            for (String bot : BOTS) {
                int n = row.getOrDefault(bot, 0);
                total += n;
                out.printf(Locale.ROOT, "%9d", n);
            }
            long[] warm = allowanceByMinute.get(m);
            String curve = warm == null
                    ? ""
                    : warm[1] == Long.MAX_VALUE
                            ? "warm"
                            : warm[0] + " / " + warm[1] + " " + "#".repeat((int) (warm[1] / 20));
            out.printf(Locale.ROOT, "%9d  %s%n", total, curve);
        }
        out.println();
        out.println("Events:");
        for (PoolEvent e : events) {
            if (e.type() != PoolEvent.Type.POOL_EXHAUSTED && e.type() != PoolEvent.Type.POOL_RECOVERED) {
                long at = e.at().getEpochSecond() - start / SECOND;
                out.printf(
                        Locale.ROOT, "  %3d:%02d %-20s %-8s %s%n", at / 60, at % 60, e.type(), e.sender(), e.detail());
            }
        }
        out.println();
        out.println("Stats (CSV):");
        out.print(pool.stats().toCsv());
    }

    /**
     * The platform, simulated: Telegram's 30 messages per second per bot, counted over any second; one bot throttled
     * (every message answered 429, retry after 20 s) for a while.
     */
    private static final class Platform {
        private final Map<String, ArrayDeque<Long>> recent = new HashMap<>();
        private final long throttleFrom;
        private final long throttleTo;

        Platform(long throttleFrom, long throttleTo) {
            this.throttleFrom = throttleFrom;
            this.throttleTo = throttleTo;
        }

        /** Zero when accepted, else the {@code retry_after} in seconds of a 429. */
        long send(String bot, long now) {
            if (bot.equals(THROTTLED) && now >= throttleFrom && now < throttleTo) {
                return 20;
            }
            ArrayDeque<Long> window = recent.computeIfAbsent(bot, b -> new ArrayDeque<>());
            while (!window.isEmpty() && window.peekFirst() + SECOND <= now) {
                window.pollFirst();
            }
            if (window.size() >= 30) {
                return (window.peekFirst() + SECOND - now + SECOND - 1) / SECOND;
            }
            window.addLast(now);
            return 0;
        }
    }
}
