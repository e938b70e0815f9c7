package dev.guard.storage.tck;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The storage contract suite: every {@link Storage} backend's test extends this class and supplies {@link #open()}.
 * It proves the semantics of every limit kind against values computed by hand, all-or-nothing batches, races that
 * must admit exactly the limit, a differential test against {@link dev.guard.spi.ReferenceStorage}, expiry that
 * never grants extra quota, {@code forget}, versioned records, keys of any content, argument checks and health.
 *
 * <pre>{@code
 * class MyStorageTest extends StorageContractTest {
 *     @Override
 *     protected Storage open() {
 *         return MyStorage.connect(...);
 *     }
 * }
 * }</pre>
 *
 * <p>Every test works under a fresh random scope prefix and random subjects, so tests that share one real server
 * (or run at the same time) never see each other's keys and nothing needs cleaning up. Time is explicit: each call
 * passes {@code nowMicros} from the test's {@link ManualTicker}, so a backend must decide with the time it is given.
 *
 * <p>What the suite allows a backend: state whose expiry has passed on the newest clock the backend has seen may be
 * gone even when a later call carries an earlier time (a backend may expire by its own notion of "now"); the suite
 * never goes back in time across an expiry without reading the key first. {@code forget} counts are asserted for
 * live state only.
 */
public abstract class StorageContractTest {
    /** 2026-01-01T00:00:00Z, a multiple of every window length used below, so windows start exactly there. */
    private static final long T0 = ManualTicker.create().epochMicros();

    private static final long SECOND = 1_000_000L;

    /** An hour before 1970: a clock a test may start at, whose microseconds are negative. */
    private static final long BEFORE_1970 = -3_600 * SECOND;

    private final OpenedStorages opened = new OpenedStorages();
    private final String prefix = "tck-" + UUID.randomUUID() + "/";

    /** The storage under test, opened before each test by {@link #open()}. */
    protected Storage storage;

    /** The test's clock, at 2026-01-01T00:00:00Z when a test starts; tests move it. */
    protected ManualTicker ticker;

    /**
     * Opens a client over the backend under test. Called once before each test, and again by tests that need several
     * clients sharing one backend: all of them must see the same state. The suite closes every storage it opened
     * after the test (a backend whose {@code open()} returns one shared instance must tolerate repeated closes).
     */
    protected abstract Storage open();

    /**
     * Runs the backend's expiry work (eviction, sweeping) as if the time were {@code nowMicros}, so that the expiry
     * tests see real eviction rather than only its semantics. Called only with times the test has already passed to
     * the storage. The default does nothing.
     */
    protected void maintain(Storage storage, long nowMicros) {}

    /** How many threads the races run; a backend over a network may want fewer. */
    protected int raceThreads() {
        return 8;
    }

    /** How many clients (from {@link #open()}) the races' threads share, round-robin. */
    protected int raceClients() {
        return 2;
    }

    /** How many requests each thread of a race makes. */
    protected int raceRequestsPerThread() {
        return 200;
    }

    /** How many seeds the differential test runs. */
    protected int differentialSeeds() {
        return 6;
    }

    /** How many operations each seed of the differential test performs. */
    protected int differentialOperations() {
        return 1_500;
    }

    /**
     * Whether the backend knows which limit wrote a state, and so keeps and expires another limit's state as the
     * reference does. Redis knows it only for deadlines (its documented differences, see {@link LimitSpec}): the mixed
     * differential test then changes a key's limit only where those cannot show.
     */
    protected boolean knowsWhichLimitWroteAState() {
        return true;
    }

    /**
     * Whether the backend accepts a clock before 1970 (a negative {@code nowMicros}). Redis does not: it refuses such a
     * time with an {@link IllegalArgumentException} that names it, which the tests of clocks before 1970 then assert
     * instead of the decisions.
     */
    protected boolean acceptsClocksBefore1970() {
        return true;
    }

    /**
     * Whether the backend accepts a clock at or after 2<sup>53</sup> microseconds (the year 2255). Redis does not: its
     * Lua numbers are exact only below, and it refuses such a time with an {@link IllegalArgumentException} that names
     * it, which the tests of clocks near the end of the long range then assert instead of the decisions. Such a backend
     * refuses a step whose time plus its limit's reach (a window, a cooldown's period, a sliding window counter's
     * window and one sub-bucket; not a token bucket's period) reaches 2<sup>53</sup> too, and reads a deadline from
     * 2<sup>53</sup> on as never: the differential test at the edges stays within both.
     */
    protected boolean acceptsClocksAfter2255() {
        return true;
    }

    @BeforeEach
    final void openStorage() {
        ticker = ManualTicker.create();
        storage = openClient();
    }

    @AfterEach
    final void closeStorages() {
        opened.closeAll();
    }

    /** Opens one more client over the same backend; the suite closes it after the test. */
    protected final Storage openClient() {
        Storage s = open();
        assertThat(s).as("open()").isNotNull();
        opened.add(s);
        return s;
    }

    /** A key in this test's private namespace: scope {@code name} under the test's prefix, a random subject. */
    protected final StateKey key(String name) {
        return new StateKey(prefix + name, "user-" + UUID.randomUUID());
    }

    /** A key in this test's private namespace with the given subject. */
    protected final StateKey key(String name, String subject) {
        return new StateKey(prefix + name, subject);
    }

    /** The current time of {@link #ticker}. */
    protected final long now() {
        return ticker.epochMicros();
    }

    private void at(long micros) {
        ticker.set(Instant.ofEpochSecond(Math.floorDiv(micros, SECOND), Math.floorMod(micros, SECOND) * 1_000L));
    }

    private long acquire(StateKey key, LimitSpec spec, long permits) {
        return storage.acquire(key, spec, permits, now());
    }

    private BatchResult evaluate(Step... steps) {
        return storage.evaluate(Batch.of(steps), now());
    }

    private long look(StateKey key, LimitSpec spec) {
        return evaluate(new Step(key, spec, 0)).outcome(0);
    }

    /** Moves to {@code micros} and lets the backend expire what it may by then. */
    private void expireUntil(long micros) {
        at(micros);
        // Tell the backend the time first, through a key of its own, as a caller would.
        storage.acquire(key("clock"), Gate.INSTANCE, 0, micros);
        maintain(storage, micros);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Token bucket

    @Test
    void aKeyWhoseLimitChanges_isDecidedAsTheReference_andNeverFails() {
        // A deploy that changes a filter's parameters or its kind keeps the filter's name, and so its keys: state of
        // another shape reads as absent, state of the same shape is read by the new limit.
        LimitSpec[] specs = {
            new SlidingWindowCounter(10, Duration.ofSeconds(10), 10),
            new SlidingWindowCounter(10, Duration.ofSeconds(10), 20),
            new FixedWindow(5, Duration.ofSeconds(10)),
            new TokenBucket(3, 1, Duration.ofSeconds(1)),
            new Cooldown(Duration.ofSeconds(5)),
            new SlidingWindowLog(4, Duration.ofSeconds(10)),
            new TokenBucket(2, 1, Duration.ofSeconds(2)),
            new SlidingWindowCounter(10, Duration.ofSeconds(10), 10),
            new Cooldown(Duration.ofSeconds(1)),
            new DuplicateWindow(Duration.ofSeconds(5), 2),
            new SlidingWindowLog(2, Duration.ofSeconds(10)),
            new DuplicateWindow(Duration.ofSeconds(5), 3),
            new FixedWindow(5, Duration.ofSeconds(10)),
        };
        ReferenceStorage reference = ReferenceStorage.create();
        StateKey k = key("changing");
        for (int round = 0; round < 2; round++) {
            for (LimitSpec spec : specs) {
                for (int i = 0; i < 3; i++) {
                    long now = ticker.epochMicros();
                    assertThat(acquire(k, spec, 1))
                            .as("%s, call %d", spec, i)
                            .isEqualTo(reference.acquire(k, spec, 1, now));
                    ticker.advance(Duration.ofMillis(300));
                }
            }
        }
    }

    @Test
    void tokenBucket_newKey_admitsBurstUpToCapacityThenRejectsWithRetryAfter() {
        // 3 tokens, one token per second: a token costs 1_000_000 ticks, one tick per microsecond.
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(2));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(1_000_000));

