package dev.guard.examples;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.spi.Storage;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

/**
 * The demo: five simulated minutes of bot traffic through a guard, then a table of outcomes per reason and the
 * decision latency percentiles, then a broadcast through the sender pool.
 *
 * <p>Traffic: thousands of ordinary users chatting at a human pace, a few flooders, button mashers whose repeated
 * presses arrive within a second, a busy group chat, a blocked spammer and another bot. Time is simulated with a
 * {@link ManualTicker}, so the outcomes are the same on every run and machine; the latencies are real.
 *
 * <p>Run: {@code mvn -q -pl guard-examples -am package -DskipTests exec:java}; add {@code
 * -Dexec.args="--storage redis://127.0.0.1:6379"} or {@code --storage jdbc:postgresql://127.0.0.1:5432/test} for a
 * shared storage, and {@code --messages N} (at most 10,000,000) for a longer run.
 */
public final class Demo {
    private static final long GROUP_CHAT = -1001L;
    private static final long SPAMMER = 666L;
    private static final long OTHER_BOT = 777L;
    /**
     * The most {@code --messages}: every latency is kept (80 MB at most), and the five simulated minutes hold 300
     * million steps of a microsecond.
     */
    static final int MAX_MESSAGES = 10_000_000;

    private Demo() {}

    /** Runs the demo; see the class comment for the options. */
    public static void main(String[] args) throws Exception {
        Options options = Options.parse(args);
        try (Storages.Opened opened = Storages.open(options.storage)) {
            run(opened.storage(), options.messages, System.out);
            BroadcastDemo.run(opened.storage(), System.out);
        }
    }

