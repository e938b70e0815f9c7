package dev.guard.benchmarks;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.limit.Outcome;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.Storage;
import dev.guard.storage.memory.MemoryStorage;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The full inbound chain per message on the memory storage: blocklist, registration, duplicate suppression,
 * throttle, token bucket and sliding window, evaluated as one atomic batch, through {@link Guard#check}: key
 * extraction, the fingerprint of the text, the batch, the decision. Realistic limits and a simulated clock: every user
 * writes once every 10 seconds and users take turns, so every message passes and the whole chain commits every time;
 * the texts differ, as in a real chat.
 *
 * <p>{@code users}: how many users take turns. 10,000 (a bot receiving 1,000 updates per second) keeps about 40,000
 * keys live and visits each once per 10,000 messages, so every lookup misses the CPU caches; 100 keeps the state in
 * the caches and measures Guard's own work per message.
 *
 * <p>Each message is built as it is checked, as a bot's update comes fresh from its parser, from a small pool of texts
 * that stays in the caches. (Until 2026-12-04 the messages were built up front, 65,536 of them taken in turn: about 6
 * MB streamed through the caches, which pushed out the state that 100 users are meant to keep in them and cost about 55
 * ns per message that a bot, whose update was just parsed, does not pay.)
 *
 * <p>Users have ten-digit ids drawn at random, as Telegram's are. (Until 2026-12-05 they were numbered 0 to 99 or
 * 9,999: ids that the JDK boxes from its cache without allocating, that a thread's recent subjects spread over their
 * places without a collision and that compare in a character or two. Real ids took about 1.15x the time on the code
 * of that day: 347 to 384 ns against 297 to 329 with 100 users.)
 *
 * <p>The heap is fixed and touched up front, as a long-running bot's is: otherwise the first seconds measure the
 * kernel handing the growing heap its pages.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"-Xms2g", "-Xmx2g", "-XX:+AlwaysPreTouch"})
public class ChainBenchmark {
    /** A minimal update, as a bot framework would hand it over. */
    public record Message(long userId, long chatId, String text) {}

    /** How many different texts users write, taken in turn: a user's text repeats only minutes of clock apart. */
    static final int TEXTS = 1 << 10;
    /** How often each user writes. */
    static final long PERIOD_MICROS = 10_000_000;

    @Param({"100", "10000"})
    public int users;

    /**
     * Which filters the guard has: {@code all} (the chain above). To see what each part costs, in the same run:
     * {@code no-duplicates} drops duplicate suppression, {@code no-sets} the blocklist and registration, {@code
     * limits} both (throttle, token bucket and sliding window remain), {@code bucket} leaves the token bucket alone
     * and {@code throttle} the per-chat throttle alone (one step each: the single-key path).
     */
    @Param({"all"})
    public String filters;

    /**
     * {@code memory}: the memory storage. {@code stub}: a storage that admits every batch of several steps at once,
     * touching no state, so that the run measures {@code Guard}'s own work per message (extraction, subjects,
     * fingerprint, the steps, the decision) apart from the storage's; single steps and the registrations made in
     * the setup still go to the memory storage.
     */
    @Param({"memory"})
    public String storage;

    /**
     * How many tenants the users belong to (each user to one, by id), read by the guard's tenant extractor; 0: the
     * guard has no tenant extractor. Every step's key then carries its tenant's prefix.
     */
    @Param({"0"})
    public int tenants;

    /**
     * How many group chats the users write in (each user in one, by turn); 0: each user writes in the private chat with
     * the bot, whose id is the user's. Group chats have ids as Telegram's supergroups do (-100 and ten digits), and
     * the per-chat throttle and the duplicate suppression (per chat and user) then count per group. At most three
     * users per group, so that every message still passes the throttle (20 per minute).
     */
    @Param({"0"})
    public int chats;

    /**
     * {@code guard}: the chain through {@link Guard#check}. {@code peers}: the same chain built by hand from Bucket4j
     * buckets and Caffeine caches ({@link PeerChain}), for a ratio measured in the same run (the full chain only,
     * {@code filters=all}, {@code storage=memory} and no tenant; {@link #chats} applies).
     */
    @Param({"guard"})
    public String impl;

    private long tickMicros;

    private final ManualTicker ticker = ManualTicker.create();
    private MemoryStorage memory;
    private Guard<Message> guard;
    private String[] texts;
    private long[] ids;
    private String[] tenantNames;
    private long[] chatIds;
    private PeerChain peers;

    /** What {@link #check} answers for the peers' chain: their yes or no, without Guard's details. */
    private static final Decision PEERS_ALLOWED = Decision.allowed(Long.MAX_VALUE);

    private static final Decision PEERS_REJECTED = Decision.rejected("peers", Reason.RATE_LIMITED, Duration.ZERO);

    /** Each thread counts messages from its own offset; users take turns, each writing every {@code users} messages. */
    @State(Scope.Thread)
    public static class Cursor {
        int next = (int) (Thread.currentThread().getId() * 7919) & (TEXTS - 1);
        int user;

