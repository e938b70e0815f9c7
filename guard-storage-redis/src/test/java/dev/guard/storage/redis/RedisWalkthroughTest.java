package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.Decision;
import dev.guard.FailurePolicy;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import io.lettuce.core.KeyScanCursor;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScanArgs;
import io.lettuce.core.ScanCursor;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A Telegram bot that runs as three processes over one Redis, walking through what the README (its Redis section, the
 * failure policies, the storage table) and the Javadoc of {@link RedisStorage} and {@link Guard} promise it: each test
 * is one promise, on the real servers of {@link RedisServers} (and, where a password is needed, a private one).
 * Time is a {@link ManualTicker} wherever Guard reads it.
 */
class RedisWalkthroughTest {
    record Update(Object userId, Object chatId, String text) {}

    /** The three bot processes: each has its own storage (its own connection) and guard, over one Redis. */
    private static final int PROCESSES = 3;
    /** Blocks end, so that the shared Redis does not keep the tests' blocklists for good. */
    private static final Duration BLOCK = Duration.ofMinutes(5);

    private final ManualTicker ticker = ManualTicker.create();
    private final String prefix = "walk-" + UUID.randomUUID();

    private static Update update(Object user, String text) {
        return new Update(user, -100L, text);
    }

    /** The README's Redis example, on {@code storage}, with a bucket of 5 and a per-chat throttle of 7 a minute. */
    private Guard<Update> botGuard(Storage storage, ManualTicker clock, FailurePolicy policy) {
        return Guard.<Update>builder()
                .storage(storage)
                .ticker(clock)
                .onStorageFailure(policy)
                .userId(Update::userId)
                .chatId(Update::chatId)
                .blocklist()
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofMinutes(1))
                .throttle("per-chat", KeyBy.CHAT, 7, Duration.ofMinutes(1))
                .build();
    }

    private RedisStorage process(String uri) {
        return RedisStorage.builder(uri).keyPrefix(prefix + ":").build();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Building from a URI

    @Test
    void create_fromAUri_decidesOnRedis_andHealthSaysWhichRedis() {
        String uri = RedisServers.standalone();
        RedisURI parsed = RedisURI.create(uri);
        // create() keeps the default prefix, guard: a user and a chat that no other test has
        String user = "walk-" + UUID.randomUUID();
        try (RedisStorage storage = RedisStorage.create(uri)) {
            Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failClosed());
            for (int i = 0; i < 5; i++) {
                assertThat(guard.check(new Update(user, user, "m" + i)).allowed())
                        .isTrue();
            }
            Decision sixth = guard.check(new Update(user, user, "m5"));
            assertThat(sixth.reason()).isEqualTo(Reason.RATE_LIMITED);
            assertThat(sixth.degraded()).isFalse();

            StorageHealth health = storage.health();
            assertThat(health.up()).isTrue();
            assertThat(health.latency()).isPositive();
            assertThat(health.detail()).isEqualTo("redis standalone " + parsed.getHost() + ":" + parsed.getPort());
            // The bucket and the throttle of the user's private chat (its id is the user's), kept under the user.
            assertThat(guard.forgetUser(user)).isEqualTo(2);
            assertThat(guard.check(new Update(user, user, "again")).remaining()).isEqualTo(4);
        }
    }

    @Test
    void builder_uriThatIsNotARedisUri_isRefusedAsSuch_notReportedAsRedisDown() {
        // A port that is not a number (a typo, a space, a list of Cluster nodes) made Lettuce read the whole authority
        // as a host name on port 6379: build() then failed with "Unable to connect to 127.0.0.1:6379x/<unresolved>",
        // a GuardStorageException that reads as an outage, where the Javadoc promises IllegalArgumentException.
        for (String uri : new String[] {
            "127.0.0.1:6379",
            "localhost",
            "redis://",
            "http://127.0.0.1:6379",
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:6379x",
            "redis://127.0.0.1:notaport",
            "redis://127.0.0.1:-1",
            "redis://127.0.0.1:7001,127.0.0.1:7002",
            "redis://:s3cret@127.0.0.1:63o79",
            "redis-sentinel://127.0.0.1:26379"
        }) {
            assertThatThrownBy(() -> RedisStorage.builder(uri)
                            .timeout(Duration.ofMillis(200))
                            .build())
                    .as(uri)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("uri is not a Redis URI")
                    .hasMessageEndingWith(RedisStorage.redact(uri))
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("s3cret"));
        }
        assertThatThrownBy(() -> RedisStorage.create("redis://127.0.0.1:6379x"))
                .hasMessage(
                        "uri is not a Redis URI (one host, and a port from 1 to 65535; any one node of a Cluster will"
                                + " do): redis://127.0.0.1:6379x");
    }

    @Test
    void create_passwordPercentEncoded_logsInWithTheDecodedPassword() {
        // The shared Redis has no password: this one is the test's own, given the password after it started.
        try (RedisProcess server = RedisProcess.start()) {
            RedisClient admin = RedisClient.create(server.uri());
            try (StatefulRedisConnection<String, String> connection = admin.connect()) {
                connection.sync().configSet("requirepass", "p#ss/w?rd@x");
            } finally {
                admin.shutdown(0, 2, TimeUnit.SECONDS);
            }
            try (RedisStorage storage =
                    RedisStorage.create("redis://:p%23ss%2Fw%3Frd%40x@127.0.0.1:" + server.port())) {
                assertThat(storage.health().up()).isTrue();
            }
            assertThatThrownBy(() -> RedisStorage.create("redis://127.0.0.1:" + server.port()))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageStartingWith("redis connect failed: ")
                    .hasMessageContaining("NOAUTH");
        }
    }

    @Test
    void build_wrongPassword_saysRedisRefusedTheLogin_withoutThePassword() {
        // Before, the message was Lettuce's "Unable to connect to 127.0.0.1/<unresolved>:6379", as for a Redis that
        // is down; Redis' WRONGPASS was only in the cause's cause.
        RedisURI shared = RedisURI.create(RedisServers.standalone());
        String uri = "redis://walkthrough-nobody:s3cret@" + shared.getHost() + ":" + shared.getPort();
        assertThatThrownBy(() -> RedisStorage.create(uri))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis connect failed: ")
                .hasMessageContaining("WRONGPASS")
                .satisfies(e -> {
                    for (Throwable t = e; t != null; t = t.getCause()) {
                        assertThat(String.valueOf(t.getMessage())).doesNotContain("s3cret");
                    }
                });
    }

    @Test
    void build_nothingListensOnThePort_failsWithGuardStorageException() {
        // The failure policy covers decisions, not start-up: a process that starts while Redis is away cannot build.
        assertThatThrownBy(() -> RedisStorage.builder("redis://127.0.0.1:1")
                        .timeout(Duration.ofMillis(200))
                        .build())
                .isInstanceOf(GuardStorageException.class)
                .hasMessageStartingWith("redis connect failed: ");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Three processes, one set of limits

    @ParameterizedTest
    @EnumSource(
            value = Target.class,
            names = {"STANDALONE", "CLUSTER"})
    void threeProcesses_shareEveryLimitExactly(Target target) {
        List<RedisStorage> storages = new ArrayList<>();
        try {
            List<Guard<Update>> guards = new ArrayList<>();
            List<ManualTicker> clocks = new ArrayList<>();
            for (int p = 0; p < PROCESSES; p++) {
                storages.add(target.builder(prefix + ":").build());
                clocks.add(ManualTicker.create());
                guards.add(botGuard(storages.get(p), clocks.get(p), FailurePolicy.failClosed()));
            }
            // One user, messages spread over the processes: one bucket of 5, counted down across all three.
            for (int i = 0; i < 5; i++) {
                Decision decision = guards.get(i % PROCESSES).check(update(1L, "m" + i));
                assertThat(decision.allowed()).as("message %d", i).isTrue();
                assertThat(decision.remaining()).as("message %d", i).isEqualTo(4 - i);
            }
            for (int p = 0; p < PROCESSES; p++) {
                Decision decision = guards.get(p).check(update(1L, "more"));
                assertThat(decision.reason()).isEqualTo(Reason.RATE_LIMITED);
                assertThat(decision.filter()).isEqualTo("per-user");
                assertThat(decision.retryAfter()).isEqualTo(Duration.ofMinutes(1));
            }
            // Other users of the chat: the chat's throttle of 7 a minute holds the 5 above and 2 more.
            int allowed = 0;
            for (int user = 2; user < 8; user++) {
                allowed += guards.get(user % PROCESSES)
                                .check(update((long) user, "hi"))
                                .allowed()
                        ? 1
                        : 0;
            }
            assertThat(allowed).isEqualTo(2);
            // A block set through one process holds in the others.
            guards.get(0).blocklist().add(1L, BLOCK);
            assertThat(guards.get(2).check(update(1L, "blocked")).reason()).isEqualTo(Reason.BLOCKED);
        } finally {
            storages.forEach(RedisStorage::close);
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = Target.class,
            names = {"STANDALONE", "CLUSTER"})
    void threeProcesses_concurrently_admitExactlyTheLimit(Target target) throws Exception {
        int threadsPerProcess = 4;
        int messagesPerThread = 20;
        List<RedisStorage> storages = new ArrayList<>();
        ExecutorService threads = Executors.newFixedThreadPool(PROCESSES * threadsPerProcess);
        try {
            List<Guard<Update>> guards = new ArrayList<>();
            for (int p = 0; p < PROCESSES; p++) {
                storages.add(target.builder(prefix + ":").build());
                guards.add(Guard.<Update>builder()
                        .storage(storages.get(p))
                        .ticker(ticker)
                        .userId(Update::userId)
                        .chatId(Update::chatId)
                        .tokenBucket("per-user", KeyBy.USER, 1_000, 1, Duration.ofHours(1))
                        .slidingWindow("per-chat", KeyBy.CHAT, 50, Duration.ofMinutes(1))
                        .build());
            }
            CountDownLatch start = new CountDownLatch(1);
            AtomicInteger allowed = new AtomicInteger();
            List<Future<?>> running = new ArrayList<>();
            for (int t = 0; t < PROCESSES * threadsPerProcess; t++) {
                Guard<Update> guard = guards.get(t % PROCESSES);
                long user = t;
                running.add(threads.submit(() -> {
                    start.await();
                    for (int i = 0; i < messagesPerThread; i++) {
                        if (guard.check(update(user, "m" + i)).allowed()) {
                            allowed.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : running) {
                f.get(60, TimeUnit.SECONDS);
            }
            // 240 messages of 12 users in one chat: the chat's window of 50 (each user's bucket keeps its own count).
            assertThat(allowed.get()).isEqualTo(50);
        } finally {
            threads.shutdownNow();
            storages.forEach(RedisStorage::close);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Keys

    @Test
    void keys_areThePrefixThenTheFilterThenTheSubjectInBraces_asTheReadmeShows() {
        try (RedisStorage storage = process(RedisServers.standalone());
                RedisView redis = new RedisView(RedisServers.standalone())) {
            Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failClosed());
            guard.check(update(42L, "hi"));
            guard.blocklist().add(7L, BLOCK);
            assertThat(redis.keys(prefix))
                    .containsExactlyInAnyOrder(
                            prefix + ":s:f:per-user{u:42}",
                            prefix + ":s:f:per-chat{c:-100}",
                            prefix + ":s:set:blocklist{u:7}");
        }
    }

    @Test
    void keyPrefix_withOrWithoutItsColon_isOnePrefix_andOneWithAnotherColonIsRefused() {
        try (RedisStorage withColon = RedisStorage.builder(RedisServers.standalone())
                        .keyPrefix(prefix + ":")
                        .build();
                RedisStorage without = RedisStorage.builder(RedisServers.standalone())
                        .keyPrefix(prefix)
                        .build()) {
            Guard<Update> one = botGuard(withColon, ticker, FailurePolicy.failClosed());
            Guard<Update> other = botGuard(without, ticker, FailurePolicy.failClosed());
            assertThat(one.check(update(1L, "a")).remaining()).isEqualTo(4);
            assertThat(other.check(update(1L, "b")).remaining()).isEqualTo(3);
        }
        assertThatThrownBy(() -> RedisStorage.builder(RedisServers.standalone()).keyPrefix("mybot:prod:"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("mybot:prod:");
    }

    @Test
    void keysOfAnyContent_eachUserCountsAlone_inOneSlot_andForgetUserTakesOnlyTheirs() {
        List<String> users = List.of(
                "a{b}c", "{", "}", "line\nbreak", "ユーザー 😀", "*?[x]", "%41", "A", "a", "b", "c", "x".repeat(10_240));
        try (RedisStorage storage = process(RedisServers.standalone());
                RedisView redis = new RedisView(RedisServers.standalone())) {
            Guard<Update> guard = Guard.<Update>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Update::userId)
                    .chatId(Update::chatId)
                    .duplicates(Duration.ofMinutes(1), Update::text)
                    .tokenBucket("per-user", KeyBy.USER, 2, 1, Duration.ofHours(1))
                    .build();
            for (String user : users) {
                assertThat(guard.check(update(user, "one")).allowed()).as(user).isTrue();
                assertThat(guard.check(update(user, "one")).reason()).as(user).isEqualTo(Reason.DUPLICATE);
                assertThat(guard.check(update(user, "two")).remaining())
                        .as(user)
                        .isZero();
                assertThat(guard.check(update(user, "three")).reason()).as(user).isEqualTo(Reason.RATE_LIMITED);
            }
            List<String> keys = redis.keys(prefix);
            assertThat(keys).hasSize(2 * users.size());
            for (String key : keys) {
                assertThat(key).startsWith(prefix + ":s:f:");
                // One hash tag, the subject: a user's keys share a Cluster slot whatever their id holds.
                assertThat(key.indexOf('{')).isEqualTo(key.lastIndexOf('{'));
                assertThat(key.indexOf('}')).isEqualTo(key.lastIndexOf('}')).isEqualTo(key.length() - 1);
            }
            for (String user : users) {
                assertThat(keys.stream()
                                .filter(k -> ownedBy(k, user))
                                .map(k -> SlotHash.getSlot(k.getBytes(StandardCharsets.UTF_8)))
                                .distinct())
                        .as(user)
                        .hasSize(1);
            }

            assertThat(guard.forgetUser("a{b}c")).isEqualTo(2);
            assertThat(guard.check(update("a{b}c", "one")).allowed()).isTrue();
            for (String user : List.of("a", "b", "c", "{", "}")) {
                assertThat(guard.check(update(user, "four")).reason()).as(user).isEqualTo(Reason.RATE_LIMITED);
            }
        }
    }

    /** Whether {@code key} is one of user {@code id}'s (whose braces and percent signs the key escapes). */
    private static boolean ownedBy(String key, String id) {
        String escaped = id.replace("%", "%25")
                .replace("{", "%7B")
                .replace("}", "%7D")
                .replace("*", "%2A")
                .replace("?", "%3F")
                .replace("[", "%5B")
                .replace("]", "%5D");
        return key.endsWith("{u:" + escaped + "}");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // When Redis stops answering

    @Test
    void failOpen_storageClosed_allowsDegraded_sayingStorageUnavailable() {
        RedisStorage storage = process(RedisServers.standalone());
        Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failOpen());
        assertThat(guard.check(update(1L, "up")).degraded()).isFalse();
        storage.close();
        for (int i = 0; i < 8; i++) {
            Decision decision = guard.check(update(1L, "down " + i));
            assertThat(decision.allowed()).isTrue();
            assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
            assertThat(decision.filter()).isEqualTo("storage");
            assertThat(decision.degraded()).isTrue();
            assertThat(decision.remaining()).isEqualTo(Long.MAX_VALUE);
        }
    }

    @Test
    void failClosed_storageClosed_rejectsRetryableWhenTheBreakerNextProbes() {
        Counting storage = new Counting(process(RedisServers.standalone()));
        Guard<Update> guard = Guard.<Update>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(Update::userId)
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofMinutes(1))
                .onStorageFailure(FailurePolicy.failClosed())
                .breaker(3, Duration.ofSeconds(10))
                .build();
        storage.close();
        // Breaker closed: each message tries Redis; the next one may find it back.
        for (int i = 0; i < 2; i++) {
            Decision decision = guard.check(update(1L, "m"));
            assertThat(decision.rejected()).isTrue();
            assertThat(decision.filter()).isEqualTo("storage");
            assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
            assertThat(decision.retryAfter()).isZero();
            assertThat(decision.degraded()).isTrue();
        }
        // The third failure opens the breaker for 10 s: Redis is not asked again, whatever the traffic.
        assertThat(guard.check(update(1L, "m")).retryAfter()).isEqualTo(Duration.ofSeconds(10));
        assertThat(storage.decisionCalls.get()).isEqualTo(3);
        ticker.advance(Duration.ofSeconds(4));
        for (int i = 0; i < 100; i++) {
            assertThat(guard.check(update((long) i, "m")).retryAfter()).isEqualTo(Duration.ofSeconds(6));
        }
        assertThat(storage.decisionCalls.get()).isEqualTo(3);
        // After the pause one probe goes through; it fails and the breaker opens again.
        ticker.advance(Duration.ofSeconds(6));
        assertThat(guard.check(update(1L, "probe")).retryAfter()).isEqualTo(Duration.ofSeconds(10));
        assertThat(guard.check(update(1L, "m")).retryAfter()).isEqualTo(Duration.ofSeconds(10));
        assertThat(storage.decisionCalls.get()).isEqualTo(4);
    }

    @Test
    void fallback_storageClosed_holdsTheLimitsInThisProcess_andLetsTheBlocklistPass() {
        RedisStorage storage = process(RedisServers.standalone());
        Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.fallbackTo(ReferenceStorage.create()));
        guard.blocklist().add(7L, BLOCK);
        assertThat(guard.check(update(7L, "hi")).reason()).isEqualTo(Reason.BLOCKED);
        assertThat(guard.check(update(1L, "hi")).remaining()).isEqualTo(4);
        storage.close();

        // The fallback starts from nothing: a full bucket of 5, counted in this process only.
        for (int i = 0; i < 5; i++) {
            Decision decision = guard.check(update(1L, "down " + i));
            assertThat(decision.allowed()).isTrue();
            assertThat(decision.reason()).isEqualTo(Reason.ALLOWED);
            assertThat(decision.filter()).isNull();
            assertThat(decision.remaining()).isEqualTo(4 - i);
            assertThat(decision.degraded()).isTrue();
        }
        Decision limited = guard.check(update(1L, "down 5"));
        assertThat(limited.reason()).isEqualTo(Reason.RATE_LIMITED);
        assertThat(limited.filter()).isEqualTo("per-user");
        assertThat(limited.retryAfter()).isEqualTo(Duration.ofMinutes(1));
        assertThat(limited.degraded()).isTrue();
        // The blocklist lives in Redis: on the fallback, the blocked user passes (README: "lets every user through").
        Decision blocked = guard.check(update(7L, "hi"));
        assertThat(blocked.allowed()).isTrue();
        assertThat(blocked.degraded()).isTrue();
        // Administration calls are not decisions: they throw.
        assertThatThrownBy(() -> guard.blocklist().add(8L)).isInstanceOf(GuardStorageException.class);
        assertThatThrownBy(() -> guard.forgetUser(1L)).isInstanceOf(GuardStorageException.class);
    }

    @Test
    void redisSilentOnTheConnection_decisionFollowsThePolicyWithinTheTimeout() throws Exception {
        // A storage over the bot's own connection, which a blocking command holds: Redis answers nothing on it, as a
        // Redis that hangs would, while the shared server stays up for everyone else.
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE);
                RedisStorage storage = RedisStorage.builder(connection)
                        .keyPrefix(prefix)
                        .timeout(Duration.ofMillis(200))
                        .build()) {
            Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failClosed());
            assertThat(guard.check(update(1L, "up")).degraded()).isFalse();
            connection.async().blpop(5, (prefix + ":never").getBytes(StandardCharsets.UTF_8));
            long start = System.nanoTime();
            Decision decision = guard.check(update(1L, "silent"));
            long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
            assertThat(decision.degraded()).isTrue();
            assertThat(tookMillis).isBetween(150L, 2_000L);
            StorageHealth health = storage.health();
            assertThat(health.up()).isFalse();
            assertThat(health.detail()).endsWith("redis health failed: no answer within 200 ms");
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Server time

    @Test
    void serverTime_processesWithClocksAnHourApart_shareOneBucket_andAPauseLastsItsDuration() {
        ManualTicker behind = ManualTicker.at(Instant.parse("2001-01-01T00:00:00Z"));
        ManualTicker ahead = ManualTicker.at(Instant.parse("2001-01-01T01:00:00Z"));
        for (boolean serverTime : new boolean[] {true, false}) {
            String shared = prefix + (serverTime ? "-server" : "-callers");
            try (RedisStorage one = RedisStorage.builder(RedisServers.standalone())
                            .keyPrefix(shared)
                            .serverTime(serverTime)
                            .build();
                    RedisStorage two = RedisStorage.builder(RedisServers.standalone())
                            .keyPrefix(shared)
                            .serverTime(serverTime)
                            .build()) {
                Guard<Update> first = gated(one, behind);
                Guard<Update> second = gated(two, ahead);
                int allowed = 0;
                for (int i = 0; i < 4; i++) {
                    allowed += first.check(update(1L, "m")).allowed() ? 1 : 0;
                    allowed += second.check(update(1L, "m")).allowed() ? 1 : 0;
                }
                // On the callers' clocks the process an hour ahead finds the bucket refilled by one.
                assertThat(allowed).as("serverTime %s", serverTime).isEqualTo(serverTime ? 3 : 4);
            }
        }
        try (RedisStorage one = RedisStorage.builder(RedisServers.standalone())
                        .keyPrefix(prefix)
                        .serverTime(true)
                        .build();
                RedisStorage two = RedisStorage.builder(RedisServers.standalone())
                        .keyPrefix(prefix)
                        .serverTime(true)
                        .build()) {
            Guard<Update> first = gated(one, behind);
            Guard<Update> second = gated(two, ahead);
            // A 429's retry_after of 10 s: the deadline answered is on the pausing process's clock...
            assertThat(first.pause("flood-wait", 2L, Duration.ofSeconds(10)))
                    .isEqualTo(behind.now().plusSeconds(10));
            // ... and both processes wait 10 s of Redis' time (less the few ms this test took), not 10 s plus an hour.
            for (Guard<Update> guard : List.of(first, second)) {
                Decision decision = guard.check(update(2L, "m"));
                assertThat(decision.reason()).isEqualTo(Reason.COOLDOWN);
                assertThat(decision.retryAfter()).isBetween(Duration.ofSeconds(8), Duration.ofSeconds(10));
            }
            // A shorter pause from the other process keeps the longer one, answered on its own clock.
            Instant inForce = second.pause("flood-wait", 2L, Duration.ofSeconds(5));
            assertThat(Duration.between(ahead.now(), inForce)).isBetween(Duration.ofSeconds(8), Duration.ofSeconds(10));
        }
    }

    /** A guard with a gate for a platform's retry_after and a bucket of 3 refilled by one an hour. */
    private static Guard<Update> gated(Storage storage, ManualTicker clock) {
        return Guard.<Update>builder()
                .storage(storage)
                .ticker(clock)
                .userId(Update::userId)
                .gate("flood-wait", KeyBy.USER)
                .tokenBucket("per-user", KeyBy.USER, 3, 1, Duration.ofHours(1))
                .build();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // forget, health, close

    @Test
    void forgetUser_removesTheUsersKeysOnly_andTheirLimitsStartAfresh() {
        try (RedisStorage storage = process(RedisServers.standalone());
                RedisView redis = new RedisView(RedisServers.standalone())) {
            Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failClosed());
            for (int i = 0; i < 5; i++) {
                guard.check(update(1L, "m" + i));
            }
            guard.check(update(2L, "other"));
            guard.blocklist().add(1L, BLOCK);
            assertThat(guard.check(update(1L, "m")).reason()).isEqualTo(Reason.BLOCKED);

            // The bucket and the block; the chat's throttle (6 of 7 taken) is the chat's.
            assertThat(guard.forgetUser(1L)).isEqualTo(2);
            assertThat(redis.keys(prefix))
                    .containsExactlyInAnyOrder(prefix + ":s:f:per-user{u:2}", prefix + ":s:f:per-chat{c:-100}");
            Decision again = guard.check(new Update(1L, null, "again")); // no chat: the bucket alone
            assertThat(again.allowed()).isTrue();
            assertThat(again.remaining()).isEqualTo(4);
            assertThat(guard.check(new Update(2L, null, "again")).remaining()).isEqualTo(3);
            assertThat(guard.check(update(3L, "last")).remaining()).isZero();
            assertThat(guard.forgetUser(1L)).isEqualTo(1);
            assertThat(guard.forgetUser("never-seen")).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = Target.class,
            names = {"STANDALONE", "CLUSTER"})
    void close_ownClient_failsLaterCallsSayingSo_andHealthIsDownWithoutThrowing(Target target) {
        RedisStorage storage = target.builder(prefix + ":").build();
        assertThat(storage.health().up()).isTrue();
        storage.close();
        storage.close(); // twice is harmless

        StorageHealth health = storage.health();
        assertThat(health.up()).isFalse();
        assertThat(health.detail()).endsWith("redis health failed: the storage is closed");
        StateKey key = new StateKey("f:per-user", "u:1");
        assertThatThrownBy(() ->
                        storage.acquire(key, new TokenBucket(5, 1, Duration.ofMinutes(1)), 1, ticker.epochMicros()))
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("redis acquire failed: the storage is closed");
        assertThatThrownBy(() -> storage.forget("u:1"))
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("redis forget failed: the storage is closed");
        assertThatThrownBy(() -> storage.isMember(key, ticker.epochMicros()))
                .isInstanceOf(GuardStorageException.class)
                .hasMessage("redis isMember failed: the storage is closed");
    }

    @Test
    void close_storageOverYourConnection_leavesTheConnectionOpen() {
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE)) {
            RedisStorage.builder(connection).keyPrefix(prefix).build().close();
            assertThat(connection.isOpen()).isTrue();
            assertThat(connection.sync().ping()).isEqualTo("PONG");
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Cluster

    @Test
    void cluster_fromAnyNodesUri_isDetected_healthCoversEveryMaster_andForgetReachesEveryMaster() {
        try (RedisStorage storage = process(RedisServers.cluster())) {
            StorageHealth health = storage.health();
            assertThat(health.up()).isTrue();
            assertThat(health.detail()).startsWith("redis cluster ");
            Guard<Update> guard = botGuard(storage, ticker, FailurePolicy.failClosed());
            // Users spread over the masters; each one's keys in its own slot.
            for (long user = 0; user < 30; user++) {
                guard.scope("s" + user % 3).check(new Update(user, user, "hi"));
            }
            long removed = 0;
            for (long user = 0; user < 30; user++) {
                removed += guard.forgetUser(user);
                assertThat(guard.scope("s" + user % 3)
                                .check(new Update(user, user, "hi"))
                                .remaining())
                        .isEqualTo(4);
            }
            // Each user's bucket and their private chat's throttle (kept under the user, in the user's slot).
            assertThat(removed).isEqualTo(60);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Helpers

    /** A synchronous view of the standalone Redis, to look at the keys the storage wrote. */
    private static final class RedisView implements AutoCloseable {
        private final RedisClient client;
        private final StatefulRedisConnection<byte[], byte[]> connection;

        RedisView(String uri) {
            client = RedisClient.create(uri);
            connection = client.connect(ByteArrayCodec.INSTANCE);
        }

        /** Every key under {@code prefix}, as UTF-8 text. */
        List<String> keys(String prefix) {
            RedisCommands<byte[], byte[]> redis = connection.sync();
            ScanArgs match = ScanArgs.Builder.matches(prefix + ":*").limit(1_000);
            TreeSet<String> keys = new TreeSet<>();
            ScanCursor cursor = ScanCursor.INITIAL;
            do {
                KeyScanCursor<byte[]> page = redis.scan(cursor, match);
                page.getKeys().forEach(k -> keys.add(new String(k, StandardCharsets.UTF_8)));
                cursor = page;
            } while (!cursor.isFinished());
            return new ArrayList<>(keys);
        }

        @Override
        public void close() {
            connection.close();
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /** A storage that counts the decision calls that reach it: what the breaker spares. */
    private static final class Counting extends ForwardingStorage {
        final AtomicInteger decisionCalls = new AtomicInteger();

        Counting(Storage storage) {
            super(storage);
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            decisionCalls.incrementAndGet();
            return super.evaluate(batch, nowMicros);
        }

        @Override
        public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
            decisionCalls.incrementAndGet();
            return super.evaluateInPlace(buffer, nowMicros);
        }

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            decisionCalls.incrementAndGet();
            return super.evaluateAsync(batch, nowMicros);
        }

        @Override
        public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
            decisionCalls.incrementAndGet();
            return super.acquire(key, spec, permits, nowMicros);
        }
    }
}