    /** The demo's options. */
    record Options(String storage, int messages) {
        static Options parse(String[] args) {
            String storage = "memory";
            int messages = 200_000;
            List<String> words = new ArrayList<>();
            for (String arg : args) {
                // --option=value as well as --option value
                int equals = arg.startsWith("--") ? arg.indexOf('=') : -1;
                if (equals > 0) {
                    words.add(arg.substring(0, equals));
                    words.add(arg.substring(equals + 1));
                } else {
                    words.add(arg);
                }
            }
            args = words.toArray(new String[0]);
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--storage" -> storage = value(args, ++i, "--storage");
                    case "--messages" -> {
                        String v = value(args, ++i, "--messages");
                        try {
                            messages = Integer.parseInt(v);
                        } catch (NumberFormatException e) {
                            throw new IllegalArgumentException("--messages must be a number but was '" + v + "'");
                        }
                        if (messages <= 0) {
                            throw new IllegalArgumentException("--messages must be positive but was " + messages);
                        }
                        if (messages > MAX_MESSAGES) {
                            throw new IllegalArgumentException(String.format(
                                    Locale.ROOT, "--messages must be at most %,d but was %d", MAX_MESSAGES, messages));
                        }
                    }
                    default ->
                        throw new IllegalArgumentException("unknown option '" + Storages.redactedUrl(args[i])
                                + "'; options: --storage memory|redis://...|jdbc:..., --messages N");
                }
            }
            return new Options(storage, messages);
        }

        private static String value(String[] args, int i, String option) {
            if (i >= args.length) {
                throw new IllegalArgumentException(option + " needs a value");
            }
            return args[i];
        }
    }

    /** Runs {@code messages} simulated updates through a guard on {@code storage} and prints the outcome. */
    static Summary run(Storage storage, int messages, PrintStream out) {
        // Simulated time starts at the real now, and each run is its own tenant, so that runs on a shared storage
        // (Redis, a database) neither see each other's state nor disagree with the server about expiry.
        ManualTicker ticker = ManualTicker.at(Instant.now());
        String run = "demo-" + UUID.randomUUID();
        Guard<Update> guard = Guard.<Update>builder()
                .storage(storage)
                .ticker(ticker)
                .tenant(update -> run)
                .userId(Update::userId)
                .chatId(Update::chatId)
                .filter("no-bots", update -> !update.fromBot())
                .blocklist()
                .duplicates(Duration.ofSeconds(2), Update::text)
                .throttle("per-chat", KeyBy.CHAT, 60, Duration.ofMinutes(1))
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .slidingWindow("per-user-minute", KeyBy.USER, 30, Duration.ofMinutes(1))
                .build();
        // The blocklist lives in the storage: on a shared storage every bot process sees this at once.
        guard.blocklist(run).add(SPAMMER, Duration.ofHours(1));

        Traffic traffic = new Traffic(new Random(20261122L));
        // Five simulated minutes, whatever the number of messages.
        long stepMicros = Math.max(1, 300_000_000L / messages);
        Map<Reason, Integer> byReason = new EnumMap<>(Reason.class);
        Map<String, Integer> byFilter = new java.util.TreeMap<>();
        long[] nanos = new long[messages];
        for (int i = 0; i < messages; i++) {
            Update update = traffic.next();
            long start = System.nanoTime();
            Decision decision = guard.check(update);
            nanos[i] = System.nanoTime() - start;
            byReason.merge(decision.reason(), 1, Integer::sum);
            if (decision.rejected()) {
                byFilter.merge(decision.filter(), 1, Integer::sum);
            }
            ticker.advanceMicros(stepMicros);
        }
        Summary summary = new Summary(byReason, byFilter, nanos);
        summary.print(storage, out);
        return summary;
    }

    /** The traffic mix. */
    static final class Traffic {
        private final Random random;
        private final String[] buttons = {"menu:open", "cart:add:17", "vote:yes", "page:next"};
        private int flooderText;

        Traffic(Random random) {
            this.random = random;
        }

        Update next() {
            int roll = random.nextInt(100);
            if (roll < 55) {
                // One of thousands of ordinary users in a private chat (chat id = user id, as on Telegram).
                long user = 100_000 + random.nextInt(5_000);
                return Update.text(user, user, "message " + random.nextInt(1_000_000));
            }
            if (roll < 70) {
                // A flooder: five users who send far faster than a human.
                long user = 10 + random.nextInt(5);
                return Update.text(user, user, "spam " + flooderText++);
            }
            if (roll < 80) {
                // A button masher: the same callback data again within a second.
                long user = 2_000 + random.nextInt(40);
                return Update.text(user, user, buttons[(int) (user % buttons.length)]);
            }
            if (roll < 97) {
                // A busy group chat: many members, one chat.
                long user = 3_000 + random.nextInt(200);
                return Update.text(user, GROUP_CHAT, "group talk " + random.nextInt(1_000_000));
            }
            if (roll < 99) {
                return Update.text(SPAMMER, SPAMMER, "buy now " + random.nextInt(1000));
            }
            return new Update(OTHER_BOT, GROUP_CHAT, "beep " + random.nextInt(1000), true);
        }
    }

    /** What the demo counted. */
    record Summary(Map<Reason, Integer> byReason, Map<String, Integer> byFilter, long[] nanos) {
        int total() {
            return nanos.length;
        }

        long percentile(double p) {
            long[] sorted = nanos.clone();
            Arrays.sort(sorted);
            // The nearest rank, ceil(p% of n), in decimals: in doubles 99.9 / 100 * 1000 is a hair above 999, whose
            // ceiling would be the next rank.
            long rank = BigDecimal.valueOf(p)
                    .multiply(BigDecimal.valueOf(sorted.length))
                    .divide(BigDecimal.valueOf(100), 0, RoundingMode.CEILING)
                    .longValue();
            return sorted[(int) Math.max(0, Math.min(sorted.length, rank) - 1)];
        }

        void print(Storage storage, PrintStream out) {
            out.printf(Locale.ROOT, "Guard demo: %,d simulated updates over 5 minutes on %s%n%n", total(), storage);
            out.printf(Locale.ROOT, "%-20s %10s %8s%n", "outcome", "messages", "share");
            for (Map.Entry<Reason, Integer> e : byReason.entrySet()) {
                out.printf(
                        Locale.ROOT, "%-20s %,10d %7.1f%%%n", e.getKey(), e.getValue(), 100.0 * e.getValue() / total());
            }
            out.printf(Locale.ROOT, "%nrejections by filter%n");
            for (Map.Entry<String, Integer> e : byFilter.entrySet()) {
                out.printf(Locale.ROOT, "  %-18s %,10d%n", e.getKey(), e.getValue());
            }
            List<String> cells = new ArrayList<>();
            for (double p : new double[] {50, 90, 99, 99.9}) {
                cells.add(String.format(
                        Locale.ROOT,
                        "p%s %s",
                        p == Math.floor(p) ? String.valueOf((int) p) : p,
                        micros(percentile(p))));
            }
            out.printf(
                    Locale.ROOT,
                    "%ndecision latency: %s, max %s%n%n",
                    String.join(", ", cells),
                    micros(percentile(100)));
        }

        private static String micros(long nanos) {
            return String.format(Locale.ROOT, "%.1f us", nanos / 1_000.0);
        }
    }
}
