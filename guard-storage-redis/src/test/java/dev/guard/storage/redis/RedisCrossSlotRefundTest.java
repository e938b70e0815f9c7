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
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.sync.RedisAdvancedClusterCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A cross-slot batch that one slot admits and commits and another rejects, in the Cluster, with nobody else writing
 * the key between its commit and its refund: afterwards the key must answer as {@link ReferenceStorage} does, where a
 * rejected batch consumes nothing, and hold the text it held before (absent if it had expired). The batch runs later
 * than the state it finds was written (a bucket refilled, a window rolled), and the state may be another limit's, one
 * that the batch's limit reads as absent (of another shape, or dated: a limit changed under its name in a deploy,
 * whose old and new versions run side by side), which must keep its expiry too.
 */
class RedisCrossSlotRefundTest {
    private static final long SECOND = 1_000_000L;
    private static final long MILLI = 1_000L;
    private static final StateKey KEY = new StateKey("limit", "user-1");
    /** In another slot and absent: its slot always rejects, so the slot of {@link #KEY} is always refunded. */
    private static final Step NEVER_ADMITS =
            new Step(new StateKey("set:required", "nobody"), Membership.MUST_BE_PRESENT, 1);

    /**
     * {@code writer} takes {@code writes} (one acquire each, a millisecond apart, from the test's start), then the
     * batch's step takes {@code permits} under {@code spec} {@code after} micros after the start, and is refunded;
     * then {@code writer} is asked again, for {@code probes}, a millisecond apart from a millisecond after the batch.
     * {@code left}: what the refund leaves at the key.
     */
    record Case(
            String name,
            LimitSpec writer,
            long[] writes,
            LimitSpec spec,
            long permits,
            long after,
            Left left,
            long[] probes) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** What a refund leaves at the key. */
    enum Left {
        /**
         * The batch's limit's own live state: its text, to expire when it equals absent by the batch's now, on Redis'
         * clock from the refund on (plus the margin), as a commit sets it.
         */
        OWN,
        /** No key: the state had expired by the batch's limit's measure, and a read that finds it so drops it. */
        ABSENT,
        /** Another limit's state, which the batch's limit read as absent: its text and its expiry, unchanged. */
        OTHER
    }

    private static long[] of(long... values) {
        return values;
    }