        ticker.advance(Duration.ofMillis(400));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(600_000));

        ticker.advance(Duration.ofMillis(600));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(1_000_000));
    }

    @Test
    void tokenBucket_fractionalRate_refillsWithoutRoundingDrift() {
        // 3 tokens per second: one token every 333_333 1/3 microseconds.
        TokenBucket bucket = new TokenBucket(10, 3, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 10)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_334));

        ticker.advanceMicros(1);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_333));

        // After exactly one second three whole tokens are back, not two and not four.
        ticker.advanceMicros(999_999);
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_334));
    }

    @Test
    void tokenBucket_multiplePermits_waitForAllOfThem() {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(2));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 4)).isEqualTo(Outcome.admitted(1));
        // One token left, three more needed at one per two seconds.
        assertThat(acquire(k, bucket, 4)).isEqualTo(Outcome.rejected(6_000_000));
        ticker.advance(Duration.ofSeconds(6));
        assertThat(acquire(k, bucket, 4)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void tokenBucket_longIdle_refillsOnlyToCapacity() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(2));
        ticker.advance(Duration.ofDays(400));
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(1_000_000));
    }

    @Test
    void tokenBucket_moreThanCapacity_isNeverAdmitted() {
        TokenBucket bucket = new TokenBucket(5, 5, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 6)).isEqualTo(Outcome.NEVER);
        // The rejection consumed nothing: the whole burst is still there.
        assertThat(acquire(k, bucket, 5)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void tokenBucket_zeroPermits_looksWithoutConsuming() {
        TokenBucket bucket = new TokenBucket(4, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 0)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 0)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void tokenBucket_clockBackwards_grantsNothingExtra() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        ticker.advance(Duration.ofSeconds(5));
        assertThat(acquire(k, bucket, 2)).isEqualTo(Outcome.admitted(0));
        // Two seconds back: nothing refills for time that runs backwards, the bucket stays empty, and refill resumes
        // only from the newest time: two seconds until then, one more for the token.
        at(T0 + 3 * SECOND);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(3_000_000));
        // Half a second after the newest time seen, half a token has come back.
        at(T0 + 5 * SECOND + 500_000);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(500_000));
    }

    @Test
    void tokenBucket_whoseRateRises_admitsNoMoreThanItsNewCapacity() {
        // A deploy turns 10 a minute into 10 a second (or 10 in 50 seconds) under the same name: the old level, 54
        // million ticks of a minute's bucket, is above the new bucket's full level (1 million, 50 million). A bucket
        // holds at most its capacity, on the single-key path and in a batch alike, read in the same microsecond and by
        // a clock behind the old update; and a full bucket is a new one, refilled from now, not from that update.
        TokenBucket perMinute = new TokenBucket(10, 10, Duration.ofMinutes(1));
        TokenBucket perSecond = new TokenBucket(10, 10, Duration.ofSeconds(1));
        TokenBucket perFifty = new TokenBucket(10, 10, Duration.ofSeconds(50));
        Object[][] cases = {{perSecond, 0L}, {perSecond, 5 * SECOND}, {perFifty, 5 * SECOND}};
        for (Object[] c : cases) {
            TokenBucket bucket = (TokenBucket) c[0];
            long behind = (Long) c[1];
            String name = bucket + ", " + behind + " us behind";
            StateKey single = key("single " + name);
            StateKey batched = key("batched " + name);
            at(T0 + 10 * SECOND);
            assertThat(acquire(single, perMinute, 1)).isEqualTo(Outcome.admitted(9));
            assertThat(acquire(batched, perMinute, 1)).isEqualTo(Outcome.admitted(9));

            at(T0 + 10 * SECOND - behind);
            for (long left = 9; left >= 0; left--) {
                assertThat(acquire(single, bucket, 1)).as("single, %s", name).isEqualTo(Outcome.admitted(left));
                assertThat(evaluate(new Step(batched, bucket, 1), new Step(key("other"), Gate.INSTANCE, 0))
                                .outcome(0))
                        .as("batched, %s", name)
                        .isEqualTo(Outcome.admitted(left));
            }
            long token = bucket.ticksPerToken() / bucket.ticksPerMicro();
            assertThat(acquire(single, bucket, 1)).as("single, %s", name).isEqualTo(Outcome.rejected(token));
            assertThat(evaluate(new Step(batched, bucket, 1)).outcome(0))
                    .as("batched, %s", name)
                    .isEqualTo(Outcome.rejected(token));
        }
    }

    @Test
    void tokenBucket_readFullByAClockBehindItsLastUpdate_refillsFromNow() {
        // The new bucket reads the old one's level as exactly full: a full bucket is an absent one, so taking from it
        // starts a bucket at now, whose refill does not wait for the old update five seconds later.
        TokenBucket four = new TokenBucket(4, 1, Duration.ofSeconds(1));
        TokenBucket two = new TokenBucket(2, 1, Duration.ofSeconds(1));
        StateKey single = key("single");
        StateKey batched = key("batched");
        at(T0 + 5 * SECOND);
        assertThat(acquire(single, four, 2)).isEqualTo(Outcome.admitted(2));
        assertThat(acquire(batched, four, 2)).isEqualTo(Outcome.admitted(2));

        at(T0);
        assertThat(acquire(single, two, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(evaluate(new Step(batched, two, 2), new Step(key("other"), Gate.INSTANCE, 0))
                        .outcome(0))
                .isEqualTo(Outcome.admitted(0));
        at(T0 + SECOND);
        assertThat(acquire(single, two, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(evaluate(new Step(batched, two, 1)).outcome(0)).isEqualTo(Outcome.admitted(0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fixed window

    @Test
    void fixedWindow_limitReached_rejectsUntilNextAlignedWindow() {
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(10));
        StateKey k = key("window");

        ticker.advance(Duration.ofSeconds(4));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(2));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
        // The window is [T0, T0+10s): six seconds are left of it.
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(6_000_000));

        ticker.advance(Duration.ofSeconds(6));
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(1));
    }

    @Test
    void fixedWindow_moreThanLimit_isNeverAdmitted() {
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(10));
        StateKey k = key("window");

        assertThat(acquire(k, window, 4)).isEqualTo(Outcome.NEVER);
        assertThat(acquire(k, window, 3)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void fixedWindow_clockBackwards_staysInNewestWindow() {
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(10));
        StateKey k = key("window");

        at(T0 + 10 * SECOND);
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(2));
        // Back into the previous window: the count of the newest window still applies, and so does its end.
        at(T0 + 9_500_000);
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.rejected(10_500_000));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Sliding window log

    @Test
    void slidingWindowLog_readingAnotherLimitsStateOutOfOrder_readsItAsAbsent() {
        // A duplicate window's pair [item, admittedAt] whose item, a number, lies after its admission time is no log:
        // read as timestamps they are out of order. Counted as they stand, the later one would hold the key after
        // the retry-after the earlier one gives, and the ttl (from the last one) would end first: such state is
        // another limit's, and reads as absent, on the single-key path and in a batch alike.
        DuplicateWindow duplicates = new DuplicateWindow(Duration.ofSeconds(5), 2);
        SlidingWindowLog log = new SlidingWindowLog(1, Duration.ofSeconds(10));
        StateKey single = key("single");
        StateKey batched = key("batched");
        long item = T0 + 8 * SECOND;
        assertThat(acquire(single, duplicates, item)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(batched, duplicates, item)).isEqualTo(Outcome.admitted(0));

        at(T0 + SECOND);
        assertThat(acquire(single, log, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(evaluate(new Step(batched, log, 1), new Step(key("other"), Gate.INSTANCE, 0))
                        .outcome(0))
                .isEqualTo(Outcome.admitted(0));
        // The log now holds its own permit only.
        assertThat(acquire(single, log, 1)).isEqualTo(Outcome.rejected(10 * SECOND));
        assertThat(evaluate(new Step(batched, log, 1)).outcome(0)).isEqualTo(Outcome.rejected(10 * SECOND));
    }

    @Test
    void slidingWindowLog_limitReached_rejectsUntilOldestPermitLeaves() {
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(10));
        StateKey k = key("log");

        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(2));
        at(T0 + 2 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(1));
        at(T0 + 4 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(0));
        // The permit taken at T0 counts until T0+10s.
        at(T0 + 5 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.rejected(5_000_000));
        at(T0 + 10 * SECOND - 1);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.rejected(1));
        at(T0 + 10 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(0));
        // Two permits need the two oldest counted ones gone: T0+2s and T0+4s, so until T0+14s.
        assertThat(acquire(k, log, 2)).isEqualTo(Outcome.rejected(4_000_000));
        assertThat(acquire(k, log, 4)).isEqualTo(Outcome.NEVER);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Sliding window counter

    @Test
    void slidingWindowCounter_limitReached_rejectsUntilWholeSubBucketLeaves() {
        // 4 per 10 s in 5 sub-buckets of 2 s: a permit counts while its sub-bucket is among the current one and the
        // 5 before it, so a permit taken in [T0, T0+2s) stops counting at T0+12s.
        SlidingWindowCounter counter = new SlidingWindowCounter(4, Duration.ofSeconds(10), 5);
        StateKey k = key("counter");

        assertThat(acquire(k, counter, 2)).isEqualTo(Outcome.admitted(2));
        at(T0 + 4 * SECOND);
        assertThat(acquire(k, counter, 2)).isEqualTo(Outcome.admitted(0));
        at(T0 + 5 * SECOND);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.rejected(7_000_000));
        // Three permits also need the two taken in [T0+4s, T0+6s) gone: at T0+16s.
        assertThat(acquire(k, counter, 3)).isEqualTo(Outcome.rejected(11_000_000));
        assertThat(acquire(k, counter, 5)).isEqualTo(Outcome.NEVER);

        at(T0 + 12 * SECOND - 1);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.rejected(1));
        at(T0 + 12 * SECOND);
        assertThat(acquire(k, counter, 2)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void slidingWindowCounter_limitNearTwoToTheFiftyThree_countsTheExcessExactly() {
        // The largest limit a counter takes, with 4 permits counted: the counted permits plus the permits asked pass
        // 2^53, where a double (a Lua number) keeps only even integers. 4 + (2^53 - 1) is 2^53 + 3, which rounds up to
        // 2^53 + 4 (one permit more to drop than the counter holds), and 4 + (2^53 - 3) is 2^53 + 1, which rounds
        // down to 2^53 (one permit less to drop: a retry too early).
        long limit = (1L << 53) - 1;
        SlidingWindowCounter counter = new SlidingWindowCounter(limit, Duration.ofSeconds(2), 2);
        StateKey k = key("huge-counter");

        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.admitted(limit - 1));
        at(T0 + SECOND);
        assertThat(acquire(k, counter, 3)).isEqualTo(Outcome.admitted(limit - 4));
        // The permit of [T0, T0+1s) stops counting at T0+3s, the three of [T0+1s, T0+2s) at T0+4s.
        assertThat(acquire(k, counter, limit)).isEqualTo(Outcome.rejected(3 * SECOND));
        assertThat(acquire(k, counter, limit - 2)).isEqualTo(Outcome.rejected(3 * SECOND));
        assertThat(acquire(k, counter, limit - 3)).isEqualTo(Outcome.rejected(2 * SECOND));
        assertThat(acquire(k, counter, limit - 4)).isEqualTo(Outcome.admitted(0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Cooldown

    @Test
    void cooldown_copiesWithinPeriod_areRejectedWithoutExtendingIt() {
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        StateKey k = key("cooldown");

        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        at(T0 + 3 * SECOND);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.rejected(7_000_000));
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.rejected(7_000_000));
        assertThat(acquire(k, cooldown, 0)).isEqualTo(Outcome.rejected(7_000_000));

        at(T0 + 10 * SECOND);
        // Zero permits look: they pass and do not start a cooldown.
        assertThat(acquire(k, cooldown, 0)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, cooldown, 5)).isEqualTo(Outcome.admitted(0));
        ticker.advanceMicros(1);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.rejected(9_999_999));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Duplicate window

    @Test
    void duplicateWindow_copiesWithinTheWindow_areRejectedWithoutExtendingIt() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey k = key("window");

        assertThat(acquire(k, window, 17)).isEqualTo(Outcome.admitted(0));
        at(T0 + 3 * SECOND);
        assertThat(acquire(k, window, 17)).isEqualTo(Outcome.rejected(7_000_000));
        assertThat(acquire(k, window, 42)).isEqualTo(Outcome.admitted(0));
        at(T0 + 5 * SECOND);
        assertThat(acquire(k, window, 17)).isEqualTo(Outcome.rejected(5_000_000));
        assertThat(acquire(k, window, 42)).isEqualTo(Outcome.rejected(8_000_000));
        // Item 0 is an item like any other.
        assertThat(acquire(k, window, 0)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 0)).isEqualTo(Outcome.rejected(10_000_000));

        at(T0 + 10 * SECOND);
        assertThat(acquire(k, window, 17)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 42)).isEqualTo(Outcome.rejected(3_000_000));
        at(T0 + 13 * SECOND);
        assertThat(acquire(k, window, 42)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void duplicateWindow_full_forgetsTheOldestItemEarly() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofMinutes(1), 3);
        StateKey k = key("window");

        for (long item = 1; item <= 3; item++) {
            assertThat(acquire(k, window, item)).isEqualTo(Outcome.admitted(0));
            ticker.advance(Duration.ofSeconds(1));
        }
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(57_000_000));
        assertThat(acquire(k, window, 4)).isEqualTo(Outcome.admitted(0));
        // 1 was forgotten to make room for 4; 2, 3 and 4 are remembered.
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.rejected(58_000_000));
        // 1 comes back and makes the window forget 2; 2 comes back and makes it forget 3.
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 4)).isEqualTo(Outcome.rejected(60_000_000));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(60_000_000));
    }

    @Test
    void duplicateWindow_itemsUpToTwoToTheFiftyThree_areComparedExactly() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 8);
        StateKey k = key("window");
        long top = (1L << 53) - 1;

        assertThat(acquire(k, window, top)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, top - 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, top)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(acquire(k, window, top - 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(acquire(k, window, top - 2)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void duplicateWindow_itemOutOfRange_isRefusedNamingTheValue() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 8);
        StateKey k = key("window");

        assertThatThrownBy(() -> acquire(k, window, 1L << 53))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(1L << 53));
        assertThatThrownBy(() -> evaluate(new Step(k, window, 1L << 53)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(1L << 53));
        // Nothing was remembered.
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluate_duplicateInWindowRejected_consumesNothingAndRemembersNothing() {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofMinutes(1));
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey bucketKey = key("bucket");
        StateKey windowKey = key("window");

        assertThat(evaluate(new Step(bucketKey, bucket, 1), new Step(windowKey, window, 7)))
                .isEqualTo(BatchResult.of(Outcome.admitted(4), Outcome.admitted(0)));
        ticker.advance(Duration.ofSeconds(1));
        assertThat(evaluate(new Step(bucketKey, bucket, 1), new Step(windowKey, window, 7)))
                .isEqualTo(BatchResult.of(Outcome.admitted(3), Outcome.rejected(9_000_000)));
        assertThat(look(bucketKey, bucket)).isEqualTo(Outcome.admitted(4));

        // A bucket that rejects keeps the window from remembering the item.
        TokenBucket empty = new TokenBucket(1, 1, Duration.ofMinutes(1));
        StateKey emptyKey = key("empty");
        assertThat(acquire(emptyKey, empty, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(evaluate(new Step(emptyKey, empty, 1), new Step(windowKey, window, 8)))
                .isEqualTo(BatchResult.of(Outcome.rejected(60_000_000), Outcome.admitted(0)));
        assertThat(acquire(windowKey, window, 8)).isEqualTo(Outcome.admitted(0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Looks (zero permits), and clocks that go backwards

    /** A limit, and what a look at a fresh key of it answers. */
    private record LookCase(LimitSpec spec, long freshLook) {}

    @Test
    void looks_ofEveryKindAndPath_changeNothingThatLaterRequestsSee() {
        // Each limit runs the same requests at the same times on two keys; one of them is also looked at, before and
        // after every request, through acquire, evaluate and evaluateInPlace in turn. The requests must not tell the
        // two keys apart. (A duplicate window has no look: its zero is an item.)
        List<LookCase> cases = List.of(
                new LookCase(new TokenBucket(3, 1, Duration.ofSeconds(1)), Outcome.admitted(3)),
                new LookCase(new FixedWindow(3, Duration.ofSeconds(1)), Outcome.admitted(3)),
                new LookCase(new SlidingWindowLog(3, Duration.ofSeconds(1)), Outcome.admitted(3)),
                new LookCase(new SlidingWindowCounter(3, Duration.ofSeconds(1), 2), Outcome.admitted(3)),
                new LookCase(new Cooldown(Duration.ofMillis(700)), Outcome.admitted(1)));
        BatchBuffer buffer = new BatchBuffer(1);
        for (LookCase c : cases) {
            StateKey plain = key("plain");
            StateKey looked = key("looked");
            assertThat(look(looked, c.spec())).as("%s, first look", c.spec()).isEqualTo(c.freshLook());
            int paths = 0;
            for (int i = 0; i < 12; i++) {
                long permits = i % 3 == 2 ? 2 : 1;
                long before = lookThrough(paths++ % 3, buffer, looked, c.spec());
                long expected = acquire(plain, c.spec(), permits);
                assertThat(acquire(looked, c.spec(), permits))
                        .as("%s, request %d after a look that answered %s", c.spec(), i, Outcome.toString(before))
                        .isEqualTo(expected);
                lookThrough(paths++ % 3, buffer, looked, c.spec());
                ticker.advance(Duration.ofMillis(250));
            }
            assertThat(look(looked, c.spec())).as("%s, last look", c.spec()).isEqualTo(look(plain, c.spec()));
        }
    }

    /** A look (zero permits) at {@code k} through acquire (0), evaluate (1) or evaluateInPlace (2). */
    private long lookThrough(int path, BatchBuffer buffer, StateKey k, LimitSpec spec) {
        if (path == 0) {
            return acquire(k, spec, 0);
        }
        if (path == 1) {
            return look(k, spec);
        }
        buffer.clear();
        buffer.add(k.scope(), k.subject(), spec, 0);
        storage.evaluateInPlace(buffer, now());
        return buffer.outcome(0);
    }

    @Test
    void slidingWindowLog_clockBackwards_stampsPermitsAtTheNewestTime() {
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(10));
        StateKey k = key("log");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(2));
        // Three seconds back: the permit counts as taken at T0+5s, the newest time, so it leaves at T0+15s too.
        at(T0 + 2 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(1));
        at(T0 + 12 * SECOND);
        assertThat(acquire(k, log, 2)).isEqualTo(Outcome.rejected(3_000_000));
        at(T0 + 15 * SECOND);
        assertThat(acquire(k, log, 3)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void slidingWindowCounter_clockBackwards_countsInTheNewestSubBucket() {
        // 2 per 4 s in sub-buckets of 2 s: a permit of the sub-bucket [T0+4s, T0+6s) counts until T0+10s.
        SlidingWindowCounter counter = new SlidingWindowCounter(2, Duration.ofSeconds(4), 2);
        StateKey k = key("counter");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.admitted(1));
        // Four seconds back, into the sub-bucket [T0, T0+2s): the permit counts in the newest one, [T0+4s, T0+6s).
        at(T0 + SECOND);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.admitted(0));
        at(T0 + 8 * SECOND);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.rejected(2_000_000));
        at(T0 + 10 * SECOND);
        assertThat(acquire(k, counter, 2)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void cooldown_clockBackwards_waitsForTheSameDeadline() {
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        StateKey k = key("cooldown");

        at(T0 + 10 * SECOND);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        // Six seconds back: the cooldown still ends at T0+20s, sixteen seconds away, and copies do not extend it.
        at(T0 + 4 * SECOND);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.rejected(16_000_000));
        assertThat(acquire(k, cooldown, 0)).isEqualTo(Outcome.rejected(16_000_000));
        at(T0 + 20 * SECOND - 1);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.rejected(1));
        at(T0 + 20 * SECOND);
        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void duplicateWindow_clockBackwards_remembersItemsFromTheNewestTime() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey k = key("window");

        at(T0 + 10 * SECOND);
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
        // Two seconds back: item 2 is remembered as admitted at T0+10s, the newest time, so until T0+20s.
        at(T0 + 8 * SECOND);
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(12_000_000));
        at(T0 + 19 * SECOND);
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.rejected(1_000_000));
        at(T0 + 20 * SECOND);
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // State that another limit wrote, or that is dated more than a day after the caller's now

    @Test
    void fixedWindow_lengthenedUnderTheSameKey_readsTheShorterWindowsStateAsAbsent() {
        StateKey k = key("throttle");
        FixedWindow minute = new FixedWindow(2, Duration.ofMinutes(1));
        FixedWindow hour = new FixedWindow(2, Duration.ofHours(1));
        long hourMicros = 3_600 * SECOND;

        assertThat(acquire(k, minute, 2)).isEqualTo(Outcome.admitted(0));
        // Read as an hour window's, the minute window's index would begin some 3,000 years from now, and its count
        // would never reset: it reads as absent instead.
        assertThat(acquire(k, hour, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, hour, 1)).isEqualTo(Outcome.admitted(0));
        long hourEnds = (Math.floorDiv(now(), hourMicros) + 1) * hourMicros;
        assertThat(acquire(k, hour, 1)).isEqualTo(Outcome.rejected(hourEnds - now()));
    }

    @Test
    void logsAndWindows_onAnotherKindsState_readItAsAbsentAndNeverFail() {
        SlidingWindowLog log = new SlidingWindowLog(5, Duration.ofSeconds(10));
        FixedWindow window = new FixedWindow(5, Duration.ofSeconds(10));
        StateKey member = key("set");
        StateKey logged = key("log");

        // A membership that never ends, read as a log: a timestamp at the end of time.
        storage.addMember(member, Long.MAX_VALUE, now());
        assertThat(acquire(member, log, 1)).isEqualTo(Outcome.admitted(4));
        // A log of two timestamps, read as a fixed window: an index of microseconds, not of windows.
        assertThat(acquire(logged, log, 2)).isEqualTo(Outcome.admitted(3));
        at(T0 + 1_000);
        assertThat(acquire(logged, window, 1)).isEqualTo(Outcome.admitted(4));
    }

    @Test
    void limitStepsOnARecordsKey_thatAreRejected_leaveTheRecord() {
        StateKey k = key("profile");
        StateKey gate = key("gate");
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(1));
        storage.putRecord(k, new byte[] {1, 2, 3}, 0);

        // Rejected on its own (more than the capacity), and in a batch that another step rejects: the record stays.
        assertThat(acquire(k, bucket, 6)).isEqualTo(Outcome.NEVER);
        storage.raiseGate(gate, now() + SECOND, now());
        assertThat(evaluate(new Step(k, bucket, 1), new Step(gate, Gate.INSTANCE, 1))
                        .admitted())
                .isFalse();
        assertThat(storage.getRecord(k)).map(VersionedRecord::version).contains(1L);

        // A step that commits there reads the key as absent (whether the record then stays is the backend's: the
        // SPI keeps records and limit state apart, and Redis keeps both).
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(4));
    }

    @Test
    void datedIndex_aDayBeforeTheEndOfExactTime_isJudgedExactly() {
        // A bucket's state [k, now] read as a fixed window's index k at now = k seconds - 1 day - 1 us: the window
        // k begins one microsecond more than a day after now, so the state is dated (absent). Near 2^53 a day added
        // to now in doubles rounds up, which must not make the index read as a day ahead only.
        long k = 9_007_199_255L;
        long at = k * SECOND - 86_400 * SECOND - 1;
        StateKey key = key("near-the-end");
        at(at);
        assertThat(acquire(key, new TokenBucket(k + 1, 1, Duration.ofNanos(1_000)), 1))
                .isEqualTo(Outcome.admitted(k));
        assertThat(acquire(key, new FixedWindow(3, Duration.ofSeconds(1)), 1)).isEqualTo(Outcome.admitted(2));
    }

    @Test
    void readsByAnotherKind_leaveTheLimitsStateAtTheKey() {
        StateKey k = key("mixed");
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));

        // A membership and a gate read the bucket's state as absent, and change nothing.
        assertThat(storage.isMember(k, now())).isFalse();
        assertThat(look(k, Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(3_600 * SECOND));
    }

    @Test
    void cooldown_readingADeadlineThatNeverEnds_rejectsUntilThatDeadline() {
        // A cooldown reads a gate's or a membership's deadline (one value: its own shape) as its own: one that never
        // ends is a wait until Long.MAX_VALUE, as a gate there answers, not a request that can never pass.
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        StateKey member = key("member-then-cooldown");
        storage.addMember(member, Long.MAX_VALUE, now());
        assertThat(acquire(member, cooldown, 1)).isEqualTo(Outcome.rejected(Long.MAX_VALUE - now()));
        StateKey gate = key("gate-then-cooldown");
        storage.raiseGate(gate, Long.MAX_VALUE, now());
        assertThat(acquire(gate, cooldown, 0)).isEqualTo(Outcome.rejected(Long.MAX_VALUE - now()));
        assertThat(evaluate(new Step(gate, cooldown, 1)).outcome(0))
                .isEqualTo(Outcome.rejected(Long.MAX_VALUE - now()));
    }

    @Test
    void deadlinesThatNeverEnd_readOnAClockBefore1970_neverEnd() {
        // The wait until a deadline past Long.MAX_VALUE + now does not fit a long for a negative now: it saturates at
        // Long.MAX_VALUE, never, as the reference answers.
        at(BEFORE_1970);
        StateKey gate = key("gate");
        StateKey member = key("blocklist");
        StateKey farGate = key("gate");
        StateKey farMember = key("blocklist");
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        if (!acceptsClocksBefore1970()) {
            assertRefusesTheClock(() -> storage.raiseGate(gate, Long.MAX_VALUE, now()));
            assertRefusesTheClock(() -> storage.addMember(member, Long.MAX_VALUE, now()));
            assertRefusesTheClock(() -> acquire(gate, Gate.INSTANCE, 1));
            return;
        }
        assertThat(storage.raiseGate(gate, Long.MAX_VALUE, now())).isEqualTo(Long.MAX_VALUE);
        storage.addMember(member, Long.MAX_VALUE, now());
        storage.raiseGate(farGate, Long.MAX_VALUE - 1, now());
        storage.addMember(farMember, Long.MAX_VALUE - 1, now());

        for (StateKey k : List.of(gate, member, farGate, farMember)) {
            assertThat(acquire(k, Gate.INSTANCE, 1)).as("gate at %s", k).isEqualTo(Outcome.NEVER);
            assertThat(acquire(k, cooldown, 1)).as("cooldown at %s", k).isEqualTo(Outcome.NEVER);
            assertThat(look(k, cooldown)).as("cooldown looking at %s", k).isEqualTo(Outcome.NEVER);
            assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1))
                    .as("blocklist at %s", k)
                    .isEqualTo(Outcome.NEVER);
            assertThat(acquire(k, Membership.MUST_BE_PRESENT, 1))
                    .as("registration at %s", k)
                    .isEqualTo(Outcome.admitted(Long.MAX_VALUE));
            assertThat(storage.isMember(k, now())).as("member at %s", k).isTrue();
        }
        // In a batch, whose other steps then consume nothing; by every path.
        StateKey bucketKey = key("bucket");
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
        assertThat(evaluate(new Step(bucketKey, bucket, 1), new Step(gate, Gate.INSTANCE, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(0), Outcome.NEVER));
        assertThat(storage.evaluateAsync(Batch.of(new Step(farGate, cooldown, 1)), now())
                        .toCompletableFuture()
                        .join())
                .isEqualTo(BatchResult.of(Outcome.NEVER));
        BatchBuffer buffer = new BatchBuffer(2);
        buffer.add(new Step(bucketKey, bucket, 1));
        buffer.add(new Step(member, cooldown, 1));
        assertThat(storage.evaluateInPlace(buffer, now())).isFalse();
        assertThat(buffer.outcome(1)).isEqualTo(Outcome.NEVER);
        assertThat(acquire(bucketKey, bucket, 1)).isEqualTo(Outcome.admitted(0));

        // Still in force two hours later, after 1970.
        ticker.advance(Duration.ofHours(2));
        for (StateKey k : List.of(gate, member)) {
            assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(Long.MAX_VALUE - now()));
            assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.NEVER);
        }
    }

    @Test
    void gateSetAndCooldownReads_ofALogsTimestampPastAsADeadline_leaveItToTheLog() {
        // A log's one timestamp is one number, a deadline's size: a gate, a set or a cooldown reads it as a deadline
        // that has passed, so as absent, but the log's window still holds it, and so must the key.
        record Read(String by, StateKey key, Runnable check) {}
        SlidingWindowLog log = new SlidingWindowLog(1, Duration.ofSeconds(10));
        StateKey gate = key("log-read-by-gate");
        StateKey isMember = key("log-read-by-isMember");
        StateKey blocklist = key("log-read-by-blocklist");
        StateKey registration = key("log-read-by-registration");
        StateKey cooled = key("log-read-by-cooldown");
        List<Read> reads = List.of(
                new Read("a gate", gate, () -> assertThat(look(gate, Gate.INSTANCE))
                        .isEqualTo(Outcome.admitted(Long.MAX_VALUE))),
                new Read("isMember", isMember, () -> assertThat(storage.isMember(isMember, now()))
                        .isFalse()),
                new Read("a blocklist", blocklist, () -> assertThat(acquire(blocklist, Membership.MUST_BE_ABSENT, 1))
                        .isEqualTo(Outcome.admitted(Long.MAX_VALUE))),
                new Read("a registration", registration, () -> assertThat(
                                acquire(registration, Membership.MUST_BE_PRESENT, 1))
                        .isEqualTo(Outcome.NEVER)),
                // A cooldown that admits commits over the timestamp, as in the reference; in a batch that another
                // step rejects it only reads.
                new Read("a cooldown", cooled, () -> assertThat(evaluate(
                                new Step(cooled, new Cooldown(Duration.ofSeconds(1)), 1),
                                new Step(key("unregistered"), Membership.MUST_BE_PRESENT, 1)))
                        .isEqualTo(BatchResult.of(Outcome.admitted(0), Outcome.NEVER))));
        for (Read read : reads) {
            assertThat(acquire(read.key(), log, 1)).isEqualTo(Outcome.admitted(0));
        }

        at(T0 + SECOND);
        for (Read read : reads) {
            read.check().run();
        }
        for (Read read : reads) {
            assertThat(acquire(read.key(), log, 1))
                    .as("the log after a read by %s", read.by())
                    .isEqualTo(Outcome.rejected(9 * SECOND));
        }
    }

    @Test
    void deadlinesThatFit_readOnAClockBefore1970_endExactlyThen() {
        // The wait across 1970 is exact: it saturates only where it does not fit.
        at(BEFORE_1970);
        StateKey gate = key("gate");
        StateKey member = key("blocklist");
        if (!acceptsClocksBefore1970()) {
            assertRefusesTheClock(() -> storage.raiseGate(gate, 2 * SECOND, now()));
            assertRefusesTheClock(() -> storage.isMember(member, now()));
            return;
        }
        long hour = -BEFORE_1970;
        assertThat(storage.raiseGate(gate, 2 * hour, now())).isEqualTo(2 * hour);
        storage.addMember(member, hour, now());
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(3 * hour));
        assertThat(acquire(member, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(2 * hour));
        assertThat(acquire(member, new Cooldown(Duration.ofSeconds(1)), 1)).isEqualTo(Outcome.rejected(2 * hour));
        at(hour - 1);
        assertThat(storage.isMember(member, now())).isTrue();
        at(hour);
        assertThat(storage.isMember(member, now())).isFalse();
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(hour));
        at(2 * hour);
        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    @Test
    void deadlinesBefore1970_setOnAClockBefore1970_holdUntilThen() {
        // A broken clock two hours before 1970 raises a gate and adds a member until an hour before 1970: both are in
        // force until then, for the subject's only key and for keys of one subject alike, after the backend's expiry
        // work too. (Found by the differential test at the edges: the memory storage dropped them at once.)
        at(2 * BEFORE_1970);
        String subject = "user-" + UUID.randomUUID();
        StateKey gate = key("gate");
        StateKey member = key("blocklist");
        StateKey gateOfOne = key("gate", subject);
        StateKey memberOfOne = key("blocklist", subject);
        if (!acceptsClocksBefore1970()) {
            assertRefusesTheClock(() -> storage.raiseGate(gate, BEFORE_1970, now()));
            assertRefusesTheClock(() -> storage.addMember(member, BEFORE_1970, now()));
            return;
        }
        for (StateKey k : List.of(gate, gateOfOne)) {
            assertThat(storage.raiseGate(k, BEFORE_1970, now()))
                    .as("gate %s", k)
                    .isEqualTo(BEFORE_1970);
        }
        for (StateKey k : List.of(member, memberOfOne)) {
            storage.addMember(k, BEFORE_1970, now());
        }
        for (long end : new long[] {2 * BEFORE_1970, BEFORE_1970 - 1}) {
            at(end);
            maintain(storage, now());
            for (StateKey k : List.of(gate, gateOfOne)) {
                assertThat(acquire(k, Gate.INSTANCE, 1))
                        .as("gate %s at %d", k, now())
                        .isEqualTo(Outcome.rejected(BEFORE_1970 - now()));
            }
            for (StateKey k : List.of(member, memberOfOne)) {
                assertThat(storage.isMember(k, now()))
                        .as("member %s at %d", k, now())
                        .isTrue();
                assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1))
                        .as("blocklist %s at %d", k, now())
                        .isEqualTo(Outcome.rejected(BEFORE_1970 - now()));
            }
        }
        at(BEFORE_1970);
        for (StateKey k : List.of(gate, gateOfOne, member, memberOfOne)) {
            assertThat(acquire(k, Gate.INSTANCE, 1)).as("gate %s", k).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
            assertThat(storage.isMember(k, now())).as("member %s", k).isFalse();
        }
    }

    @Test
    void everyKind_onAClockBefore1970_isDecidedAsTheReference() {
        // Windows aligned to the epoch, buckets and logs whose times are negative, their ttls, a cooldown's deadline.
        LimitSpec[] specs = {
            new TokenBucket(3, 1, Duration.ofSeconds(1)),
            new FixedWindow(2, Duration.ofSeconds(7)),
            new SlidingWindowLog(2, Duration.ofSeconds(5)),
            new SlidingWindowCounter(3, Duration.ofSeconds(6), 3),
            new Cooldown(Duration.ofSeconds(2)),
            new DuplicateWindow(Duration.ofSeconds(3), 2),
        };
        at(-20 * SECOND);
        if (!acceptsClocksBefore1970()) {
            assertRefusesTheClock(() -> acquire(key("bucket"), specs[0], 1));
            return;
        }
        ReferenceStorage reference = ReferenceStorage.create();
        List<StateKey> keys = new ArrayList<>();
        for (LimitSpec spec : specs) {
            keys.add(key(spec.kind()));
        }
        // Across 1970, in steps of 0.7 s: window edges and expiries on both sides of it.
        for (int call = 0; now() < 20 * SECOND; call++) {
            for (int i = 0; i < specs.length; i++) {
                // A duplicate window's permits are the item: three items that come back.
                long permits = specs[i] instanceof DuplicateWindow ? call % 3 : 1;
                assertThat(acquire(keys.get(i), specs[i], permits))
                        .as("%s at %d", specs[i], now())
                        .isEqualTo(reference.acquire(keys.get(i), specs[i], permits, now()));
            }
            ticker.advance(Duration.ofMillis(700));
        }
    }

    @Test
    void everyKind_nearTheEndOfTime_holdsItsStateAMicrosecondLater() {
        // A broken or hand-made clock 30 s before the end of the long range of microseconds (the year 294,247): a
        // deadline, a window's end or an expiry that passes that end saturates there, as the reference's do; it must
        // not wrap around and free the key a microsecond later.
        LimitSpec[] specs = {
            TokenBucket.of(1, Duration.ofMinutes(1)),
            new FixedWindow(1, Duration.ofMinutes(1)),
            new SlidingWindowLog(1, Duration.ofMinutes(1)),
            new SlidingWindowCounter(1, Duration.ofMinutes(1), 2),
            new Cooldown(Duration.ofMinutes(1)),
            new DuplicateWindow(Duration.ofMinutes(1), 4),
        };
        long nearEnd = Long.MAX_VALUE - 30 * SECOND;
        at(nearEnd);
        if (!acceptsClocksAfter2255()) {
            assertRefusesTheClock(() -> acquire(key("bucket"), specs[0], 1));
            return;
        }
        ReferenceStorage reference = ReferenceStorage.create();
        for (LimitSpec spec : specs) {
            StateKey k = key(spec.kind());
            // A duplicate window's permits are the item.
            long permits = spec instanceof DuplicateWindow ? 5 : 1;
            for (long micros : new long[] {nearEnd, nearEnd + 1, Long.MAX_VALUE - 1}) {
                at(micros);
                long expected = reference.acquire(k, spec, permits, micros);
                assertThat(acquire(k, spec, permits))
                        .as("%s at %d", spec, micros)
                        .isEqualTo(expected);
                assertThat(Outcome.isAdmitted(expected))
                        .as("%s at %d", spec, micros)
                        .isEqualTo(micros == nearEnd);
            }
        }
    }

    private void assertRefusesTheClock(ThrowingCallable call) {
        assertThatThrownBy(call)
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(now()));
    }

    @Test
    void slidingWindowLog_readingADeadlineThatHasPassed_readsItAsAbsent() {
        // A deadline ends at its time whoever reads it: a log under the same name (a deploy changed the filter's
        // kind) does not count a passed gate's, cooldown's or membership's deadline as a timestamp in its window.
        SlidingWindowLog log = new SlidingWindowLog(1, Duration.ofSeconds(10));
        StateKey gate = key("gate-then-log");
        StateKey cooled = key("cooldown-then-log");
        StateKey member = key("member-then-log");
        storage.raiseGate(gate, T0 + SECOND, now());
        assertThat(acquire(cooled, new Cooldown(Duration.ofSeconds(1)), 1)).isEqualTo(Outcome.admitted(0));
        storage.addMember(member, T0 + SECOND, now());

        at(T0 + 2 * SECOND);
        assertThat(acquire(gate, log, 1)).as("after a gate").isEqualTo(Outcome.admitted(0));
        assertThat(acquire(cooled, log, 1)).as("after a cooldown").isEqualTo(Outcome.admitted(0));
        assertThat(acquire(member, log, 1)).as("after a membership").isEqualTo(Outcome.admitted(0));
    }

    @Test
    void slidingWindowLog_readingADeadlineThatEndsExactlyNow_readsItAsAbsent() {
        // A state is absent from the microsecond its ttl ends: a deadline read by a log at that very microsecond is no
        // timestamp of now in its window, on the single-key path and in a batch alike.
        SlidingWindowLog log = new SlidingWindowLog(1, Duration.ofSeconds(10));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        List<StateKey> keys = new ArrayList<>();
        for (String name : List.of("gate-then-log", "cooldown-then-log", "member-then-log")) {
            keys.add(key(name + "/single"));
            keys.add(key(name + "/batched"));
        }
        for (int i = 0; i < keys.size(); i++) {
            StateKey k = keys.get(i);
            if (i < 2) {
                storage.raiseGate(k, T0 + SECOND, now());
            } else if (i < 4) {
                assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.admitted(0));
            } else {
                storage.addMember(k, T0 + SECOND, now());
            }
        }

        at(T0 + SECOND);
        for (int i = 0; i < keys.size(); i += 2) {
            StateKey single = keys.get(i);
            StateKey batched = keys.get(i + 1);
            assertThat(acquire(single, log, 1)).as("%s", single.scope()).isEqualTo(Outcome.admitted(0));
            assertThat(evaluate(new Step(batched, log, 1), new Step(key("other"), Gate.INSTANCE, 0))
                            .outcome(0))
                    .as("%s", batched.scope())
                    .isEqualTo(Outcome.admitted(0));
            // The log now holds its own permit only, taken now.
            assertThat(acquire(single, log, 1)).as("%s after", single.scope()).isEqualTo(Outcome.rejected(10 * SECOND));
            assertThat(acquire(batched, log, 1))
                    .as("%s after", batched.scope())
                    .isEqualTo(Outcome.rejected(10 * SECOND));
        }
    }

    @Test
    void slidingWindowLog_readingAShorterLogsStateWhoseTtlEndsExactlyNow_readsItAsAbsent() {
        // A log of one second under the name a log of ten seconds takes over: the shorter log's permit ends its ttl at
        // T0+1s, and from that microsecond on the key is absent, whichever limit reads it. Redis keeps such state a
        // margin longer for the next limit (see LimitSpec), so only a backend that knows the writer is held to it.
        if (!knowsWhichLimitWroteAState()) {
            return;
        }
        SlidingWindowLog second = new SlidingWindowLog(1, Duration.ofSeconds(1));
        SlidingWindowLog tenSeconds = new SlidingWindowLog(1, Duration.ofSeconds(10));
        StateKey single = key("single");
        StateKey batched = key("batched");
        assertThat(acquire(single, second, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(batched, second, 1)).isEqualTo(Outcome.admitted(0));

        at(T0 + SECOND - 1);
        assertThat(acquire(single, tenSeconds, 1)).isEqualTo(Outcome.rejected(9 * SECOND + 1));
        at(T0 + SECOND);
        assertThat(acquire(single, tenSeconds, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(evaluate(new Step(batched, tenSeconds, 1), new Step(key("other"), Gate.INSTANCE, 0))
                        .outcome(0))
                .isEqualTo(Outcome.admitted(0));
    }

    @Test
    void bucketAndWindow_readByAClockMoreThanADayBehind_readTheirStateAsAbsent() {
        long day = 86_400 * SECOND;
        long hourMicros = 3_600 * SECOND;
        StateKey bucketKey = key("bucket");
        StateKey windowKey = key("window");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        FixedWindow window = new FixedWindow(2, Duration.ofHours(1));
        assertThat(acquire(bucketKey, bucket, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(windowKey, window, 2)).isEqualTo(Outcome.admitted(0));
        long windowStart = Math.floorDiv(T0, hourMicros) * hourMicros;

        // Up to a day behind, the state holds: refill resumes from the bucket's last update, the window stays.
        at(T0 - day);
        assertThat(acquire(bucketKey, bucket, 1)).isEqualTo(Outcome.rejected(T0 - now() + hourMicros));
        assertThat(acquire(windowKey, window, 1)).isEqualTo(Outcome.rejected(windowStart + hourMicros - now()));
        // More than a day behind both (the window began before T0): the state reads as absent.
        at(windowStart - day - 1);
        assertThat(acquire(bucketKey, bucket, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(windowKey, window, 1)).isEqualTo(Outcome.admitted(1));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Gate

    @Test
    void gate_raisedAfterItsDeadline_mergesWithNothing_andAnswersTheDeadlinePassed() {
        // The deadline in force is what raiseGate answers: one that has passed is in force no more.
        StateKey k = key("gate");
        assertThat(storage.raiseGate(k, T0 + SECOND, now())).isEqualTo(T0 + SECOND);

        at(T0 + 2 * SECOND);
        assertThat(storage.raiseGate(k, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND / 2);
        assertThat(storage.raiseGate(k, Long.MIN_VALUE, now())).isEqualTo(Long.MIN_VALUE);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.raiseGate(k, T0 + 3 * SECOND, now())).isEqualTo(T0 + 3 * SECOND);
        assertThat(storage.raiseGate(k, T0 + SECOND, now())).isEqualTo(T0 + 3 * SECOND);
    }

    @Test
    void gate_raisedExactlyAtItsDeadline_mergesWithNothing() {
        // At its deadline a gate is open (a step passes): the deadline is in force no more from that microsecond, so
        // an earlier deadline raised then is the one answered, and the gate stays open. A microsecond before, it
        // merges.
        StateKey atDeadline = key("gate");
        StateKey justBefore = key("gate");
        storage.raiseGate(atDeadline, T0 + SECOND, now());
        storage.raiseGate(justBefore, T0 + SECOND, now());

        at(T0 + SECOND - 1);
        assertThat(storage.raiseGate(justBefore, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND);
        assertThat(look(justBefore, Gate.INSTANCE)).isEqualTo(Outcome.rejected(1));

        at(T0 + SECOND);
        assertThat(storage.raiseGate(atDeadline, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND / 2);
        assertThat(look(atDeadline, Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.raiseGate(atDeadline, now(), now())).isEqualTo(now());
        assertThat(storage.raiseGate(justBefore, now(), now())).isEqualTo(now());
        assertThat(look(justBefore, Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    @Test
    void gate_raisedAfterItsDeadline_mergesWithNothing_besideTheSubjectsOtherState_orOnceACooldownReadIt() {
        // A backend may keep a passed gate's state a while: beside the subject's other keys, or in another form once a
        // step of another kind read it. The deadline that passed is in force no more all the same.
        String subject = "user-" + UUID.randomUUID();
        StateKey besideOthers = key("gate", subject);
        StateKey readByCooldown = key("gate");
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        assertThat(acquire(key("bucket", subject), new TokenBucket(10, 1, Duration.ofSeconds(10)), 1))
                .isEqualTo(Outcome.admitted(9));
        storage.raiseGate(besideOthers, T0 + SECOND, now());
        storage.raiseGate(readByCooldown, T0 + SECOND, now());
        assertThat(acquire(readByCooldown, cooldown, 1)).isEqualTo(Outcome.rejected(SECOND));

        at(T0 + 2 * SECOND);
        assertThat(storage.raiseGate(besideOthers, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND / 2);
        assertThat(storage.raiseGate(readByCooldown, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND / 2);
    }

    @Test
    void gate_raised_rejectsUntilDeadlineAndMergesByMaximum() {
        StateKey k = key("gate");

        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.raiseGate(k, T0 + 5 * SECOND, now())).isEqualTo(T0 + 5 * SECOND);
        assertThat(storage.raiseGate(k, T0 + 3 * SECOND, now())).isEqualTo(T0 + 5 * SECOND);

        at(T0 + SECOND);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(4_000_000));
        assertThat(storage.raiseGate(k, T0 + 8 * SECOND, now())).isEqualTo(T0 + 8 * SECOND);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(7_000_000));

        at(T0 + 8 * SECOND - 1);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(1));
        at(T0 + 8 * SECOND);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    @Test
    void gateAndBlock_untilTheLastExactMicrosecond_readAtTimeZero_waitTheWholeWay() {
        // The longest wait an outcome can carry below 2^53: it must come back as that wait, not as "never".
        long last = (1L << 53) - 1;
        StateKey gate = key("gate");
        StateKey blocked = key("blocked");
        at(0);

        storage.raiseGate(gate, last, now());
        storage.addMember(blocked, last, now());

        assertThat(acquire(gate, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(last));
        assertThat(acquire(blocked, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(last));
    }

    @Test
    void raiseGate_deadlineAtOrBeforeNow_changesNothingObservable() {
        StateKey open = key("gate");
        StateKey closed = key("gate");

        assertThat(storage.raiseGate(open, now(), now())).isEqualTo(now());
        assertThat(acquire(open, Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));

        storage.raiseGate(closed, T0 + 5 * SECOND, now());
        assertThat(storage.raiseGate(closed, T0 - SECOND, now())).isEqualTo(T0 + 5 * SECOND);
        assertThat(acquire(closed, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(5_000_000));
    }

    @Test
    void gate_passedInAdmittedBatch_keepsItsDeadline() {
        StateKey gate = key("gate");
        StateKey bucketKey = key("bucket");
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofSeconds(1));

        storage.raiseGate(gate, T0 + 2 * SECOND, now());
        assertThat(evaluate(new Step(gate, Gate.INSTANCE, 1), new Step(bucketKey, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.rejected(2_000_000), Outcome.admitted(9)));
        at(T0 + 2 * SECOND);
        assertThat(evaluate(new Step(gate, Gate.INSTANCE, 1), new Step(bucketKey, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(Long.MAX_VALUE), Outcome.admitted(9)));
        // Raising it again later still merges with nothing left over from passing it.
        assertThat(storage.raiseGate(gate, T0 + 4 * SECOND, now())).isEqualTo(T0 + 4 * SECOND);
        assertThat(look(gate, Gate.INSTANCE)).isEqualTo(Outcome.rejected(2_000_000));
    }

    @Test
    void gate_raisedForever_rejectsWithTheWholeWaitAndIsNeverLowered() {
        StateKey k = key("gate");

        assertThat(storage.raiseGate(k, Long.MAX_VALUE, now())).isEqualTo(Long.MAX_VALUE);
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(Long.MAX_VALUE - now()));
        assertThat(storage.raiseGate(k, T0 + 5 * SECOND, now())).isEqualTo(Long.MAX_VALUE);

        ticker.advance(Duration.ofDays(3_650));
        BatchResult r = evaluate(new Step(k, Gate.INSTANCE, 1));
        assertThat(r).isEqualTo(BatchResult.of(Outcome.rejected(Long.MAX_VALUE - now())));
        // A wait, however long, is not "never".
        assertThat(r.retryAfterMicros()).isEqualTo(Long.MAX_VALUE - now());
    }

    @Test
    void raiseGate_overACooldownsOrAMembershipsDeadline_startsFromTheRaisedDeadlineAlone() {
        // A deploy that turned a cooldown or a set into a gate under the same name keeps the key: a gate merges only
        // with a gate's deadline, so the one raised replaces theirs, even an earlier one.
        StateKey cooled = key("cooldown-then-gate");
        assertThat(acquire(cooled, new Cooldown(Duration.ofSeconds(10)), 1)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.raiseGate(cooled, T0 + SECOND, now())).isEqualTo(T0 + SECOND);
        assertThat(look(cooled, Gate.INSTANCE)).isEqualTo(Outcome.rejected(SECOND));
        // Now it is a gate's deadline, and merges.
        assertThat(storage.raiseGate(cooled, T0 + SECOND / 2, now())).isEqualTo(T0 + SECOND);

        StateKey blocked = key("member-then-gate");
        storage.addMember(blocked, Long.MAX_VALUE, now());
        assertThat(storage.raiseGate(blocked, T0 + 2 * SECOND, now())).isEqualTo(T0 + 2 * SECOND);
        assertThat(look(blocked, Gate.INSTANCE)).isEqualTo(Outcome.rejected(2 * SECOND));

        // A deadline already passed replaces a cooldown's too: nothing is left in force.
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        StateKey passed = key("cooldown-then-passed-gate");
        assertThat(acquire(passed, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.raiseGate(passed, T0 - SECOND, now())).isEqualTo(T0 - SECOND);
        assertThat(acquire(passed, cooldown, 1)).isEqualTo(Outcome.admitted(0));

        at(T0 + 2 * SECOND);
        assertThat(look(cooled, Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(look(blocked, Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.isMember(blocked, now()))
                .as("the membership the gate replaced")
                .isFalse();
    }

    @Test
    void gateAndMembership_deadlinesLongPast_changeNothingAndNeverFail() {
        StateKey open = key("gate");
        StateKey closed = key("gate");
        StateKey member = key("blocklist");
        StateKey never = key("blocklist");

        for (long past : new long[] {Long.MIN_VALUE, -1, 0, T0 - 1}) {
            storage.raiseGate(open, past, now());
            assertThat(acquire(open, Gate.INSTANCE, 1))
                    .as("open gate raised to %d", past)
                    .isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        }
        storage.raiseGate(closed, T0 + 5 * SECOND, now());
        for (long past : new long[] {Long.MIN_VALUE, -1, 0, T0 - 1}) {
            assertThat(storage.raiseGate(closed, past, now()))
                    .as("closed gate raised to %d", past)
                    .isEqualTo(T0 + 5 * SECOND);
        }
        assertThat(acquire(closed, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(5_000_000));

        // An expiry in the past stores no membership and ends the one there was.
        for (long past : new long[] {Long.MIN_VALUE, -1, 0, T0 - 1}) {
            storage.addMember(member, Long.MAX_VALUE, now());
            storage.addMember(member, past, now());
            assertThat(storage.isMember(member, now()))
                    .as("member until %d", past)
                    .isFalse();
            assertThat(acquire(member, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);
            storage.addMember(never, past, now());
            assertThat(acquire(never, Membership.MUST_BE_ABSENT, 1))
                    .as("never a member until %d", past)
                    .isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Membership

    @Test
    void membership_forever_blocksAndRegistersUntilRemoved() {
        StateKey k = key("blocklist");

        assertThat(storage.isMember(k, now())).isFalse();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(acquire(k, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);

        storage.addMember(k, Long.MAX_VALUE, now());
        ticker.advance(Duration.ofDays(3_650));
        assertThat(storage.isMember(k, now())).isTrue();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.NEVER);
        assertThat(acquire(k, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));

        assertThat(storage.removeMember(k)).isTrue();
        assertThat(storage.removeMember(k)).isFalse();
        assertThat(storage.isMember(k, now())).isFalse();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    @Test
    void membership_withExpiry_endsExactlyAtExpiry() {
        StateKey k = key("blocklist");

        storage.addMember(k, T0 + 30 * SECOND, now());
        assertThat(storage.isMember(k, now())).isTrue();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(30_000_000));
        at(T0 + 30 * SECOND - 1);
        assertThat(storage.isMember(k, now())).isTrue();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(1));
        at(T0 + 30 * SECOND);
        assertThat(storage.isMember(k, now())).isFalse();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(acquire(k, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void addMember_expiryAtOrBeforeNow_leavesNoMembership() {
        StateKey fresh = key("blocklist");
        StateKey earlier = key("blocklist");

        storage.addMember(fresh, now(), now());
        assertThat(storage.isMember(fresh, now())).isFalse();
        assertThat(acquire(fresh, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));

        storage.addMember(earlier, Long.MAX_VALUE, now());
        storage.addMember(earlier, now() - SECOND, now());
        assertThat(storage.isMember(earlier, now())).isFalse();
        assertThat(acquire(earlier, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void addMember_again_replacesEarlierExpiry() {
        StateKey k = key("registered");

        storage.addMember(k, T0 + 60 * SECOND, now());
        storage.addMember(k, T0 + 10 * SECOND, now());
        at(T0 + 10 * SECOND);
        assertThat(storage.isMember(k, now())).isFalse();

        storage.addMember(k, Long.MAX_VALUE, now());
        at(T0 + 100 * SECOND);
        assertThat(storage.isMember(k, now())).isTrue();
    }

    @Test
    void membership_ofOtherSubjectOrSet_isSeparate() {
        String subject = "user-" + UUID.randomUUID();
        StateKey blocked = key("blocklist", subject);

        storage.addMember(blocked, Long.MAX_VALUE, now());
        assertThat(storage.isMember(key("registered", subject), now())).isFalse();
        assertThat(storage.isMember(key("blocklist", subject + "0"), now())).isFalse();
        assertThat(storage.isMember(blocked, now())).isTrue();
    }

    @Test
    void removeMember_ofANonMember_answersFalseAndLeavesEveryMembership() {
        String subject = "user-" + UUID.randomUUID();
        StateKey blocked = key("blocklist", subject);
        storage.addMember(blocked, Long.MAX_VALUE, now());

        assertThat(storage.removeMember(key("blocklist"))).isFalse();
        assertThat(storage.removeMember(key("blocklist", subject + "0"))).isFalse();
        assertThat(storage.removeMember(key("blocklist", subject.substring(0, subject.length() - 1))))
                .isFalse();
        assertThat(storage.removeMember(key("registered", subject))).isFalse();

        assertThat(storage.isMember(blocked, now())).isTrue();
        assertThat(acquire(blocked, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.NEVER);
        assertThat(storage.removeMember(blocked)).isTrue();
        assertThat(storage.isMember(blocked, now())).isFalse();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // All-or-nothing

    @Test
    void evaluate_duplicateRejected_consumesNoTokenFromBucket() {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofMinutes(1));
        Cooldown duplicate = new Cooldown(Duration.ofSeconds(10));
        StateKey bucketKey = key("bucket");
        StateKey textKey = key("duplicate");

        BatchResult first = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(first.admitted()).isTrue();
        assertThat(first).isEqualTo(BatchResult.of(Outcome.admitted(4), Outcome.admitted(0)));

        ticker.advance(Duration.ofSeconds(1));
        BatchResult copy = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(copy.admitted()).isFalse();
        assertThat(copy.firstRejected()).isEqualTo(1);
        // Each outcome is computed against the state before the batch; the bucket would have admitted.
        assertThat(copy).isEqualTo(BatchResult.of(Outcome.admitted(3), Outcome.rejected(9_000_000)));

        // The bucket still holds 4 tokens (plus 1/60 of a token refilled over that second, below one token).
        assertThat(look(bucketKey, bucket)).isEqualTo(Outcome.admitted(4));
    }

    @Test
    void evaluate_bucketRejected_doesNotMarkDuplicateAsSeen() {
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofMinutes(1));
        Cooldown duplicate = new Cooldown(Duration.ofSeconds(10));
        StateKey bucketKey = key("bucket");

        assertThat(acquire(bucketKey, bucket, 1)).isEqualTo(Outcome.admitted(0));

        StateKey textKey = key("duplicate");
        BatchResult throttled = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(throttled).isEqualTo(BatchResult.of(Outcome.rejected(60_000_000), Outcome.admitted(0)));
        assertThat(throttled.firstRejected()).isZero();

        // The text was not marked as seen: it passes on its own.
        assertThat(acquire(textKey, duplicate, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluate_blockedUser_consumesNothingInAnyStep() {
        StateKey blocked = key("blocklist");
        StateKey windowKey = key("window");
        StateKey logKey = key("log");
        StateKey counterKey = key("counter");
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(10));
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(10));
        SlidingWindowCounter counter = new SlidingWindowCounter(2, Duration.ofSeconds(10), 2);
        storage.addMember(blocked, T0 + 20 * SECOND, now());

        for (int i = 0; i < 3; i++) {
            BatchResult r = evaluate(
                    new Step(windowKey, window, 1),
                    new Step(logKey, log, 1),
                    new Step(counterKey, counter, 1),
                    new Step(blocked, Membership.MUST_BE_ABSENT, 1));
            assertThat(r)
                    .isEqualTo(BatchResult.of(
                            Outcome.admitted(1),
                            Outcome.admitted(1),
                            Outcome.admitted(1),
                            Outcome.rejected(20_000_000)));
        }
        assertThat(acquire(windowKey, window, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(logKey, log, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(counterKey, counter, 2)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluate_allStepsAdmit_consumesInEveryStep() {
        TokenBucket perUser = new TokenBucket(3, 1, Duration.ofMinutes(1));
        TokenBucket global = new TokenBucket(10, 1, Duration.ofMinutes(1));
        StateKey userKey = key("user");
        StateKey globalKey = key("global", StateKey.GLOBAL);

        assertThat(evaluate(new Step(userKey, perUser, 2), new Step(globalKey, global, 2)))
                .isEqualTo(BatchResult.of(Outcome.admitted(1), Outcome.admitted(8)));
        assertThat(evaluate(new Step(userKey, perUser, 2), new Step(globalKey, global, 2)))
                .isEqualTo(BatchResult.of(Outcome.rejected(60_000_000), Outcome.admitted(6)));
        assertThat(look(globalKey, global)).isEqualTo(Outcome.admitted(8));
        assertThat(look(userKey, perUser)).isEqualTo(Outcome.admitted(1));
    }

    @Test
    void evaluate_neverAdmittableStep_reportsNeverAndConsumesNothing() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        StateKey a = key("a");
        StateKey b = key("b");

        BatchResult r = evaluate(new Step(a, bucket, 1), new Step(b, bucket, 4));
        assertThat(r).isEqualTo(BatchResult.of(Outcome.admitted(2), Outcome.NEVER));
        assertThat(r.retryAfterMicros()).isEqualTo(Long.MAX_VALUE);
        assertThat(look(a, bucket)).isEqualTo(Outcome.admitted(3));
    }

    @Test
    void evaluate_onlyAMembershipRejects_consumesNothingInAnyKind() {
        // Limits of two subjects (a user and a chat) and the user's gate and sets: the rejecting membership may live
        // apart from the limits it must hold back (another Redis Cluster slot, say).
        String user = "user-" + UUID.randomUUID();
        String chat = "chat-" + UUID.randomUUID();
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(10));
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(10));
        SlidingWindowCounter counter = new SlidingWindowCounter(2, Duration.ofSeconds(10), 2);
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        DuplicateWindow duplicates = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey gate = key("gate", user);
        StateKey bucketKey = key("bucket", user);
        StateKey windowKey = key("window", chat);
        StateKey logKey = key("log", chat);
        StateKey counterKey = key("counter", user);
        StateKey cooldownKey = key("cooldown", chat);
        StateKey duplicatesKey = key("duplicates", chat);
        StateKey blocklist = key("blocklist", user);
        StateKey registered = key("registered", user);
        Batch batch = Batch.of(
                new Step(gate, Gate.INSTANCE, 1),
                new Step(bucketKey, bucket, 1),
                new Step(windowKey, window, 1),
                new Step(logKey, log, 1),
                new Step(counterKey, counter, 1),
                new Step(cooldownKey, cooldown, 1),
                new Step(duplicatesKey, duplicates, 5),
                new Step(blocklist, Membership.MUST_BE_ABSENT, 1),
                new Step(registered, Membership.MUST_BE_PRESENT, 1));
        long forever = Outcome.admitted(Long.MAX_VALUE);

        // Not registered: only the last step rejects, again and again, and nothing is taken.
        for (int i = 0; i < 3; i++) {
            BatchResult r = storage.evaluate(batch, now());
            assertThat(r)
                    .as("unregistered, request %d", i)
                    .isEqualTo(BatchResult.of(
                            forever,
                            Outcome.admitted(2),
                            Outcome.admitted(1),
                            Outcome.admitted(1),
                            Outcome.admitted(1),
                            Outcome.admitted(0),
                            Outcome.admitted(0),
                            forever,
                            Outcome.NEVER));
            assertThat(r.firstRejected()).isEqualTo(8);
        }

        // Registered: the same outcomes, and now every step takes its permit.
        storage.addMember(registered, Long.MAX_VALUE, now());
        assertThat(storage.evaluate(batch, now()))
                .isEqualTo(BatchResult.of(
                        forever,
                        Outcome.admitted(2),
                        Outcome.admitted(1),
                        Outcome.admitted(1),
                        Outcome.admitted(1),
                        Outcome.admitted(0),
                        Outcome.admitted(0),
                        forever,
                        forever));
        assertThat(look(bucketKey, bucket)).isEqualTo(Outcome.admitted(2));
        assertThat(look(windowKey, window)).isEqualTo(Outcome.admitted(1));
        assertThat(look(logKey, log)).isEqualTo(Outcome.admitted(1));
        assertThat(look(counterKey, counter)).isEqualTo(Outcome.admitted(1));
        assertThat(look(cooldownKey, cooldown)).isEqualTo(Outcome.rejected(10_000_000));

        // Ten seconds on, the cooldown, the item and the window are over, the log's permit has left and the counter's
        // still counts (sub-buckets of 5 s); now the user is blocked until T0+30s.
        storage.addMember(blocklist, T0 + 30 * SECOND, now());
        at(T0 + 10 * SECOND);
        BatchResult blocked = storage.evaluate(batch, now());
        assertThat(blocked)
                .isEqualTo(BatchResult.of(
                        forever,
                        Outcome.admitted(1),
                        Outcome.admitted(1),
                        Outcome.admitted(1),
                        Outcome.admitted(0),
                        Outcome.admitted(0),
                        Outcome.admitted(0),
                        Outcome.rejected(20_000_000),
                        forever));
        assertThat(blocked.firstRejected()).isEqualTo(7);
        assertThat(look(bucketKey, bucket)).isEqualTo(Outcome.admitted(2));
        assertThat(look(windowKey, window)).isEqualTo(Outcome.admitted(2));
        assertThat(look(logKey, log)).isEqualTo(Outcome.admitted(2));
        assertThat(look(counterKey, counter)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(cooldownKey, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(duplicatesKey, duplicates, 5)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluate_oneScopeUnderTwoSubjects_keepsTwoStates() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey a = key("bucket", "user-" + UUID.randomUUID());
        StateKey b = key("bucket", "user-" + UUID.randomUUID());

        assertThat(evaluate(new Step(a, bucket, 2), new Step(b, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(0), Outcome.admitted(1)));
        assertThat(evaluate(new Step(b, bucket, 1), new Step(a, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(0), Outcome.rejected(3_600_000_000L)));
        assertThat(look(a, bucket)).isEqualTo(Outcome.admitted(0));
        assertThat(look(b, bucket)).isEqualTo(Outcome.admitted(1));
    }

    @Test
    void evaluate_aBatchOf300Steps_isAllOrNothing() {
        // The SPI sets no size limit: 299 buckets over three subjects and a gate, more steps than a backend might send
        // in one call or script.
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        String[] subjects = {"user-" + UUID.randomUUID(), "user-" + UUID.randomUUID(), "user-" + UUID.randomUUID()};
        StateKey gate = key("gate", subjects[0]);
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < 299; i++) {
            steps.add(new Step(key("bucket-" + i, subjects[i % 3]), bucket, 1));
        }
        steps.add(new Step(gate, Gate.INSTANCE, 1));
        Batch batch = new Batch(steps);
        storage.raiseGate(gate, T0 + SECOND, now());

        BatchResult closed = storage.evaluate(batch, now());
        assertThat(closed.firstRejected()).isEqualTo(299);
        for (int i = 0; i < 299; i++) {
            assertThat(closed.outcome(i)).as("step %d behind the gate", i).isEqualTo(Outcome.admitted(1));
        }
        assertThat(closed.outcome(299)).isEqualTo(Outcome.rejected(1_000_000));

        at(T0 + SECOND);
        BatchBuffer buffer = new BatchBuffer(4);
        for (int round = 0; round < 2; round++) {
            buffer.clear();
            for (Step s : steps) {
                buffer.add(s);
            }
            assertThat(storage.evaluateInPlace(buffer, now()))
                    .as("round %d", round)
                    .isTrue();
            for (int i = 0; i < 299; i++) {
                assertThat(buffer.outcome(i)).as("round %d, step %d", round, i).isEqualTo(Outcome.admitted(1 - round));
            }
        }
        BatchResult empty = storage.evaluate(batch, now());
        assertThat(empty.firstRejected()).isZero();
        for (int i = 0; i < 299; i++) {
            assertThat(empty.outcome(i)).as("step %d, emptied", i).isEqualTo(Outcome.rejected(3_600_000_000L));
        }
        assertThat(empty.outcome(299)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Clients, fast paths, health

    @Test
    void clients_ofOneBackend_shareState() {
        Storage other = openClient();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey k = key("bucket");

        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(1));
        assertThat(other.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(0));
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.rejected(3_600_000_000L));
        storage.addMember(key("set", k.subject()), Long.MAX_VALUE, now());
        assertThat(other.isMember(key("set", k.subject()), now())).isTrue();
    }

    @Test
    void acquire_agreesWithOneStepEvaluate() {
        List<LimitSpec> specs = List.of(
                new TokenBucket(2, 1, Duration.ofSeconds(1)),
                new FixedWindow(2, Duration.ofSeconds(1)),
                new SlidingWindowLog(2, Duration.ofSeconds(1)),
                new SlidingWindowCounter(2, Duration.ofSeconds(1), 2),
                new Cooldown(Duration.ofMillis(700)),
                Gate.INSTANCE,
                Membership.MUST_BE_ABSENT);
        for (LimitSpec spec : specs) {
            StateKey viaAcquire = key("acquire");
            StateKey viaEvaluate = key("evaluate");
            for (int i = 0; i < 8; i++) {
                long permits = i % 3;
                long a = acquire(viaAcquire, spec, permits);
                long e = evaluate(new Step(viaEvaluate, spec, permits)).outcome(0);
                assertThat(Outcome.toString(a)).as("%s, request %d", spec, i).isEqualTo(Outcome.toString(e));
                ticker.advance(Duration.ofMillis(300));
            }
        }
    }

    @Test
    void evaluateAsync_agreesWithEvaluate() throws Exception {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        Cooldown cooldown = new Cooldown(Duration.ofMillis(500));
        StateKey syncBucket = key("sync-bucket");
        StateKey syncCooldown = key("sync-cooldown");
        StateKey asyncBucket = key("async-bucket");
        StateKey asyncCooldown = key("async-cooldown");
        for (int i = 0; i < 10; i++) {
            BatchResult sync = evaluate(new Step(syncBucket, bucket, 1), new Step(syncCooldown, cooldown, i % 2));
            BatchResult async = storage.evaluateAsync(
                            Batch.of(new Step(asyncBucket, bucket, 1), new Step(asyncCooldown, cooldown, i % 2)), now())
                    .toCompletableFuture()
                    .get(30, TimeUnit.SECONDS);
            assertThat(async).as("request %d", i).isEqualTo(sync);
            ticker.advance(Duration.ofMillis(200));
        }
    }

    @Test
    void evaluateInPlace_reusedBuffer_agreesWithEvaluateAndIsAllOrNothing() {
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        Cooldown duplicate = new Cooldown(Duration.ofMillis(500));
        SlidingWindowLog log = new SlidingWindowLog(4, Duration.ofSeconds(2));
        FixedWindow window = new FixedWindow(5, Duration.ofSeconds(1));
        String viaEvaluate = "user-" + UUID.randomUUID();
        String inPlace = "user-" + UUID.randomUUID();
        StateKey blocklist = key("blocklist", inPlace);
        StateKey blocklistOfOther = key("blocklist", viaEvaluate);
        BatchBuffer buffer = new BatchBuffer(2);
        for (int i = 0; i < 24; i++) {
            // Each text comes twice in a row: the copy rejects the batch, which must then consume nothing.
            String text = "text-" + (i / 2);
            List<Step> steps = new ArrayList<>();
            steps.add(new Step(key("bucket", viaEvaluate), bucket, 1));
            steps.add(new Step(key("duplicate/" + text, viaEvaluate), duplicate, 1));
            steps.add(new Step(key("log", viaEvaluate), log, 1));
            steps.add(new Step(key("window", "chat-of-" + viaEvaluate), window, 1));
            steps.add(new Step(blocklistOfOther, Membership.MUST_BE_ABSENT, 1));
            BatchResult expected = storage.evaluate(new Batch(steps), now());

            buffer.clear();
            for (Step step : steps) {
                StateKey k = step.key();
                String subject = k.subject().equals(viaEvaluate)
                        ? inPlace
                        : k.subject().equals("chat-of-" + viaEvaluate) ? "chat-of-" + inPlace : k.subject();
                buffer.add(k.scope(), subject, step.spec(), step.permits());
            }
            boolean admitted = storage.evaluateInPlace(buffer, now());

            assertThat(buffer.size()).as("request %d", i).isEqualTo(steps.size());
            assertThat(buffer.toResult()).as("request %d", i).isEqualTo(expected);
            assertThat(admitted).as("request %d", i).isEqualTo(expected.admitted());
            assertThat(buffer.admitted()).as("request %d", i).isEqualTo(expected.admitted());
            assertThat(buffer.firstRejected()).as("request %d", i).isEqualTo(expected.firstRejected());
            assertThat(buffer.retryAfterMicros()).as("request %d", i).isEqualTo(expected.retryAfterMicros());
            ticker.advance(Duration.ofMillis(150));
        }
        // Both histories saw rejections, and consumed the same: the next looks agree.
        assertThat(look(key("bucket", inPlace), bucket)).isEqualTo(look(key("bucket", viaEvaluate), bucket));
        assertThat(look(key("log", inPlace), log)).isEqualTo(look(key("log", viaEvaluate), log));

        // Blocked: nothing in the batch consumes, whatever the other steps would have admitted.
        storage.addMember(blocklist, Long.MAX_VALUE, now());
        StateKey freshBucket = key("fresh-bucket", inPlace);
        buffer.clear();
        buffer.add(freshBucket.scope(), inPlace, bucket, 1);
        buffer.add(key("fresh-text", inPlace).scope(), inPlace, duplicate, 1);
        buffer.add(blocklist.scope(), inPlace, Membership.MUST_BE_ABSENT, 1);
        assertThat(storage.evaluateInPlace(buffer, now())).isFalse();
        assertThat(buffer.firstRejected()).isEqualTo(2);
        assertThat(buffer.outcome(0)).isEqualTo(Outcome.admitted(2));
        assertThat(buffer.outcome(2)).isEqualTo(Outcome.NEVER);
        assertThat(look(freshBucket, bucket)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(key("fresh-text", inPlace), duplicate, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluateInPlace_emptyBuffer_isRejectedWithAClearError() {
        assertThatThrownBy(() -> storage.evaluateInPlace(new BatchBuffer(4), now()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("must not be empty");
    }

    @Test
    void health_isUp() {
        StorageHealth health = storage.health();
        assertThat(health.up()).as("health %s", health).isTrue();
        assertThat(health.latency().isNegative())
                .as("latency %s", health.latency())
                .isFalse();
    }

    @Test
    void health_ofAClosedClient_answersWithoutThrowing() {
        StorageHealth open = storage.health();
        assertThat(open.detail()).as("health %s", open).isNotBlank();

        // Last in the test: a backend whose clients share one instance is closed here for the rest of the test.
        Storage other = openClient();
        other.close();
        StorageHealth closed = other.health();
        assertThat(closed).isNotNull();
        assertThat(closed.latency().isNegative()).as("health %s", closed).isFalse();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Races

    /** A factory of daemon threads, for the pools of the races. */
    static ThreadFactory daemons() {
        return runnable -> {
            Thread thread = new Thread(runnable, "guard-tck-race");
            thread.setDaemon(true);
            return thread;
        };
    }

    /** Runs {@code attempt} from {@link #raceThreads()} threads behind one gate; answers how many it admitted. */
    private int race(RaceAttempt attempt) throws Exception {
        List<Storage> clients = new ArrayList<>();
        clients.add(storage);
        while (clients.size() < raceClients()) {
            clients.add(openClient());
        }
        int threads = raceThreads();
        CountDownLatch ready = new CountDownLatch(threads);
        CountDownLatch gate = new CountDownLatch(1);
        // Daemons: a backend that deadlocks fails the race below, and its spinning threads must not keep the JVM (and
        // the
        // build) alive after the test (shutdownNow cannot stop a thread that spins in a backend's lock).
        ExecutorService pool = Executors.newFixedThreadPool(threads, daemons());
        try {
            List<Future<Integer>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Storage client = clients.get(t % clients.size());
                int thread = t;
                futures.add(pool.submit(() -> {
                    ready.countDown();
                    gate.await();
                    int admitted = 0;
                    for (int i = 0; i < raceRequestsPerThread(); i++) {
                        if (attempt.admits(client, thread, i)) {
                            admitted++;
                        }
                    }
                    return admitted;
                }));
            }
            ready.await();
            gate.countDown();
            int total = 0;
            for (Future<Integer> f : futures) {
                try {
                    total += f.get(60, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    throw new AssertionError("a race did not finish within 60 s: a deadlock?", e);
                }
            }
            return total;
        } finally {
            pool.shutdownNow();
        }
    }

    @FunctionalInterface
    private interface RaceAttempt {
        boolean admits(Storage client, int thread, int request);
    }

    private int raceRequests() {
        return raceThreads() * raceRequestsPerThread();
    }

    @Test
    void race_acquireOnOneBucket_admitsExactlyCapacity() throws Exception {
        long capacity = raceRequests() / 2;
        TokenBucket bucket = new TokenBucket(capacity, 1, Duration.ofDays(1));
        StateKey k = key("bucket");
        long at = now();

        int admitted = race((client, thread, i) -> Outcome.isAdmitted(client.acquire(k, bucket, 1, at)));

        assertThat(admitted).isEqualTo(capacity);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(86_400_000_000L));
    }

    @Test
    void race_batchesInOppositeKeyOrders_admitExactlyTheSmallerLimitAndNoDeadlock() throws Exception {
        long windowLimit = raceRequests() / 2;
        long logLimit = Math.min(SlidingWindowLog.MAX_LIMIT, raceRequests() / 3);
        FixedWindow window = new FixedWindow(windowLimit, Duration.ofHours(1));
        SlidingWindowLog log = new SlidingWindowLog(logLimit, Duration.ofHours(1));
        StateKey a = key("window");
        StateKey b = key("log");
        long at = now();

        int admitted = race((client, thread, i) -> {
            Step first = new Step(a, window, 1);
            Step second = new Step(b, log, 1);
            Batch batch = (thread + i) % 2 == 0 ? Batch.of(first, second) : Batch.of(second, first);
            return client.evaluate(batch, at).admitted();
        });

        assertThat(admitted).isEqualTo(logLimit);
        // Rejected batches consumed nothing from the window either.
        assertThat(look(a, window)).isEqualTo(Outcome.admitted(windowLimit - logLimit));
    }

    @Test
    void race_acquireAndBatchesOnOneBucket_admitExactlyCapacity() throws Exception {
        long capacity = raceRequests() / 2;
        TokenBucket bucket = new TokenBucket(capacity, 1, Duration.ofDays(1));
        StateKey k = key("bucket");

        assertThat(raceAcquiresAndBatches(k, bucket)).isEqualTo(capacity);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(86_400_000_000L));
    }

    /**
     * Races single steps of one permit of {@code spec} on {@code k} against batches that take one permit there and one
     * on a key of their own; answers how many were admitted.
     */
    private int raceAcquiresAndBatches(StateKey k, LimitSpec spec) throws Exception {
        long at = now();
        return race((client, thread, i) -> {
            if ((thread + i) % 2 == 0) {
                return Outcome.isAdmitted(client.acquire(k, spec, 1, at));
            }
            // A second step of its own, so that the batch cannot take a single-step path.
            StateKey own = key("own-" + thread + "-" + i, k.subject());
            return client.evaluate(Batch.of(new Step(own, spec, 1), new Step(k, spec, 1)), at)
                    .admitted();
        });
    }

    @Test
    void race_acquireAndBatchesOnOneFixedWindow_admitExactlyTheLimit() throws Exception {
        long limit = raceRequests() / 2;
        FixedWindow window = new FixedWindow(limit, Duration.ofHours(1));
        StateKey k = key("window");

        assertThat(raceAcquiresAndBatches(k, window)).isEqualTo(limit);
        long windowEnd = (Math.floorDiv(now(), window.windowMicros()) + 1) * window.windowMicros();
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(windowEnd - now()));
    }

    @Test
    void race_acquireOnOneFixedWindow_admitsExactlyTheLimit() throws Exception {
        // Single steps only, so that no batch owns the key meanwhile: every request takes a backend's shortest path.
        // Several rounds on fresh keys, each exact: a lost update shows only when requests overlap, which the first
        // round's threads, still starting, seldom do.
        long limit = raceRequests() / 2;
        FixedWindow window = new FixedWindow(limit, Duration.ofHours(1));
        long windowEnd = (Math.floorDiv(now(), window.windowMicros()) + 1) * window.windowMicros();
        long at = now();
        for (int round = 0; round < 4; round++) {
            StateKey k = key("window-" + round);

            int admitted = race((client, thread, i) -> Outcome.isAdmitted(client.acquire(k, window, 1, at)));

            assertThat(admitted).as("round %d", round).isEqualTo(limit);
            assertThat(acquire(k, window, 1)).as("round %d", round).isEqualTo(Outcome.rejected(windowEnd - now()));
        }
    }

    @Test
    void race_cooldownOnOneKey_admitsExactlyOne() throws Exception {
        Cooldown cooldown = new Cooldown(Duration.ofMinutes(1));
        StateKey k = key("cooldown");
        long at = now();

        int admitted = race((client, thread, i) -> Outcome.isAdmitted(client.acquire(k, cooldown, 1, at)));

        assertThat(admitted).isEqualTo(1);
    }

    @Test
    void race_putRecordCompareAndSet_losesNoIncrement() throws Exception {
        StateKey k = key("record");
        int increments = 25;

        race((client, thread, i) -> {
            if (i >= increments) {
                return false;
            }
            while (true) {
                Optional<VersionedRecord> current = client.getRecord(k);
                long version = current.map(VersionedRecord::version).orElse(0L);
                long count =
                        current.map(r -> ByteBuffer.wrap(r.value()).getLong()).orElse(0L);
                byte[] next = ByteBuffer.allocate(8).putLong(count + 1).array();
                if (client.putRecord(k, next, version) >= 0) {
                    return true;
                }
            }
        });

        long total = (long) raceThreads() * Math.min(increments, raceRequestsPerThread());
        VersionedRecord record = storage.getRecord(k).orElseThrow();
        assertThat(record.version()).isEqualTo(total);
        assertThat(ByteBuffer.wrap(record.value()).getLong()).isEqualTo(total);
    }

    @Test
    void race_acquireAndBatchesOnOneSlidingWindowLog_admitExactlyTheLimit() throws Exception {
        long limit = Math.min(SlidingWindowLog.MAX_LIMIT, raceRequests() / 3);
        SlidingWindowLog log = new SlidingWindowLog(limit, Duration.ofHours(1));
        StateKey k = key("log");

        assertThat(raceAcquiresAndBatches(k, log)).isEqualTo(limit);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.rejected(3_600_000_000L));
    }

    @Test
    void race_acquireAndBatchesOnOneSlidingWindowCounter_admitExactlyTheLimit() throws Exception {
        long limit = raceRequests() / 3;
        // Sub-buckets of 15 minutes: every permit is in the current one, which stops counting when the fifth after
        // it begins.
        SlidingWindowCounter counter = new SlidingWindowCounter(limit, Duration.ofHours(1), 4);
        StateKey k = key("counter");

        assertThat(raceAcquiresAndBatches(k, counter)).isEqualTo(limit);
        long bucketMicros = counter.bucketMicros();
        long leaves = (Math.floorDiv(now(), bucketMicros) + 5) * bucketMicros;
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.rejected(leaves - now()));
    }

    @Test
    void race_acquireAndBatchesOnOneDuplicateWindow_admitTheItemOnce() throws Exception {
        DuplicateWindow window = new DuplicateWindow(Duration.ofHours(1), 4);
        StateKey k = key("duplicates");

        // Every request carries item 1 (a step's permits).
        assertThat(raceAcquiresAndBatches(k, window)).isEqualTo(1);
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.rejected(3_600_000_000L));
    }

    @Test
    void race_raiseGate_keepsTheLatestDeadline() throws Exception {
        StateKey k = key("gate");
        long at = now();
        int perThread = raceRequestsPerThread();

        // Every raise answers a deadline at least its own, and never one earlier than what its thread saw before (the
        // deadline in force only moves forward); the latest of all stays.
        long[] seen = new long[raceThreads()];
        int answered = race((client, thread, i) -> {
            long until = at + (long) (thread * perThread + i + 1) * 1_000;
            long answer = client.raiseGate(k, until, at);
            boolean merged = answer >= until && answer >= seen[thread];
            seen[thread] = answer;
            return merged;
        });

        assertThat(answered).isEqualTo(raceRequests());
        long latest = at + (long) raceRequests() * 1_000;
        assertThat(acquire(k, Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(latest - now()));
        assertThat(storage.raiseGate(k, at + 1, at)).isEqualTo(latest);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Differential test against the reference

    @Test
    void evaluate_randomHistories_answerExactlyAsTheReference() {
        runRandomHistories(
                0x9E3779B97F4A7C15L,
                "seed",
                (seed, clients, keys, start) -> new RandomHistory(seed, clients, keys, start, this::maintain));
    }

    @Test
    void evaluate_randomHistoriesWhoseLimitsChange_answerExactlyAsTheReference() {
        // Deploys change a filter's limit under the same name, so one key is read and written by several limits.
        runRandomHistories(
                0xC2B2AE3D27D4EB4FL,
                "mixed",
                (seed, clients, keys, start) ->
                        RandomHistory.mixed(seed, clients, keys, start, this::maintain, knowsWhichLimitWroteAState()));
    }

    @Test
    void evaluate_randomHistoriesAtTheEdges_answerExactlyAsTheReference() {
        // Limits, permits and times at the extremes that are still valid, in every era of the time line the backend
        // accepts, in ascending order (a history never passes a time earlier than one the backend has seen): where
        // hand-made limits found a Lua rounding and an expiry that wrapped around, and everyday histories never go.
        List<Storage> clients = List.of(storage, openClient());
        boolean before1970 = acceptsClocksBefore1970();
        boolean after2255 = acceptsClocksAfter2255();
        for (RandomHistory.Era era : RandomHistory.Era.values()) {
            if (!era.runsOn(before1970, after2255)) {
                continue;
            }
            // One history per era (two would go back in time), whose keys also change their limits: the same era
            // gets the same seed on every backend.
            int n = era.ordinal() + 1;
            String name = "edges" + n + "/";
            RandomHistory.atTheEdges(
                            0xD6E8FEB86659FD93L * n,
                            "evaluate_randomHistoriesAtTheEdges #" + n,
                            clients,
                            k -> key(name + k),
                            this::maintain,
                            era,
                            T0,
                            knowsWhichLimitWroteAState(),
                            before1970,
                            after2255)
                    .run(differentialOperations() / 2);
        }
    }

    /** Makes one random history: its seed, the clients it compares, its keys by name, and its first time. */
    private interface HistoryMaker {
        RandomHistory make(long seed, List<Storage> clients, Function<String, StateKey> keys, long startMicros);
    }

    /**
     * Runs {@link #differentialSeeds()} histories of {@link #differentialOperations()} operations each, made by
     * {@code maker} with seeds {@code seedStep} apart and keys under {@code prefix} and the history's number; each
     * history starts an hour after the last one ended, since the backend has seen those times.
     */
    private void runRandomHistories(long seedStep, String prefix, HistoryMaker maker) {
        List<Storage> clients = List.of(storage, openClient());
        long start = T0;
        for (int i = 1; i <= differentialSeeds(); i++) {
            String seedPrefix = prefix + i + "/";
            RandomHistory history = maker.make(seedStep * i, clients, name -> key(seedPrefix + name), start);
            history.run(differentialOperations());
            start = history.newest() + 3_600 * SECOND;
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Expiry: state acts as absent exactly at its ttl, and eviction never grants extra quota

    /**
     * With the limit at {@code k} filled, checks that {@code permits} are still rejected (retry after 1 microsecond)
     * just before {@code endMicros}, even after the backend's expiry work, and pass at {@code endMicros}, leaving
     * {@code remaining}.
     */
    private void assertHoldsUntil(StateKey k, LimitSpec spec, long endMicros, long permits, long remaining) {
        expireUntil(endMicros - 1);
        assertThat(acquire(k, spec, permits)).as("%s just before its ttl", spec).isEqualTo(Outcome.rejected(1));
        expireUntil(endMicros);
        assertThat(acquire(k, spec, permits)).as("%s at its ttl", spec).isEqualTo(Outcome.admitted(remaining));
    }

    @Test
    void expiry_tokenBucket_justBeforeFullRefillStillRejects() {
        TokenBucket bucket = new TokenBucket(4, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 4)).isEqualTo(Outcome.admitted(0));
        // One tick short of full until the fourth second has passed entirely.
        assertHoldsUntil(k, bucket, T0 + 4 * SECOND, 4, 0);
    }

    @Test
    void expiry_fixedWindow_holdsUntilWindowEnds() {
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(10));
        StateKey k = key("window");

        at(T0 + 3 * SECOND);
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, window, T0 + 10 * SECOND, 2, 0);
    }

    @Test
    void expiry_slidingWindowLog_holdsUntilNewestPermitLeaves() {
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(5));
        StateKey k = key("log");

        assertThat(acquire(k, log, 2)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, log, T0 + 5 * SECOND, 2, 0);
    }

    @Test
    void expiry_slidingWindowCounter_holdsUntilSubBucketLeaves() {
        // Sub-buckets of 2 s; [T0, T0+2s) stops counting when the bucket at T0+6s begins.
        SlidingWindowCounter counter = new SlidingWindowCounter(2, Duration.ofSeconds(4), 2);
        StateKey k = key("counter");

        assertThat(acquire(k, counter, 2)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, counter, T0 + 6 * SECOND, 2, 0);
    }

    @Test
    void expiry_cooldown_holdsUntilPeriodEnds() {
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(3));
        StateKey k = key("cooldown");

        assertThat(acquire(k, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, cooldown, T0 + 3 * SECOND, 1, 0);
    }

    @Test
    void expiry_gate_holdsUntilDeadline() {
        StateKey k = key("gate");

        storage.raiseGate(k, T0 + 7 * SECOND, now());
        assertHoldsUntil(k, Gate.INSTANCE, T0 + 7 * SECOND, 1, Long.MAX_VALUE);
        assertThat(storage.raiseGate(k, T0 + 9 * SECOND, now())).isEqualTo(T0 + 9 * SECOND);
    }

    @Test
    void expiry_membership_holdsUntilExpiry() {
        StateKey k = key("blocklist");

        storage.addMember(k, T0 + 9 * SECOND, now());
        expireUntil(T0 + 9 * SECOND - 1);
        assertThat(storage.isMember(k, now())).isTrue();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.rejected(1));
        expireUntil(T0 + 9 * SECOND);
        assertThat(storage.isMember(k, now())).isFalse();
        assertThat(acquire(k, Membership.MUST_BE_ABSENT, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    @Test
    void expiry_longAfterTtl_leavesOnlyFreshState() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        StateKey bucketKey = key("bucket");
        StateKey cooldownKey = key("cooldown");

        assertThat(acquire(bucketKey, bucket, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(cooldownKey, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        expireUntil(T0 + Duration.ofDays(2).toNanos() / 1_000);
        assertThat(acquire(bucketKey, bucket, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(cooldownKey, cooldown, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(cooldownKey, cooldown, 1)).isEqualTo(Outcome.rejected(1_000_000));
    }

    @Test
    void expiry_duplicateWindow_holdsUntilTheItemsWindowEnds() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(3), 2);
        StateKey k = key("duplicates");

        assertThat(acquire(k, window, 9)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, window, T0 + 3 * SECOND, 9, 0);
    }

    @Test
    void expiry_ofKeysAmongManyKeysOfTheirSubject_holdsUntilTheirTtl_whileTheSubjectGainsKeys() {
        // A subject's limits, filled a second time at T0+10s so that they last a whole window after their first use,
        // beside short cooldowns that expired long before: keys that the subject gains just before the limits' ttl
        // (a backend that keeps a subject's keys together drops expired ones meanwhile) leave the limits in force.
        String subject = "user-" + UUID.randomUUID();
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(10));
        TokenBucket bucket = new TokenBucket(2, 2, Duration.ofSeconds(10));
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(10));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        Map<StateKey, LimitSpec> limits = new LinkedHashMap<>();
        limits.put(key("window", subject), window);
        limits.put(key("bucket", subject), bucket);
        limits.put(key("log", subject), log);
        limits.forEach(
                (k, spec) -> assertThat(acquire(k, spec, 2)).as("%s", spec).isEqualTo(Outcome.admitted(0)));
        for (int i = 0; i < 8; i++) {
            assertThat(acquire(key("early-" + i, subject), cooldown, 1)).isEqualTo(Outcome.admitted(0));
        }
        at(T0 + 10 * SECOND);
        limits.forEach(
                (k, spec) -> assertThat(acquire(k, spec, 2)).as("%s", spec).isEqualTo(Outcome.admitted(0)));

        long end = T0 + 20 * SECOND;
        expireUntil(end - 1);
        for (int i = 0; i < 40; i++) {
            assertThat(acquire(key("late-" + i, subject), cooldown, 1)).isEqualTo(Outcome.admitted(0));
        }
        limits.forEach((k, spec) -> assertThat(acquire(k, spec, 2))
                .as("%s just before its ttl", spec)
                .isEqualTo(Outcome.rejected(1)));
        expireUntil(end);
        limits.forEach((k, spec) ->
                assertThat(acquire(k, spec, 2)).as("%s at its ttl", spec).isEqualTo(Outcome.admitted(0)));
    }

    // State last committed by a caller whose clock was behind the newest time lives by that newest time: its ttl from
    // the caller's now is longer than the limit's longest.

    @Test
    void expiry_tokenBucketCommittedByAClockThatWentBack_holdsUntilRefilledFromItsNewestTime() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(1));
        at(T0 + 3 * SECOND);
        // Empty now, and refilling from T0+5s: full at T0+7s, four seconds after this commit's time.
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, bucket, T0 + 7 * SECOND, 2, 0);
    }

    @Test
    void expiry_slidingWindowLogCommittedByAClockThatWentBack_holdsUntilItsNewestPermitLeaves() {
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(10));
        StateKey k = key("log");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(1));
        at(T0 + 3 * SECOND);
        assertThat(acquire(k, log, 1)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, log, T0 + 15 * SECOND, 2, 0);
    }

    @Test
    void expiry_slidingWindowCounterCommittedByAClockThatWentBack_holdsUntilItsNewestSubBucketLeaves() {
        SlidingWindowCounter counter = new SlidingWindowCounter(2, Duration.ofSeconds(4), 2);
        StateKey k = key("counter");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.admitted(1));
        at(T0 + SECOND);
        // Counted in the sub-bucket [T0+4s, T0+6s), which stops counting at T0+10s.
        assertThat(acquire(k, counter, 1)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, counter, T0 + 10 * SECOND, 2, 0);
    }

    @Test
    void expiry_duplicateWindowCommittedByAClockThatWentBack_holdsUntilTheNewestItemsWindowEnds() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 2);
        StateKey k = key("duplicates");

        at(T0 + 5 * SECOND);
        assertThat(acquire(k, window, 1)).isEqualTo(Outcome.admitted(0));
        at(T0 + 3 * SECOND);
        assertThat(acquire(k, window, 2)).isEqualTo(Outcome.admitted(0));
        assertHoldsUntil(k, window, T0 + 15 * SECOND, 2, 0);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // forget

    @Test
    void forget_subject_removesItsStateSetsAndRecordsAndNothingElse() {
        String subject = "user-" + UUID.randomUUID();
        // A subject that extends the forgotten one, and one with the same scopes: both must survive.
        String longer = subject + "0";
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        Cooldown cooldown = new Cooldown(Duration.ofHours(1));
        for (String s : List.of(subject, longer)) {
            assertThat(acquire(key("bucket", s), bucket, 2)).isEqualTo(Outcome.admitted(1));
            assertThat(acquire(key("cooldown", s), cooldown, 1)).isEqualTo(Outcome.admitted(0));
            storage.addMember(key("blocklist", s), Long.MAX_VALUE, now());
            storage.raiseGate(key("gate", s), T0 + 100 * SECOND, now());
            assertThat(storage.putRecord(key("record", s), new byte[] {1}, 0)).isEqualTo(1);
        }

        assertThat(storage.forget(subject)).isEqualTo(5);

        assertThat(acquire(key("bucket", subject), bucket, 3)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(key("cooldown", subject), cooldown, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.isMember(key("blocklist", subject), now())).isFalse();
        assertThat(acquire(key("gate", subject), Gate.INSTANCE, 1)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.getRecord(key("record", subject))).isEmpty();

        assertThat(acquire(key("bucket", longer), bucket, 2)).isEqualTo(Outcome.rejected(3_600_000_000L));
        assertThat(acquire(key("cooldown", longer), cooldown, 1)).isEqualTo(Outcome.rejected(3_600_000_000L));
        assertThat(storage.isMember(key("blocklist", longer), now())).isTrue();
        assertThat(acquire(key("gate", longer), Gate.INSTANCE, 1)).isEqualTo(Outcome.rejected(100_000_000));
        assertThat(storage.getRecord(key("record", longer)).orElseThrow().version())
                .isEqualTo(1);
    }

    @Test
    void forget_countsOnlyKeysThatHoldState_notKeysThatWereOnlyReadOrRejected() {
        // Beside one bucket that holds state, keys of the subject that nothing was stored at: looks that leave no state
        // (a bucket's, a log's, a cooldown's), steps that were rejected (alone, or in a batch that a gate rejects),
        // and reads of a gate and of a set. In the reference none of them is a key, so forget removes one.
        String subject = "user-" + UUID.randomUUID();
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(10));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        FixedWindow window = new FixedWindow(3, Duration.ofSeconds(10));
        SlidingWindowCounter counter = new SlidingWindowCounter(3, Duration.ofSeconds(10), 2);
        StateKey gate = key("gate", "gate-" + UUID.randomUUID());
        storage.raiseGate(gate, T0 + SECOND, now());
        assertThat(acquire(key("held", subject), bucket, 1)).isEqualTo(Outcome.admitted(2));

        assertThat(look(key("looked-bucket", subject), bucket)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(key("looked-log", subject), log, 0)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(key("looked-cooldown", subject), cooldown, 0)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(key("too-many", subject), bucket, 4)).isEqualTo(Outcome.NEVER);
        assertThat(evaluate(
                                new Step(key("rejected-bucket", subject), bucket, 1),
                                new Step(key("rejected-window", subject), window, 1),
                                new Step(key("rejected-counter", subject), counter, 1),
                                new Step(key("rejected-log", subject), log, 1),
                                new Step(key("rejected-cooldown", subject), cooldown, 1),
                                new Step(gate, Gate.INSTANCE, 1))
                        .firstRejected())
                .isEqualTo(5);
        assertThat(look(key("gate", subject), Gate.INSTANCE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(storage.isMember(key("set", subject), now())).isFalse();
        assertThat(acquire(key("registered", subject), Membership.MUST_BE_PRESENT, 1))
                .isEqualTo(Outcome.NEVER);

        assertThat(storage.forget(subject)).isEqualTo(1);
        assertThat(storage.forget(subject)).isZero();
    }

    @Test
    void forget_again_removesNothing() {
        String subject = "user-" + UUID.randomUUID();
        storage.addMember(key("blocklist", subject), Long.MAX_VALUE, now());

        assertThat(storage.forget(subject)).isEqualTo(1);
        assertThat(storage.forget(subject)).isZero();
    }

    @Test
    void forget_subjectWithPatternCharacters_matchesItLiterally() {
        String base = "user-" + UUID.randomUUID();
        String pattern = base + "*%[ab]_?";
        // What the subject matches as a glob (Redis SCAN MATCH) and as a SQL LIKE pattern.
        String globMatch = base + "Q%a_Z";
        String likeMatch = base + "*Q[ab]Z?";
        for (String s : List.of(pattern, globMatch, likeMatch)) {
            storage.addMember(key("blocklist", s), Long.MAX_VALUE, now());
        }

        assertThat(storage.forget(pattern)).isEqualTo(1);
        assertThat(storage.isMember(key("blocklist", pattern), now())).isFalse();
        assertThat(storage.isMember(key("blocklist", globMatch), now())).isTrue();
        assertThat(storage.isMember(key("blocklist", likeMatch), now())).isTrue();
    }

    @Test
    void forget_subject_leavesSubjectsAndScopesThatMerelyResembleIt() {
        String base = "user-" + UUID.randomUUID();
        String subject = base + "-1";
        // Longer and shorter subjects that share its beginning ("user-10" and "user-1"), or its end, or differ only in
        // case or by a trailing space (which some SQL collations ignore), and a key whose scope names it.
        List<String> others = List.of(
                base + "-10",
                base + "-",
                base,
                "x" + subject,
                "{" + subject + "}",
                subject + "\n",
                subject + " ",
                subject.toUpperCase(Locale.ROOT));
        StateKey namedInScope = key("of/" + subject, base + "-2");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        for (String s : others) {
            storage.addMember(key("set", s), Long.MAX_VALUE, now());
        }
        storage.addMember(namedInScope, Long.MAX_VALUE, now());
        storage.addMember(key("set", subject), Long.MAX_VALUE, now());
        assertThat(acquire(key("bucket", subject), bucket, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.putRecord(key("record", subject), bytes("profile"), 0))
                .isEqualTo(1);

        assertThat(storage.forget(base + "-10")).isEqualTo(1);
        assertThat(storage.isMember(key("set", subject), now())).isTrue();
        assertThat(storage.forget(subject)).isEqualTo(3);

        assertThat(storage.isMember(key("set", subject), now())).isFalse();
        assertThat(acquire(key("bucket", subject), bucket, 2)).isEqualTo(Outcome.admitted(0));
        assertThat(storage.getRecord(key("record", subject))).isEmpty();
        assertThat(storage.isMember(key("set", base + "-10"), now())).isFalse();
        for (String s : others.subList(1, others.size())) {
            assertThat(storage.isMember(key("set", s), now()))
                    .as("member %s", s)
                    .isTrue();
        }
        assertThat(storage.isMember(namedInScope, now())).isTrue();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Records

    @Test
    void putRecord_versions_startAtOneAndGrowByOne() {
        StateKey k = key("record");

        assertThat(storage.getRecord(k)).isEmpty();
        assertThat(storage.putRecord(k, bytes("first"), 0)).isEqualTo(1);
        assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("first"), 1));
        assertThat(storage.putRecord(k, bytes("second"), 1)).isEqualTo(2);
        assertThat(storage.putRecord(k, bytes("third"), 2)).isEqualTo(3);
        assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("third"), 3));
    }

    @Test
    void putRecord_staleVersion_conflictsAndChangesNothing() {
        StateKey k = key("record");

        assertThat(storage.putRecord(k, bytes("mine"), 1)).isEqualTo(-1);
        assertThat(storage.getRecord(k)).isEmpty();
        assertThat(storage.putRecord(k, bytes("first"), 0)).isEqualTo(1);
        assertThat(storage.putRecord(k, bytes("again"), 0)).isEqualTo(-1);
        assertThat(storage.putRecord(k, bytes("ahead"), 2)).isEqualTo(-1);
        assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("first"), 1));
    }

    @Test
    void putRecord_valueArray_isCopied() {
        StateKey k = key("record");
        byte[] value = {1, 2, 3};

        storage.putRecord(k, value, 0);
        value[0] = 9;
        assertThat(storage.getRecord(k).orElseThrow().value()).containsExactly(1, 2, 3);
    }

    @Test
    void putRecord_emptyAndLargeValues_roundTrip() {
        StateKey empty = key("empty");
        StateKey large = key("large");
        byte[] big = new byte[64 * 1024];
        for (int i = 0; i < big.length; i++) {
            big[i] = (byte) (i * 31 + 7);
        }

        assertThat(storage.putRecord(empty, new byte[0], 0)).isEqualTo(1);
        assertThat(storage.putRecord(large, big, 0)).isEqualTo(1);
        assertThat(storage.getRecord(empty).orElseThrow().value()).isEmpty();
        assertThat(storage.getRecord(large).orElseThrow().value()).isEqualTo(big);
    }

    @Test
    void records_neverExpireOnTheirOwn() {
        StateKey k = key("record");

        storage.putRecord(k, bytes("kept"), 0);
        expireUntil(T0 + Duration.ofDays(3_650).toNanos() / 1_000);
        assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("kept"), 1));
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void records_forgotten_startAgainAtVersionOne() {
        String subject = "user-" + UUID.randomUUID();
        StateKey k = key("record", subject);
        assertThat(storage.putRecord(k, bytes("first"), 0)).isEqualTo(1);
        assertThat(storage.putRecord(k, bytes("second"), 1)).isEqualTo(2);

        assertThat(storage.forget(subject)).isEqualTo(1);

        assertThat(storage.getRecord(k)).isEmpty();
        assertThat(storage.putRecord(k, bytes("stale"), 2)).isEqualTo(-1);
        assertThat(storage.getRecord(k)).isEmpty();
        assertThat(storage.putRecord(k, bytes("again"), 0)).isEqualTo(1);
        assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("again"), 1));
    }

    @Test
    void putRecord_atAKeyHoldingLimitGateOrMembership_findsNoRecordAndStartsAtVersionOne() {
        StateKey bucketKey = key("bucket");
        StateKey gate = key("gate");
        StateKey member = key("blocklist");
        assertThat(acquire(bucketKey, new TokenBucket(1, 1, Duration.ofHours(1)), 1))
                .isEqualTo(Outcome.admitted(0));
        storage.raiseGate(gate, T0 + 3_600 * SECOND, now());
        storage.addMember(member, Long.MAX_VALUE, now());

        for (StateKey k : List.of(bucketKey, gate, member)) {
            assertThat(storage.getRecord(k)).as("record at %s", k.scope()).isEmpty();
            assertThat(storage.putRecord(k, bytes("stale"), 1))
                    .as("stale put at %s", k.scope())
                    .isEqualTo(-1);
            assertThat(storage.getRecord(k)).as("record at %s", k.scope()).isEmpty();
            assertThat(storage.putRecord(k, bytes("new"), 0))
                    .as("put at %s", k.scope())
                    .isEqualTo(1);
            assertThat(storage.putRecord(k, bytes("next"), 1))
                    .as("next put at %s", k.scope())
                    .isEqualTo(2);
            assertThat(storage.getRecord(k))
                    .as("record at %s", k.scope())
                    .contains(new VersionedRecord(bytes("next"), 2));
        }
    }

    @Test
    void records_atAKeyThatGatesAndMembershipsCheck_stay() {
        StateKey k = key("profile");
        StateKey bucketKey = key("bucket");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        assertThat(storage.putRecord(k, new byte[] {1, 2, 3}, 0)).isEqualTo(1);

        // Checks only read: an admitted batch that checks the record's key as a gate and as a set changes nothing
        // there, and neither does a rejected check or isMember.
        assertThat(evaluate(new Step(k, Gate.INSTANCE, 1), new Step(bucketKey, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(Long.MAX_VALUE), Outcome.admitted(1)));
        assertThat(evaluate(new Step(k, Membership.MUST_BE_ABSENT, 1), new Step(bucketKey, bucket, 1)))
                .isEqualTo(BatchResult.of(Outcome.admitted(Long.MAX_VALUE), Outcome.admitted(0)));
        assertThat(acquire(k, Membership.MUST_BE_PRESENT, 1)).isEqualTo(Outcome.NEVER);
        assertThat(storage.isMember(k, now())).isFalse();

        assertThat(storage.getRecord(k)).contains(new VersionedRecord(new byte[] {1, 2, 3}, 1));
        assertThat(storage.putRecord(k, new byte[] {4}, 1)).isEqualTo(2);
    }

    @Test
    void records_afterALimitCommitsAtTheirKey_answerGetAndPutConsistently() {
        StateKey k = key("profile");
        assertThat(storage.putRecord(k, bytes("v1"), 0)).isEqualTo(1);
        assertThat(acquire(k, new TokenBucket(2, 1, Duration.ofHours(1)), 1)).isEqualTo(Outcome.admitted(1));

        // Whether the record survives is the backend's (see limitStepsOnARecordsKey_thatAreRejected_leaveTheRecord);
        // either way, what getRecord answers is what putRecord compares with.
        Optional<VersionedRecord> kept = storage.getRecord(k);
        if (kept.isPresent()) {
            assertThat(kept).contains(new VersionedRecord(bytes("v1"), 1));
            assertThat(storage.putRecord(k, bytes("v2"), 0)).isEqualTo(-1);
            assertThat(storage.putRecord(k, bytes("v2"), 1)).isEqualTo(2);
            assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("v2"), 2));
        } else {
            assertThat(storage.putRecord(k, bytes("v2"), 1)).isEqualTo(-1);
            assertThat(storage.putRecord(k, bytes("v2"), 0)).isEqualTo(1);
            assertThat(storage.getRecord(k)).contains(new VersionedRecord(bytes("v2"), 1));
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Keys of any content

    @Test
    void keys_ofAnyContent_neverCollide() {
        String tenKb = "k".repeat(10 * 1024);
        String[][] pairs = {
            {"plain", "user"},
            {"plain", ""},
            {"plain", " "},
            {"plain", "a b"},
            {"plain", "a\nb"},
            {"plain", "a\r\nb"},
            {"plain", "{user}"},
            {"plain", "{"},
            {"plain", "}"},
            {"plain", "\"'`"},
            {"plain", "\0"},
            {"plain", "a\0b"},
            {"plain", "ユーザー😀"},
            {"plain", "\u00e9"},
            {"plain", "e\u0301"},
            {"plain", "*"},
            {"plain", "%"},
            {"plain", "_"},
            {"plain", "'; DROP TABLE guard_state; --"},
            // Collision bait for encodings that join scope and subject with a separator.
            {"a:b", "c"},
            {"a", "b:c"},
            {"a\0b", "c"},
            {"a", "b\0c"},
            {"a|b", "c"},
            {"a", "b|c"},
            {"a/b", "c"},
            {"a", "b/c"},
            {"a{b}", "c"},
            {"a", "{b}c"},
            {tenKb, tenKb},
            {tenKb, tenKb + "x"},
            {tenKb + "x", tenKb},
            {"ユーザー😀\n{x}\"", tenKb},
        };
        TokenBucket one = new TokenBucket(1, 1, Duration.ofHours(1));
        List<StateKey> keys = new ArrayList<>();
        // Each pair as it is, and with a salt that makes its subject unique to this test (forget below uses one).
        String salt = UUID.randomUUID().toString();
        for (String[] pair : pairs) {
            keys.add(key(pair[0], pair[1]));
            keys.add(key(pair[0], pair[1] + salt));
        }

        assertKeysApart(keys, one, 2);
        // The salted "a\nb" (odd, so in no set) has a bucket and a record; forget removes exactly those.
        StateKey forgotten = keys.get(9);
        assertThat(storage.forget(forgotten.subject())).isEqualTo(2);
        assertThat(acquire(forgotten, one, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(keys.get(8), one, 1)).isEqualTo(Outcome.rejected(3_600_000_000L));
    }

    @Test
    void keys_withUnpairedSurrogatesAndEscapeLookalikes_neverCollide() {
        // UTF-8 has no form for an unpaired surrogate: an encoder that replaces them merges them with each other and
        // with '?'. And text that looks like a backend's escapes must stay apart from what those escapes stand for.
        String tenKb = "k".repeat(10 * 1024);
        String[] texts = {
            "\uD800",
            "\uDBFF",
            "\uDC00",
            "\uDFFF",
            "?",
            "\uFFFD",
            "\0",
            "\uD800\uDC00",
            "\uDC00\uD800",
            "a\uD83Db",
            "a\uDE00b",
            "a?b",
            "%uD800",
            "%ud800",
            "%",
            "%25",
            "%7B",
            "\\",
            tenKb + "\uD800",
            tenKb + "?",
        };
        TokenBucket one = new TokenBucket(1, 1, Duration.ofHours(1));
        List<StateKey> keys = new ArrayList<>();
        // Each text as a subject (salted, so that forget below touches this test only) and as a scope.
        String salt = UUID.randomUUID().toString();
        for (String text : texts) {
            keys.add(key("surrogates", text + salt));
            keys.add(key("surrogates/" + text, salt));
        }

        assertKeysApart(keys, one, 4);
        // "\uD800" + salt has a bucket, a record and a membership; forget removes exactly those, not "?" + salt's.
        StateKey forgotten = keys.get(0);
        assertThat(storage.forget(forgotten.subject())).isEqualTo(3);
        assertThat(acquire(forgotten, one, 1)).isEqualTo(Outcome.admitted(0));
        for (int i = 2; i < keys.size(); i += 2) {
            assertThat(acquire(keys.get(i), one, 1))
                    .as("bucket of %s after forget", keys.get(i))
                    .isEqualTo(Outcome.rejected(3_600_000_000L));
        }
    }

    @Test
    void keys_whoseTextsShareAHashCode_neverCollide() {
        // "Aa" and "BB" have one String.hashCode, and so has any text that puts them at the same place: a backend that
        // finds keys by a hash (a scan of a subject's slots, a hash index) must still compare the texts. As scopes of
        // one subject (its first keys, then beside others) and as subjects of one scope.
        String[] texts = {"Aa", "BB", "AaAa", "AaBB", "BBAa", "BBBB"};
        String salt = UUID.randomUUID().toString();
        String subject = "user-" + salt;
        List<StateKey> keys = new ArrayList<>();
        for (String text : texts) {
            keys.add(key("hash/" + text, subject));
        }
        for (String text : texts) {
            keys.add(key("hash", text + salt));
        }
        // The premise: the scopes of "Aa" and "BB", of "AaAa" and "BBBB", and the subjects "Aa" + salt and "BB" + salt
        // share their hash codes.
        assertThat(keys.get(0).scope().hashCode()).isEqualTo(keys.get(1).scope().hashCode());
        assertThat(keys.get(2).scope().hashCode()).isEqualTo(keys.get(5).scope().hashCode());
        assertThat(keys.get(6).subject().hashCode())
                .isEqualTo(keys.get(7).subject().hashCode());

        TokenBucket one = new TokenBucket(1, 1, Duration.ofHours(1));
        assertKeysApart(keys, one, 2);
        // "BB" + salt has a bucket and a record (odd: no membership); forget removes exactly those, not "Aa" + salt's.
        StateKey forgotten = keys.get(7);
        assertThat(storage.forget(forgotten.subject())).isEqualTo(2);
        assertThat(acquire(forgotten, one, 1)).isEqualTo(Outcome.admitted(0));
        for (int i = 6; i < keys.size(); i++) {
            if (i != 7) {
                assertThat(acquire(keys.get(i), one, 1))
                        .as("bucket of %s after forget", keys.get(i))
                        .isEqualTo(Outcome.rejected(3_600_000_000L));
                assertThat(storage.getRecord(new StateKey(
                                keys.get(i).scope() + "#record", keys.get(i).subject())))
                        .as("record of %s after forget", keys.get(i))
                        .isPresent();
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Bad arguments

    @Test
    void nullArguments_areRefusedNamingTheArgument() {
        StateKey k = key("null");
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofSeconds(1));
        Map<String, ThrowingCallable> calls = new LinkedHashMap<>();
        calls.put("batch", () -> storage.evaluate(null, now()));
        calls.put("key", () -> storage.acquire(null, bucket, 1, now()));
        calls.put("spec", () -> storage.acquire(k, null, 1, now()));
        calls.put("key ", () -> storage.raiseGate(null, now() + SECOND, now()));
        calls.put("key  ", () -> storage.addMember(null, now() + SECOND, now()));
        calls.put("key   ", () -> storage.isMember(null, now()));
        calls.put("key    ", () -> storage.removeMember(null));
        calls.put("key     ", () -> storage.getRecord(null));
        calls.put("value", () -> storage.putRecord(k, null, 0));
        calls.put("subject", () -> storage.forget(null));
        calls.forEach((argument, call) -> assertThatThrownBy(call)
                .as(argument.strip())
                .isInstanceOf(NullPointerException.class)
                .hasMessage(argument.strip() + " must not be null"));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void putRecord_negativeExpectedVersion_isRejectedWithMessage() {
        StateKey k = key("record");

        assertThatThrownBy(() -> storage.putRecord(k, bytes("x"), -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("expectedVersion must not be negative but was -1");
        assertThat(storage.getRecord(k)).isEmpty();
    }

    @Test
    void acquire_negativePermits_isRejectedWithMessage() {
        StateKey k = key("bucket");
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofSeconds(1));

        assertThatThrownBy(() -> storage.acquire(k, bucket, -1, now()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -1");
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void acquire_negativePermits_ofEveryKind_isRefusedNamingThemAndChangesNothing() {
        // For each kind: how a key gets state, and a probe whose answer shows that state (a look; for a duplicate
        // window, item 0, which a fresh key admits and remembers, and a key that remembers it rejects).
        DuplicateWindow duplicates = new DuplicateWindow(Duration.ofSeconds(10), 2);
        List<LimitSpec> specs = List.of(
                new TokenBucket(3, 1, Duration.ofHours(1)),
                new FixedWindow(3, Duration.ofSeconds(10)),
                new SlidingWindowLog(3, Duration.ofSeconds(10)),
                new SlidingWindowCounter(3, Duration.ofSeconds(10), 2),
                new Cooldown(Duration.ofSeconds(10)),
                duplicates,
                Gate.INSTANCE,
                Membership.MUST_BE_ABSENT,
                Membership.MUST_BE_PRESENT);
        for (LimitSpec spec : specs) {
            StateKey fresh = key("fresh");
            StateKey held = key("held");
            if (spec instanceof Gate) {
                storage.raiseGate(held, T0 + 10 * SECOND, now());
            } else if (spec instanceof Membership) {
                storage.addMember(held, T0 + 10 * SECOND, now());
            } else {
                assertThat(Outcome.isAdmitted(acquire(held, spec, spec == duplicates ? 0 : 1)))
                        .as("%s, setup", spec)
                        .isTrue();
            }
            long before = acquire(held, spec, 0);

            for (StateKey k : List.of(fresh, held)) {
                assertThatThrownBy(() -> storage.acquire(k, spec, -1, now()))
                        .as("%s at %s", spec, k.scope())
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("permits")
                        .hasMessageContaining("-1");
            }
            assertThat(acquire(held, spec, 0)).as("%s, held key after", spec).isEqualTo(before);
            long freshLook = acquire(fresh, spec, 0);
            if (spec == duplicates || spec instanceof Cooldown) {
                assertThat(freshLook)
                        .as("%s, fresh key after", spec)
                        .isEqualTo(Outcome.admitted(spec == duplicates ? 0 : 1));
            } else if (spec == Membership.MUST_BE_PRESENT) {
                assertThat(freshLook).as("%s, fresh key after", spec).isEqualTo(Outcome.NEVER);
            } else if (spec instanceof Gate || spec instanceof Membership) {
                assertThat(freshLook).as("%s, fresh key after", spec).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
            } else {
                assertThat(freshLook).as("%s, fresh key after", spec).isEqualTo(Outcome.admitted(3));
            }
        }
    }

    @Test
    void evaluate_itemOutOfRangeInALongerBatch_isRefusedNamingItAndChangesNothing() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        FixedWindow window = new FixedWindow(2, Duration.ofHours(1));
        DuplicateWindow duplicates = new DuplicateWindow(Duration.ofSeconds(10), 4);
        // Three subjects, so that a backend that splits a batch (by Redis Cluster slot, say) splits this one.
        StateKey bucketKey = key("bucket");
        StateKey windowKey = key("window");
        StateKey duplicatesKey = key("duplicates");
        BatchBuffer buffer = new BatchBuffer(3);

        for (long item : new long[] {1L << 53, Long.MAX_VALUE}) {
            Step bad = new Step(duplicatesKey, duplicates, item);
            Step first = new Step(bucketKey, bucket, 1);
            Step second = new Step(windowKey, window, 1);
            for (Batch batch : List.of(Batch.of(first, second, bad), Batch.of(bad, first, second))) {
                assertThatThrownBy(() -> storage.evaluate(batch, now()))
                        .as("item %d in %s", item, batch.steps())
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining(Long.toString(item));
                buffer.clear();
                for (Step s : batch.steps()) {
                    buffer.add(s);
                }
                assertThatThrownBy(() -> storage.evaluateInPlace(buffer, now()))
                        .as("item %d in place in %s", item, batch.steps())
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining(Long.toString(item));
            }
        }
        assertThat(look(bucketKey, bucket)).isEqualTo(Outcome.admitted(2));
        assertThat(look(windowKey, window)).isEqualTo(Outcome.admitted(2));
        assertThat(acquire(duplicatesKey, duplicates, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void permitsFarAboveTheLimit_areNeverAdmittedAndTakeNothing() {
        // One token costs 10^6 ticks here: permits above 2^63 / 10^6 overflow a product computed before the check.
        List<LimitSpec> counting = List.of(
                new TokenBucket(3, 1, Duration.ofSeconds(1)),
                new FixedWindow(3, Duration.ofSeconds(1)),
                new SlidingWindowLog(3, Duration.ofSeconds(1)),
                new SlidingWindowCounter(3, Duration.ofSeconds(1), 2));
        long[] huge = {Long.MAX_VALUE / 1_000_000 + 1, 1L << 53, (1L << 53) + 1, Integer.MAX_VALUE + 1L, Long.MAX_VALUE
        };
        for (LimitSpec spec : counting) {
            StateKey k = key("counting");
            StateKey other = key("other");
            for (long permits : huge) {
                assertThat(acquire(k, spec, permits))
                        .as("%s, %d permits", spec, permits)
                        .isEqualTo(Outcome.NEVER);
                assertThat(evaluate(new Step(other, spec, 1), new Step(k, spec, permits)))
                        .as("%s, %d permits in a batch", spec, permits)
                        .isEqualTo(BatchResult.of(Outcome.admitted(2), Outcome.NEVER));
            }
            assertThat(acquire(k, spec, 3)).as("%s, after", spec).isEqualTo(Outcome.admitted(0));
            assertThat(acquire(other, spec, 3)).as("%s, other after", spec).isEqualTo(Outcome.admitted(0));
        }

        // A cooldown takes any number of permits as one; gates and sets do not count them.
        StateKey cooling = key("cooldown");
        assertThat(acquire(cooling, new Cooldown(Duration.ofSeconds(5)), Long.MAX_VALUE))
                .isEqualTo(Outcome.admitted(0));
        assertThat(acquire(cooling, new Cooldown(Duration.ofSeconds(5)), 1)).isEqualTo(Outcome.rejected(5_000_000));
        assertThat(acquire(key("gate"), Gate.INSTANCE, Long.MAX_VALUE)).isEqualTo(Outcome.admitted(Long.MAX_VALUE));
        assertThat(acquire(key("blocklist"), Membership.MUST_BE_ABSENT, Long.MAX_VALUE))
                .isEqualTo(Outcome.admitted(Long.MAX_VALUE));
    }

    /**
     * Each of {@code keys} a key of its own: a bucket of one token ({@code one}) each, taken and then refused; a
     * record each, and a membership for every {@code memberEvery}-th, each read back as written.
     */
    private void assertKeysApart(List<StateKey> keys, TokenBucket one, int memberEvery) {
        for (StateKey k : keys) {
            assertThat(acquire(k, one, 1)).as("first permit of %s", k).isEqualTo(Outcome.admitted(0));
        }
        for (int i = 0; i < keys.size(); i++) {
            StateKey k = keys.get(i);
            assertThat(acquire(k, one, 1)).as("second permit of %s", k).isEqualTo(Outcome.rejected(3_600_000_000L));
            assertThat(storage.putRecord(new StateKey(k.scope() + "#record", k.subject()), bytes("v" + i), 0))
                    .as("record of %s", k)
                    .isEqualTo(1);
            if (i % memberEvery == 0) {
                storage.addMember(new StateKey(k.scope() + "#set", k.subject()), Long.MAX_VALUE, now());
            }
        }
        for (int i = 0; i < keys.size(); i++) {
            StateKey k = keys.get(i);
            assertThat(storage.getRecord(new StateKey(k.scope() + "#record", k.subject())))
                    .as("record of %s", k)
                    .contains(new VersionedRecord(bytes("v" + i), 1));
            assertThat(storage.isMember(new StateKey(k.scope() + "#set", k.subject()), now()))
                    .as("membership of %s", k)
                    .isEqualTo(i % memberEvery == 0);
        }
    }
}
