package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import io.lettuce.core.api.sync.RedisCommands;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The state of a {@link DuplicateWindow} as Redis holds it, on the standalone Redis: pairs {@code item admittedAt} in
 * decimal, exact up to 2<sup>53</sup>, the kept pairs' text carried over by a commit; and a key that another limit
 * wrote, read as the reference reads it.
 */
class RedisDuplicateWindowTest {
    private static final long SECOND = 1_000_000L;
    private static final long MARGIN_MILLIS = 1_000;
    /** Real time that may pass between the write and the read of its expiry on a busy machine. */
    private static final long SLACK_MILLIS = 500;

    private static final long TOP = (1L << 53) - 1;
    private static final StateKey KEY = new StateKey("duplicates", "user-1");

    private final long now = ManualTicker.create().epochMicros();
    private final String prefix = Target.freshPrefix();
    private final byte[] key = new RedisKeys(prefix, false).state(KEY);

    @Test
    void commit_itemsNear2To53_areStoredAsTheirExactDecimalText() {
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 3);
        withStorage((storage, redis) -> {
            assertThat(storage.acquire(KEY, window, TOP, now)).isEqualTo(Outcome.admitted(0));
            assertThat(storage.acquire(KEY, window, TOP - 1, now + 1)).isEqualTo(Outcome.admitted(0));
            assertThat(storage.acquire(KEY, window, 0, now + 2)).isEqualTo(Outcome.admitted(0));
            assertThat(text(redis)).isEqualTo(TOP + " " + now + " " + (TOP - 1) + " " + (now + 1) + " 0 " + (now + 2));
            // The key lives as long as its newest item's window, plus the margin.
            assertThat(redis.pttl(key)).isBetween(10_000 + MARGIN_MILLIS - SLACK_MILLIS, 10_000 + MARGIN_MILLIS);

            // A copy changes nothing; a new item makes the full window forget its oldest one.
            assertThat(storage.acquire(KEY, window, TOP - 1, now + 3)).isEqualTo(Outcome.rejected(10 * SECOND - 2));
            assertThat(storage.acquire(KEY, window, TOP - 2, now + 3)).isEqualTo(Outcome.admitted(0));
            assertThat(text(redis))
                    .isEqualTo((TOP - 1) + " " + (now + 1) + " 0 " + (now + 2) + " " + (TOP - 2) + " " + (now + 3));
            assertThat(storage.acquire(KEY, window, TOP, now + 4)).isEqualTo(Outcome.admitted(0));

            // Past the first two windows, the commit keeps only the live pairs.
            long later = now + 2 + 10 * SECOND;
            assertThat(storage.acquire(KEY, window, 7, later)).isEqualTo(Outcome.admitted(0));
            assertThat(text(redis))
                    .isEqualTo((TOP - 2) + " " + (now + 3) + " " + TOP + " " + (now + 4) + " 7 " + later);
        });
    }

    @Test
    void stateOfAnotherLimit_isReadAsTheReferenceReadsIt() {
        SlidingWindowLog log = new SlidingWindowLog(6, Duration.ofSeconds(30));
        DuplicateWindow one = new DuplicateWindow(Duration.ofSeconds(10), 1);
        DuplicateWindow two = new DuplicateWindow(Duration.ofSeconds(10), 2);
        withStorage((storage, redis) -> {
            try (ReferenceStorage reference = ReferenceStorage.create()) {
                Both both = new Both(storage, reference, redis);
                // Four timestamps are two pairs: more than a capacity of one, so absent; then a window's pair, read by
                // the log as two timestamps.
                both.acquire(log, 4);
                both.acquire(one, 5);
                both.acquire(one, 5);
                both.acquire(log, 1);
                // Two live timestamps are one pair, whose item is the first: a copy of it is rejected.
                long first = both.at;
                both.acquire(log, 1);
                both.acquire(two, first);
                both.acquire(two, first);
                both.acquire(two, 2);
                // An odd number of timestamps reads as absent.
                both.acquire(log, 1);
                both.acquire(two, 2);
                both.acquire(two, 2);
                // So does a bucket's level and last update, one pair whose item is the level.
                both.acquire(new TokenBucket(3, 1, Duration.ofSeconds(1)), 1);
                both.acquire(two, 3);
                both.acquire(two, 3);
                // And a gate raised for ever, one word that is not a number.
                assertThat(storage.raiseGate(KEY, Long.MAX_VALUE, both.at))
                        .isEqualTo(reference.raiseGate(KEY, Long.MAX_VALUE, both.at));
                both.acquire(two, 3);
                both.acquire(two, 3);
            }
        });
    }

    @Test
    void itemsWhoseTextOccursInOtherWords_areDecidedAsTheReference() {
        // Items that are prefixes, suffixes and substrings of each other and of the times, and the times themselves
        // (an item's text equal to an admittedAt word), under windows of a few capacities on one key, a clock that
        // moves 0 to 400 ms a call and now and then goes back.
        DuplicateWindow[] windows = {
            new DuplicateWindow(Duration.ofSeconds(1), 3),
            new DuplicateWindow(Duration.ofSeconds(1), 5),
            new DuplicateWindow(Duration.ofSeconds(3), 5),
            new DuplicateWindow(Duration.ofMillis(700), 1)
        };
        long[] items = {0, 1, 10, 11, 101, 110, 1_000, TOP, TOP - 1};
        Random random = new Random(2026);
        withStorage((storage, redis) -> {
            try (ReferenceStorage reference = ReferenceStorage.create()) {
                Both both = new Both(storage, reference, redis);
                DuplicateWindow window = windows[0];
                for (int i = 0; i < 3_000; i++) {
                    if (random.nextInt(50) == 0) {
                        window = windows[random.nextInt(windows.length)];
                    }
                    long item = random.nextInt(20) == 0
                            ? both.at - 100_000 * random.nextInt(3)
                            : items[random.nextInt(items.length)];
                    both.acquire(window, item);
                    both.at += random.nextInt(20) == 0 ? -random.nextInt(1_500_000) : random.nextInt(300_000);
                }
            }
        });
    }

    /** Redis and the reference side by side at {@code at}, which each call moves 100 ms on. */
    private final class Both {
        private final RedisStorage storage;
        private final ReferenceStorage reference;
        private final RedisCommands<byte[], byte[]> redis;
        long at = now;

        Both(RedisStorage storage, ReferenceStorage reference, RedisCommands<byte[], byte[]> redis) {
            this.storage = storage;
            this.reference = reference;
            this.redis = redis;
        }

        void acquire(LimitSpec spec, long permits) {
            String state = text(redis);
            assertThat(storage.acquire(KEY, spec, permits, at))
                    .as("%s x%d on %s", spec, permits, state)
                    .isEqualTo(reference.acquire(KEY, spec, permits, at));
            at += 100_000;
        }
    }

    private String text(RedisCommands<byte[], byte[]> redis) {
        byte[] raw = redis.get(key);
        return raw == null ? null : new String(raw, StandardCharsets.US_ASCII);
    }

    private void withStorage(StandaloneRedis.Use use) {
        StandaloneRedis.with(prefix, Duration.ofMillis(MARGIN_MILLIS), use);
    }
}