    static Stream<Case> cases() {
        TokenBucket bucket = new TokenBucket(4, 1, Duration.ofSeconds(1));
        FixedWindow window = new FixedWindow(2, Duration.ofSeconds(1));
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(1));
        SlidingWindowCounter counter = new SlidingWindowCounter(3, Duration.ofSeconds(1), 4);
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(10));
        DuplicateWindow duplicates = new DuplicateWindow(Duration.ofSeconds(10), 3);
        return Stream.of(
                // The limit's own state, found later than it was written.
                new Case("bucket, refilled since", bucket, of(2), bucket, 2, SECOND / 2, Left.OWN, of(1, 1, 1, 1)),
                new Case("bucket, full again", bucket, of(3), bucket, 4, 3 * SECOND, Left.ABSENT, of(2, 2, 1)),
                new Case("bucket, empty key", bucket, of(), bucket, 3, 0, Left.ABSENT, of(2, 2, 1)),
                new Case("fixed window, same window", window, of(1), window, 1, 10 * MILLI, Left.OWN, of(1, 1)),
                new Case(
                        "fixed window, rolled since",
                        window,
                        of(2),
                        window,
                        2,
                        1_100 * MILLI,
                        Left.ABSENT,
                        of(1, 1, 1)),
                new Case("sliding log, partly expired", log, of(1, 2), log, 1, SECOND, Left.OWN, of(1, 1, 1)),
                new Case("sliding counter", counter, of(2), counter, 1, 300 * MILLI, Left.OWN, of(1, 1)),
                new Case("cooldown, empty key", cooldown, of(), cooldown, 1, 0, Left.ABSENT, of(1, 1)),
                new Case("cooldown, over", cooldown, of(1), cooldown, 1, 11 * SECOND, Left.ABSENT, of(1, 1)),
                new Case(
                        "duplicate window, full",
                        duplicates,
                        of(1, 2, 3),
                        duplicates,
                        4,
                        SECOND,
                        Left.OWN,
                        of(1, 2, 3, 4)),
                // A cooldown's deadline in force, which a log reads as a timestamp of its own: back with its mark.
                new Case(
                        "a cooldown's deadline read by a log",
                        cooldown,
                        of(1),
                        new SlidingWindowLog(3, Duration.ofSeconds(20)),
                        1,
                        SECOND,
                        Left.OWN,
                        of(1, 1)),
                // Another limit's state, which the batch's limit reads as absent and its commit overwrites.
                new Case(
                        "a cooldown's deadline read by a bucket",
                        cooldown,
                        of(1),
                        bucket,
                        1,
                        SECOND,
                        Left.OTHER,
                        of(1)),
                new Case("a bucket read by a look-only cooldown", bucket, of(4), cooldown, 0, MILLI, Left.OTHER, of(1)),
                new Case(
                        "a second's window read by an hour's (dated)",
                        window,
                        of(2),
                        new FixedWindow(5, Duration.ofHours(1)),
                        1,
                        100 * MILLI,
                        Left.OTHER,
                        of(1)),
                new Case(
                        "three items read by a window of two",
                        duplicates,
                        of(1, 2, 3),
                        new DuplicateWindow(Duration.ofSeconds(10), 2),
                        4,
                        SECOND,
                        Left.OTHER,
                        of(1, 2, 3)));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void rejectedBatch_refundedWithNoWriterInBetween_leavesTheKeyAsIfItNeverRan(Case c) {
        String seed = RedisServers.cluster();
        String prefix = Target.freshPrefix();
        RedisKeys keys = new RedisKeys(prefix, false);
        byte[] key = keys.state(KEY);
        assertThat(SlotHash.getSlot(key)).isNotEqualTo(SlotHash.getSlot(keys.state(NEVER_ADMITS.key())));
        long t = ManualTicker.create().epochMicros();
        RedisClusterClient client = RedisClusterClient.create(seed);
        try (StatefulRedisClusterConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage redis = Target.CLUSTER.builder(prefix).build();
                ReferenceStorage reference = ReferenceStorage.create()) {
            RedisAdvancedClusterCommands<byte[], byte[]> raw = connection.sync();
            for (int i = 0; i < c.writes().length; i++) {
                long at = t + i * MILLI;
                assertThat(redis.acquire(KEY, c.writer(), c.writes()[i], at))
                        .as("write %d", i)
                        .isEqualTo(reference.acquire(KEY, c.writer(), c.writes()[i], at));
            }
            byte[] before = raw.get(key);
            long expiresAt = raw.pexpiretime(key);

            Batch batch = Batch.of(new Step(KEY, c.spec(), c.permits()), NEVER_ADMITS);
            BatchResult answer = redis.evaluate(batch, t + c.after());
            assertThat(answer).isEqualTo(reference.evaluate(batch, t + c.after()));
            // The key's slot admitted, so it committed, and the other slot's rejection made it refund.
            assertThat(Outcome.isAdmitted(answer.outcome(0))).isTrue();
            assertThat(answer.admitted()).isFalse();

            assertThat(text(raw.get(key)))
                    .as("the text after the refund")
                    .isEqualTo(c.left() == Left.ABSENT ? "absent" : text(before));
            // PEXPIRETIME: -2 for no key, -1 for no expiry.
            long expiry = raw.pexpiretime(key);
            switch (c.left()) {
                case OWN -> assertThat(expiry).as("the expiry after the refund").isPositive();
                case ABSENT ->
                    assertThat(expiry).as("the expiry after the refund").isEqualTo(-2L);
                case OTHER ->
                    assertThat(expiry).as("the expiry after the refund").isEqualTo(expiresAt);
            }
            for (int i = 0; i < c.probes().length; i++) {
                long at = t + c.after() + (i + 1) * MILLI;
                assertThat(redis.acquire(KEY, c.writer(), c.probes()[i], at))
                        .as("probe %d", i)
                        .isEqualTo(reference.acquire(KEY, c.writer(), c.probes()[i], at));
            }
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
        }
    }

    private static String text(byte[] value) {
        return value == null ? "absent" : new String(value, StandardCharsets.US_ASCII);
    }
}