        @Setup(Level.Trial)
        public void setUp(ChainBenchmark benchmark) {
            user = next % benchmark.users;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        memory = MemoryStorage.create();
        boolean sets = filters.equals("all") || filters.equals("no-duplicates");
        boolean duplicates = filters.equals("all") || filters.equals("no-sets");
        boolean single = filters.equals("bucket") || filters.equals("throttle");
        boolean limits = !single;
        if (!sets && !duplicates && limits && !filters.equals("limits")) {
            throw new IllegalArgumentException(
                    "filters must be all, no-duplicates, no-sets, limits, bucket or throttle but was " + filters);
        }
        Guard.Builder<Message> builder = Guard.<Message>builder()
                .storage(storageOf(memory))
                .ticker(ticker)
                .userId(Message::userId)
                .chatId(Message::chatId);
        if (tenants < 0) {
            throw new IllegalArgumentException("tenants must not be negative but was " + tenants);
        }
        if (tenants > 0) {
            tenantNames = new String[tenants];
            for (int t = 0; t < tenants; t++) {
                tenantNames[t] = "tenant-" + t;
            }
            builder.tenant(m -> tenantOf(m.userId()));
        }
        if (sets) {
            builder.blocklist().requireRegistration();
        }
        if (duplicates) {
            builder.duplicates(Duration.ofSeconds(2), Message::text);
        }
        if (limits || filters.equals("throttle")) {
            builder.throttle("per-chat", KeyBy.CHAT, 20, Duration.ofMinutes(1));
        }
        if (!filters.equals("throttle")) {
            builder.tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1));
        }
        if (limits) {
            builder.slidingWindow("per-user-minute", KeyBy.USER, 30, Duration.ofMinutes(1));
        }
        guard = builder.build();
        tickMicros = PERIOD_MICROS / users;
        ids = userIds(users);
        if (chats < 0 || (chats > 0 && (users + chats - 1) / chats > 3)) {
            // More than three users of a group, each writing every ten seconds, exceed the throttle's 20 per minute.
            throw new IllegalArgumentException(
                    "chats must be 0 or leave at most 3 users per group (" + users + " users) but was " + chats);
        }
        chatIds = new long[users];
        for (int u = 0; u < users; u++) {
            chatIds[u] = chats == 0 ? ids[u] : -1_001_000_000_000L - u % chats;
        }
        switch (impl) {
            case "guard" -> {
                for (long id : ids) {
                    guard.registrations(tenants > 0 ? tenantOf(id) : null).add(id);
                }
            }
            case "peers" -> {
                if (!filters.equals("all") || !storage.equals("memory") || tenants != 0) {
                    throw new IllegalArgumentException("impl peers takes filters=all, storage=memory and tenants=0"
                            + " but had " + filters + ", " + storage + " and " + tenants);
                }
                peers = new PeerChain(ticker);
                for (long id : ids) {
                    peers.register(id);
                }
            }
            default -> throw new IllegalArgumentException("impl must be guard or peers but was " + impl);
        }
        texts = new String[TEXTS];
        for (int i = 0; i < TEXTS; i++) {
            texts[i] = "message number " + i;
        }
    }

    /**
     * The ids of {@code users} users: ten-digit numbers drawn at random (with a fixed seed), as Telegram's user ids
     * are. Each user writes in the private chat with the bot, whose id is the user's.
     */
    static long[] userIds(int users) {
        SplittableRandom random = new SplittableRandom(42);
        long[] ids = new long[users];
        for (int u = 0; u < users; u++) {
            ids[u] = 1_000_000_000L + random.nextLong(7_000_000_000L);
        }
        return ids;
    }

    /** The tenant of user {@code id}: one of {@link #tenants}, by id. */
    private String tenantOf(long id) {
        return tenantNames[(int) Long.remainderUnsigned(id, tenants)];
    }

    /** The storage that {@link #storage} names. */
    private Storage storageOf(MemoryStorage memory) {
        return switch (storage) {
            case "memory" -> memory;
            case "stub" -> new AdmittingStub(memory);
            default -> throw new IllegalArgumentException("storage must be memory or stub but was " + storage);
        };
    }

    /**
     * Admits every batch evaluated in place at once (each step with 3 permits left), touching no state; everything
     * else goes to {@code m}.
     */
    static final class AdmittingStub extends ForwardingStorage {
        AdmittingStub(MemoryStorage m) {
            super(m);
        }

        @Override
        public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
            for (int i = 0; i < buffer.size(); i++) {
                buffer.setOutcome(i, Outcome.admitted(3));
            }
            return true;
        }

        @Override
        public void close() {
            // The memory storage is the benchmark's, closed in tearDown.
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        memory.close();
    }

    @Benchmark
    public Decision check(Cursor cursor) {
        String text = texts[cursor.next];
        cursor.next = (cursor.next + 1) & (TEXTS - 1);
        long user = ids[cursor.user];
        long chat = chatIds[cursor.user];
        cursor.user = cursor.user + 1 == users ? 0 : cursor.user + 1;
        ticker.advanceMicros(tickMicros);
        if (peers != null) {
            return peers.allows(user, chat, text) ? PEERS_ALLOWED : PEERS_REJECTED;
        }
        return guard.check(new Message(user, chat, text));
    }
}
