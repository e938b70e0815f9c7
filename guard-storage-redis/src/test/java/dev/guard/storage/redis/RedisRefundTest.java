package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import io.lettuce.core.RedisClient;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code refund.lua} on a key that another caller wrote between a cross-slot batch's commit and its refund, on the
 * standalone Redis. The interleaving that a Cluster leaves to chance is played in order here: batch A commits, caller
 * B takes permits, A's refund runs. Afterwards the key must answer as {@link ReferenceStorage} does after B alone.
 */
class RedisRefundTest {
    private static final long SECOND = 1_000_000L;
    private static final long MILLI = 1_000L;
    private static final long TOP = (1L << 53) - 1;
    private static final StateKey KEY = new StateKey("limit", "user-1");
    /** Absent: a step on it never admits, so a batch with it shows its other step's outcome and commits nothing. */
    private static final Step NEVER_ADMITS =
            new Step(new StateKey("set:required", "nobody"), Membership.MUST_BE_PRESENT, 1);

    /**
     * Permits taken {@code earlier} micros before the batch ({@code prior}, 0: none, the key is empty), by batch A
     * ({@code a}) at the batch's time, and by B ({@code b}) {@code later} micros after it; then every permit count up
     * to {@code limit} is probed at B's time and after.
     */
    record Case(String name, LimitSpec spec, long limit, long earlier, long prior, long a, long later, long b) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Case> cases() {
        TokenBucket bucket = new TokenBucket(10, 1, Duration.ofSeconds(1));
        return Stream.of(
                // The review's scenario: without A the bucket would have refilled to its cap before B.
                new Case("bucket, empty, B half a second later", bucket, 10, 0, 0, 1, SECOND / 2, 1),
                new Case("bucket, half full, B later", bucket, 10, 2 * SECOND, 8, 3, 3 * SECOND, 2),
                new Case("bucket, nearly full, B at once", bucket, 10, SECOND / 2, 1, 4, 0, 2),
                new Case("bucket, nearly full, B half a second later", bucket, 10, 4 * SECOND / 5, 1, 1, SECOND / 2, 1),
                new Case("fixed window", new FixedWindow(5, Duration.ofSeconds(1)), 5, SECOND / 2, 1, 2, 100, 1),
                new Case("sliding log", new SlidingWindowLog(5, Duration.ofSeconds(1)), 5, SECOND / 2, 1, 2, 100, 1),
                new Case(
                        "sliding counter",
                        new SlidingWindowCounter(5, Duration.ofSeconds(1), 5),
                        5,
                        SECOND / 2,
                        1,
                        2,
                        300_000,
                        1),
                new Case("cooldown", new Cooldown(Duration.ofSeconds(1)), 1, 2 * SECOND, 1, 1, SECOND + 100, 1),
                // Permits are items here: A's item 2 is forgotten again, the earlier item 1 and B's item 3 kept.
                new Case(
                        "duplicate window", new DuplicateWindow(Duration.ofSeconds(1), 3), 4, SECOND / 2, 1, 2, 100, 3),
                // Full: A forgot item 1 early, and so did B's commit in the reference, where A never ran.
                new Case(
                        "duplicate window, full",
                        new DuplicateWindow(Duration.ofSeconds(1), 1),
                        4,
                        SECOND / 2,
                        1,
                        2,
                        100,
                        3));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void refund_afterAnotherCallerWroteTheKey_leavesWhatThatCallerAloneWouldHaveLeft(Case c) {
        long t = ManualTicker.create().epochMicros();
        String prefix = Target.freshPrefix();
        RedisKeys keys = new RedisKeys(prefix, false);
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis =
                        RedisStorage.builder(connection).keyPrefix(prefix).build();
                ReferenceStorage reference = ReferenceStorage.create()) {
            byte[] key = keys.state(KEY);
            for (Storage storage : new Storage[] {redis, reference}) {
                if (c.prior() > 0) {
                    storage.acquire(KEY, c.spec(), c.prior(), t - c.earlier());
                }
            }
            byte[] before = connection.sync().get(key);
            redis.acquire(KEY, c.spec(), c.a(), t);
            byte[] after = connection.sync().get(key);
            // B must pass with A as without it, or B alone is not what the refund should come back to.
            assertThat(Outcome.isAdmitted(redis.acquire(KEY, c.spec(), c.b(), t + c.later())))
                    .as("B admitted")
                    .isTrue();
            assertThat(Outcome.isAdmitted(reference.acquire(KEY, c.spec(), c.b(), t + c.later())))
                    .isTrue();
            refund(connection, key, t, new Step(KEY, c.spec(), c.a()), before, after);

            byte[] left = connection.sync().get(key);
            String state = left == null ? "absent" : new String(left, StandardCharsets.US_ASCII);
            for (long at : new long[] {t + c.later(), t + c.later() + SECOND / 4, t + c.later() + SECOND}) {
                for (long permits = 0; permits <= c.limit(); permits++) {
                    Batch probe = Batch.of(new Step(KEY, c.spec(), permits), NEVER_ADMITS);
                    assertThat(redis.evaluate(probe, at).outcome(0))
                            .as("%d permits %d micros after B, state %s", permits, at - t - c.later(), state)
                            .isEqualTo(reference.evaluate(probe, at).outcome(0));
                }
            }
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    @Test
    void refund_ofALog_afterACooldownWroteTheKey_leavesTheCooldownsDeadline() throws Exception {
        // A deploy changed the limit from a log to a cooldown between batch A's commit and its refund: the cooldown's
        // deadline replaced A's timestamp, and stays a cooldown's, which a gate raised there does not merge with.
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(1));
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        long t = ManualTicker.create().epochMicros();
        String prefix = Target.freshPrefix();
        byte[] key = new RedisKeys(prefix, false).state(KEY);
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis =
                        RedisStorage.builder(connection).keyPrefix(prefix).build()) {
            assertThat(redis.acquire(KEY, log, 1, t)).isEqualTo(Outcome.admitted(2));
            byte[] after = connection.sync().get(key);
            assertThat(redis.acquire(KEY, cooldown, 1, t + SECOND)).isEqualTo(Outcome.admitted(0));
            byte[] cooldowns = connection.sync().get(key);

            refund(connection, key, t, new Step(KEY, log, 1), null, after);

            assertThat(connection.sync().get(key))
                    .asString(StandardCharsets.US_ASCII)
                    .isEqualTo(new String(cooldowns, StandardCharsets.US_ASCII));
            assertThat(redis.raiseGate(KEY, t + 2 * SECOND, t + SECOND)).isEqualTo(t + 2 * SECOND);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /**
     * A duplicate window of {@code capacity} items and one second holding what {@code prior} admitted (pairs of micros
     * before batch A, item: {@code {-500 * MILLI, 1}}), when A admits item {@code a}; then the other callers admit
     * {@code others} (pairs of micros after A, item), in order.
     */
    record WindowCase(String name, int capacity, long[][] prior, long a, long[][] others) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static long[][] admits(long... atThenItem) {
        long[][] pairs = new long[atThenItem.length / 2][];
        for (int i = 0; i < pairs.length; i++) {
            pairs[i] = new long[] {atThenItem[2 * i], atThenItem[2 * i + 1]};
        }
        return pairs;
    }

    static Stream<WindowCase> windowCases() {
        return Stream.of(
                // The review's scenario: A forgets item 1 early to make room, B's commit forgets 4 to make room for 3.
                // Without A, B would have forgotten 1 and kept 4.
                new WindowCase(
                        "window, full, A forgets 1 early, B forgets 4",
                        2,
                        admits(-500 * MILLI, 1, -250 * MILLI, 4),
                        2,
                        admits(100, 3)),
                new WindowCase(
                        "window, items near 2^53",
                        2,
                        admits(-500 * MILLI, TOP, -250 * MILLI, TOP - 1),
                        TOP - 2,
                        admits(100, TOP - 3)),
                // Others' commits after A, each forgetting the oldest item early; A's pair is the oldest at the end.
                new WindowCase(
                        "window, full, two others after A",
                        3,
                        admits(-500 * MILLI, 1, -400 * MILLI, 4, -300 * MILLI, 5),
                        2,
                        admits(100, 3, 200, 6)),
                new WindowCase(
                        "window, one free place, two others after A",
                        3,
                        admits(-500 * MILLI, 1, -400 * MILLI, 4),
                        2,
                        admits(100, 3, 200, 6)),
                // Items of the prior state stay in front of A's pair; the one B forgot early comes back.
                new WindowCase(
                        "window, one free place, B forgets 1 early, 4 and 5 kept before A's pair",
                        4,
                        admits(-500 * MILLI, 1, -400 * MILLI, 4, -300 * MILLI, 5),
                        2,
                        admits(100, 3)),
                new WindowCase("window, empty, B fills it", 2, admits(), 2, admits(100, 3)),
                // A's pair was pushed out by others' commits: they would have pushed out the same pairs without it.
                new WindowCase("window, A's pair pushed out", 2, admits(-500 * MILLI, 1), 2, admits(100, 3, 200, 6)),
                new WindowCase("window, empty, A's pair pushed out", 2, admits(), 2, admits(100, 3, 200, 6)),
                new WindowCase(
                        "capacity 1, A forgets 1, B's 3 pushes A's out", 1, admits(-500 * MILLI, 1), 2, admits(100, 3)),
                new WindowCase("capacity 1, empty, two others after A", 1, admits(), 2, admits(100, 3, 200, 6)),
                // Pairs that had left the window when a commit dropped them never come back.
                new WindowCase(
                        "window, item 1 past its window at A's commit",
                        3,
                        admits(-1_200 * MILLI, 1, -500 * MILLI, 4),
                        2,
                        admits(100, 3)),
                new WindowCase(
                        "window, item 1 past its window at B's commit",
                        2,
                        admits(-500 * MILLI, 1),
                        2,
                        admits(600 * MILLI, 3)),
                new WindowCase(
                        "window, full, A forgets 1 early, 4 past its window at B's commit",
                        2,
                        admits(-900 * MILLI, 1, -800 * MILLI, 4),
                        2,
                        admits(300 * MILLI, 3)));
    }

    /**
     * The pairs a refund leaves are those of the history without A, replayed through {@link DuplicateWindow}'s own
     * commit: the same text, so the same answers for every item at any later time.
     */
    @ParameterizedTest
    @MethodSource("windowCases")
    void refund_ofADuplicateWindow_leavesThePairsOfTheHistoryWithoutTheBatch(WindowCase c) {
        refundWindow(c, without -> without);
    }

    /**
     * The limit that the state cannot see past: A's pair pushed out by others' commits in its microsecond, then the
     * same item admitted again in it, a pair equal to A's. The refund takes it for A's and drops it; the pairs before
     * it are not the last ones of the state A read, so no item of that state comes back.
     */
    @ParameterizedTest
    @MethodSource("sameMicrosecondCopies")
    void refund_ofADuplicateWindow_takesAnEqualPairAddedInItsMicrosecondForItsOwn(WindowCase c) {
        refundWindow(c, without -> Arrays.copyOf(without, without.length - 2));
    }

    static Stream<WindowCase> sameMicrosecondCopies() {
        return Stream.of(new WindowCase(
                "window, full, 2 pushed out and admitted again in A's microsecond",
                3,
                admits(-500 * MILLI, 7, -400 * MILLI, 8, -300 * MILLI, 9),
                2,
                admits(0, 3, 0, 4, 0, 5, 0, 2)));
    }

    /**
     * Replays {@code c} on Redis and, without A, through {@link DuplicateWindow}'s own functions, refunds A and checks
     * that Redis holds the text of {@code expected} applied to the state without A and answers every item as it.
     */
    private static void refundWindow(WindowCase c, UnaryOperator<long[]> expected) {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(1), c.capacity());
        long t = ManualTicker.create().epochMicros();
        String prefix = Target.freshPrefix();
        RedisKeys keys = new RedisKeys(prefix, false);
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis =
                        RedisStorage.builder(connection).keyPrefix(prefix).build()) {
            byte[] key = keys.state(KEY);
            TreeSet<Long> items = new TreeSet<>(List.of(c.a(), 0L));
            long[] without = null;
            for (long[] admit : c.prior()) {
                assertThat(Outcome.isAdmitted(redis.acquire(KEY, window, admit[1], t + admit[0])))
                        .isTrue();
                without = window.commit(without, t + admit[0], admit[1]);
                items.add(admit[1]);
            }
            byte[] before = connection.sync().get(key);
            assertThat(Outcome.isAdmitted(redis.acquire(KEY, window, c.a(), t))).isTrue();
            byte[] after = connection.sync().get(key);
            long last = t;
            for (long[] admit : c.others()) {
                last = t + admit[0];
                // Each other caller passes with A as without it, or the history without A is not what the refund
                // should come back to.
                assertThat(Outcome.isAdmitted(redis.acquire(KEY, window, admit[1], last)))
                        .as("%d admitted", admit[1])
                        .isTrue();
                assertThat(Outcome.isAdmitted(window.evaluate(without, last, admit[1])))
                        .isTrue();
                without = window.commit(without, last, admit[1]);
                items.add(admit[1]);
            }
            long[] left = expected.apply(without);
            refund(connection, key, t, new Step(KEY, window, c.a()), before, after);

            byte[] refundedText = connection.sync().get(key);
            String state = refundedText == null ? "absent" : new String(refundedText, StandardCharsets.US_ASCII);
            for (long at : new long[] {last, last + SECOND / 4, last + SECOND / 2, last + SECOND}) {
                for (long item : items) {
                    Batch probe = Batch.of(new Step(KEY, window, item), NEVER_ADMITS);
                    assertThat(redis.evaluate(probe, at).outcome(0))
                            .as("item %d, %d micros after the last commit, state %s", item, at - last, state)
                            .isEqualTo(window.evaluate(left, at, item));
                }
            }
            // And the same text: the same pairs, exact.
            assertThat(state).isEqualTo(text(left));
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /**
     * Runs {@code refund.lua} for batch A's {@code step} on {@code key}, as a cross-slot batch does: with A's now and
     * the key's text before and after A's commit ({@code before} null: absent).
     */
    private static void refund(
            StatefulRedisConnection<byte[], byte[]> connection,
            byte[] key,
            long now,
            Step step,
            byte[] before,
            byte[] after)
            throws Exception {
        LuaCalls lua = new LuaCalls(connection.async(), true);
        Long refunded = lua.<Long>run(
                        RedisScript.REFUND,
                        ScriptOutputType.INTEGER,
                        new byte[][] {key},
                        LuaArgs.number(now),
                        LuaArgs.number(1_000),
                        LuaArgs.step(step),
                        before == null ? LuaArgs.EMPTY : before,
                        after)
                .get(5, TimeUnit.SECONDS);
        assertThat(refunded).isEqualTo(1);
    }

    /** A duplicate window's state as Redis writes it: its numbers in decimal, separated by spaces. */
    private static String text(long[] state) {
        List<String> words = new ArrayList<>();
        for (long number : state) {
            words.add(Long.toString(number));
        }
        return String.join(" ", words);
    }
}
