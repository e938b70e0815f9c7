package dev.guard.examples;

import dev.guard.Debouncer;
import dev.guard.Guard;
import dev.guard.GuardedHandler;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.metrics.GuardMetrics;
import dev.guard.route.OutboundMessage;
import dev.guard.route.PlatformPreset;
import dev.guard.route.SendDecision;
import dev.guard.route.Sender;
import dev.guard.route.SenderPool;
import dev.guard.route.WarmUpSchedule;
import dev.guard.spi.Storage;
import dev.guard.storage.jdbc.JdbcStorage;
import dev.guard.storage.memory.MemoryStorage;
import dev.guard.storage.redis.RedisStorage;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;

/**
 * The code examples of the published modules' Javadoc, compiled here so that they cannot rot ({@code JavadocTest}
 * checks that the Javadoc shows this code). What an example takes from its surroundings ({@code bot}, {@code
 * storage}, {@code scheduler}...) is a parameter. {@code JavadocTest} runs the examples that need no server; the
 * Redis and JDBC ones need theirs, so the build only compiles them.
 */
public final class JavadocExamples {
    private JavadocExamples() {}

    /** The bot that the examples hand their messages to. */
    public interface Bot {
        /** Handles one update. */
        void onUpdate(Update update);

        /** Handles the updates of one media album. */
        void onAlbum(List<Update> album);
    }

    /** {@link Guard}'s example. */
    public static GuardedHandler<Update> guard(Bot bot) {
        // Javadoc:Guard:begin
        Guard<Update> guard = Guard.<Update>builder()
                .storage(MemoryStorage.create())
                .userId(Update::userId)
                .chatId(Update::chatId)
                .blocklist()
                .duplicates(Duration.ofSeconds(10), Update::text)
                .throttle("per-chat", KeyBy.CHAT, 20, Duration.ofMinutes(1))
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .build();
        GuardedHandler<Update> handler = guard.wrap(bot::onUpdate);
        // Javadoc:Guard:end
        return handler;
    }

    /** {@link Debouncer}'s example. */
    public static Debouncer<Update> debouncer(Guard<Update> guard, Bot bot, ScheduledExecutorService scheduler) {
        // Javadoc:Debouncer:begin
        Debouncer<Update> albums = Debouncer.builder(Update::mediaGroupId, bot::onAlbum)
                .window(Duration.ofMillis(500))
                .maxWait(Duration.ofSeconds(3))
                .build();
        GuardedHandler<Update> handler = guard.wrap(albums::offer);
        albums.start(scheduler, Duration.ofMillis(100)); // or call flushDue() from your own loop
        // Javadoc:Debouncer:end
        return albums;
    }

    /** {@link ManualTicker}'s example. */
    public static ManualTicker manualTicker() {
        // Javadoc:ManualTicker:begin
        ManualTicker ticker = ManualTicker.at(Instant.parse("2026-01-01T00:00:00Z"));
        ticker.advance(Duration.ofSeconds(1));
        // Javadoc:ManualTicker:end
        return ticker;
    }

    /** {@link GuardMetrics}' example. */
    public static Guard<Update> guardMetrics(Storage storage, MeterRegistry registry) {
        // Javadoc:GuardMetrics:begin
        Guard<Update> guard = Guard.<Update>builder()
                .storage(storage)
                .userId(Update::userId)
                .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
                .listener(new GuardMetrics(registry, "support-bot"))
                .build();
        // Javadoc:GuardMetrics:end
        return guard;
    }

    /** {@link OutboundMessage}'s example. */
    public static void outboundMessage() {
        // Javadoc:OutboundMessage:begin
        OutboundMessage.to("12345").carrying("links").stickyBy("12345");
        // Javadoc:OutboundMessage:end
    }

    /** {@link Sender}'s example. */
    public static void sender() {
        // Javadoc:Sender:begin
        Sender.builder("bot-7")
                .group("b")
                .tags("links", "media")
                .warmUp(WarmUpSchedule.sendGrid())
                .build();
        // Javadoc:Sender:end
    }

    /** {@link SenderPool}'s example. */
    public static SenderPool senderPool(Storage storage) {
        // Javadoc:SenderPool:begin
        SenderPool pool = SenderPool.builder(storage)
                .preset(PlatformPreset.telegram())
                .sender(Sender.of("bot-a"))
                .sender(Sender.builder("bot-b")
                        .warmUp(WarmUpSchedule.sendGrid())
                        .build())
                .build();
        // Javadoc:SenderPool:end
        return pool;
    }

    /** {@link SendDecision}'s example. */
    public static SendDecision sendDecision(
            SenderPool pool, String chatId, ScheduledExecutorService scheduler, Runnable task) {
        // Javadoc:SendDecision:begin
        SendDecision d = pool.acquire(OutboundMessage.to(chatId));
        if (d instanceof SendDecision.Granted g) {
            // Send through g.sender(); then report g.delivered(latency), g.retryAfter(retryAfter) or g.failed(cause).
        } else if (d instanceof SendDecision.Delayed later) {
            // Rounded up: toMillis() alone would cut 1.9 ms to 1 ms and retry too early.
            scheduler.schedule(task, later.retryAfter().plusNanos(999_999).toMillis(), TimeUnit.MILLISECONDS);
        }
        // Javadoc:SendDecision:end
        return d;
    }

    /** {@link MemoryStorage}'s example. */
    public static Storage memoryStorage() {
        // Javadoc:MemoryStorage:begin
        Storage storage = MemoryStorage.create();
        // Javadoc:MemoryStorage:end
        return storage;
    }

    /** {@link RedisStorage}'s example; needs Redis on 127.0.0.1. */
    public static List<Storage> redisStorage() {
        // Javadoc:RedisStorage:begin
        Storage storage = RedisStorage.create("redis://127.0.0.1:6379");

        Storage tuned = RedisStorage.builder("redis://127.0.0.1:6379")
                .keyPrefix("mybot:")
                .timeout(Duration.ofMillis(200))
                .build();
        // Javadoc:RedisStorage:end
        return List.of(storage, tuned);
    }

    /** {@link JdbcStorage}'s example; needs the database that {@code dataSource} opens. */
    public static JdbcStorage jdbcStorage(DataSource dataSource) {
        // Javadoc:JdbcStorage:begin
        JdbcStorage storage = JdbcStorage.builder(dataSource).build();
        storage.createSchema(); // or run the DDL from the README with your migration tool
        // Javadoc:JdbcStorage:end
        return storage;
    }
}
