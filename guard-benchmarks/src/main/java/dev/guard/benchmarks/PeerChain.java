package dev.guard.benchmarks;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.guard.ManualTicker;
import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.TimeMeter;
import io.github.bucket4j.local.LocalBucketBuilder;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * {@link ChainBenchmark}'s chain as a bot would build it by hand from the peers, without Guard: the blocklist and the
 * registrations as a Caffeine cache and a concurrent set of user ids; duplicate suppression as a Caffeine cache of
 * the recent (user, chat, text), the chat left out of the key in a private chat (its id is the user's), that forgets
 * each two seconds after it was written; the per-chat throttle as a Bucket4j bucket of 20 refilled at once every
 * minute from its creation (Guard's throttle is a fixed window aligned to the minute), and the user's token bucket
 * and minute window as one Bucket4j bucket of two bandwidths (5 refilled one per second, 30 per minute refilled
 * greedily: Bucket4j has no exact sliding window), each bucket kept in a Caffeine cache by its id, as Bucket4j's
 * users key their buckets, and forgotten a minute after its last use. All on the benchmark's manual clock.
 *
 * <p>Each cache runs its maintenance on the calling thread ({@code executor(Runnable::run)}), as Guard's memory
 * storage runs its own cache's: the peers at their best. With Caffeine's default executor (the common pool) the
 * same chain took 1,000 to 1,800 ns per message on a 2-CPU machine where it takes about 310 inline (2026-12-06,
 * session 26), and from one day to the next it varied by more than twice.
 *
 * <p>Not Guard's semantics: the steps run one after another, not all or nothing (a message that a later step rejects
 * has already been counted by the earlier ones; only the user's two bandwidths are taken together), and the minute
 * window is a bucket, not a log. A plain such chain from the peers, for a ratio measured in the same run.
 */
final class PeerChain {
    private final Cache<Long, Boolean> blocked;
    private final Set<Long> registered = ConcurrentHashMap.newKeySet();
    private final Cache<String, Boolean> recent;
    private final Cache<Long, Bucket> chatBuckets;
    private final Cache<Long, Bucket> userBuckets;
    private final TimeMeter time;

    PeerChain(ManualTicker ticker) {
        this.time = new TimeMeter() {
            @Override
            public long currentTimeNanos() {
                return ticker.epochMicros() * 1_000;
            }

            @Override
            public boolean isWallClockBased() {
                return true;
            }
        };
        com.github.benmanes.caffeine.cache.Ticker nanos = time::currentTimeNanos;
        blocked = Caffeine.newBuilder()
                .executor(Runnable::run)
                .ticker(nanos)
                .expireAfterWrite(Duration.ofDays(365))
                .build();
        recent = Caffeine.newBuilder()
                .executor(Runnable::run)
                .ticker(nanos)
                .expireAfterWrite(Duration.ofSeconds(2))
                .build();
        chatBuckets = bucketsById(nanos);
        userBuckets = bucketsById(nanos);
    }

    /** A cache of buckets by id that forgets a bucket a minute after its last use, on the benchmark's clock. */
    private static Cache<Long, Bucket> bucketsById(com.github.benmanes.caffeine.cache.Ticker nanos) {
        return Caffeine.newBuilder()
                .executor(Runnable::run)
                .ticker(nanos)
                .expireAfterAccess(Duration.ofMinutes(1))
                .build();
    }

    /** Registers {@code userId}, as the registration step requires. */
    void register(long userId) {
        registered.add(userId);
    }

    /** Whether the chain lets the message through; the steps before a rejecting one have counted it. */
    boolean allows(long userId, long chatId, String text) {
        Long user = userId;
        if (blocked.getIfPresent(user) != null || !registered.contains(user)) {
            return false;
        }
        String conversation = userId == chatId ? userId + "\0" + text : userId + "\0" + chatId + "\0" + text;
        if (recent.asMap().putIfAbsent(conversation, Boolean.TRUE) != null) {
            return false;
        }
        return chatBuckets.get(chatId, this::chatBucket).tryConsume(1)
                && userBuckets.get(user, this::userBucket).tryConsume(1);
    }

    private Bucket chatBucket(Long chatId) {
        return bucketOf(Bandwidth.builder()
                .capacity(20)
                .refillIntervally(20, Duration.ofMinutes(1))
                .build());
    }

    private Bucket userBucket(Long userId) {
        return bucketOf(
                Bandwidth.builder()
                        .capacity(5)
                        .refillGreedy(1, Duration.ofSeconds(1))
                        .build(),
                Bandwidth.builder()
                        .capacity(30)
                        .refillGreedy(30, Duration.ofMinutes(1))
                        .build());
    }

    /** A local bucket of {@code limits}, all taken together, on the benchmark's clock. */
    private Bucket bucketOf(Bandwidth... limits) {
        LocalBucketBuilder builder = Bucket.builder();
        for (Bandwidth limit : limits) {
            builder.addLimit(limit);
        }
        return builder.withCustomTimePrecision(time).build();
    }
}
