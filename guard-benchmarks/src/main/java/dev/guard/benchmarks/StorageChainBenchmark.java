package dev.guard.benchmarks;

import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.StateKey;
import dev.guard.storage.memory.MemoryStorage;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * The storage's share of {@link ChainBenchmark}: the same six steps (blocklist, registration, duplicate window,
 * throttle, token bucket, sliding window) with the same limits and clock, filled into a {@link BatchBuffer} and
 * evaluated by {@link MemoryStorage#evaluateInPlace} directly, without {@code Guard}'s extraction, fingerprint and
 * decision. The subjects are built per message (Guard keeps those of the ids it met last), from the same ten-digit
 * user ids.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"-Xms2g", "-Xmx2g", "-XX:+AlwaysPreTouch"})
public class StorageChainBenchmark {
    private static final LimitSpec THROTTLE = new FixedWindow(20, Duration.ofMinutes(1));
    private static final LimitSpec BUCKET = new TokenBucket(5, 1, Duration.ofSeconds(1));
    private static final LimitSpec SLIDING = new SlidingWindowLog(30, Duration.ofMinutes(1));
    private static final LimitSpec DUPLICATES = new DuplicateWindow(Duration.ofSeconds(2), 32);

    /** The scope of the registration set, whose members {@link #setUp} adds. */
    static final String REGISTERED = "set:registered";

    /** How many users take turns, as in {@link ChainBenchmark}. */
    @Param({"100", "10000"})
    public int users;

    private MemoryStorage storage;
    private final BatchBuffer buffer = new BatchBuffer(8);
    private long now;
    private long tickMicros;
    private int next;
    private long message;
    private long[] ids;

    @Setup
    public void setUp() {
        storage = MemoryStorage.create();
        now = System.currentTimeMillis() * 1_000;
        tickMicros = ChainBenchmark.PERIOD_MICROS / users;
        ids = ChainBenchmark.userIds(users);
        for (long id : ids) {
            storage.addMember(new StateKey(REGISTERED, "u:" + id), Long.MAX_VALUE, now);
        }
    }

    @TearDown
    public void tearDown() {
        storage.close();
    }

    @Benchmark
    public boolean check() {
        long user = ids[next];
        next = next + 1 == users ? 0 : next + 1;
        now += tickMicros;
        String userSubject = "u:" + user;
        String chatSubject = "c:" + user;
        BatchBuffer batch = buffer;
        // A different text every message, as in ChainBenchmark: its fingerprint is the window's item.
        fill(batch, userSubject, chatSubject, message++ & ((1L << 53) - 1));
        storage.evaluateInPlace(batch, now);
        if (!batch.admitted()) {
            throw new IllegalStateException(
                    "every message passes the chain, but step " + batch.firstRejected() + " rejected one");
        }
        return true;
    }

    /**
     * Empties {@code batch} and fills it with the chain's six steps for one message of the user and chat of these
     * subjects, whose text has the fingerprint {@code item}.
     */
    static void fill(BatchBuffer batch, String userSubject, String chatSubject, long item) {
        batch.clear();
        batch.add("set:blocklist", userSubject, Membership.MUST_BE_ABSENT, 1);
        batch.add(REGISTERED, userSubject, Membership.MUST_BE_PRESENT, 1);
        batch.add("f:duplicates", userSubject, DUPLICATES, item);
        batch.add("f:per-chat", chatSubject, THROTTLE, 1);
        batch.add("f:per-user", userSubject, BUCKET, 1);
        batch.add("f:per-user-minute", userSubject, SLIDING, 1);
    }
}
