package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.Decision;
import dev.guard.FailurePolicy;
import dev.guard.Guard;
import dev.guard.GuardedHandler;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.Reason;
import dev.guard.spi.ReferenceStorage;
import io.lettuce.core.event.connection.ConnectionActivatedEvent;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import reactor.core.Disposable;

/**
 * End to end: a bot's handler behind a {@link Guard} on a Redis that the test starts on its own loopback port, stops in
 * the middle of the run and restarts. Decisions follow the failure policy while Redis is away, nothing throws into the
 * handler, and the guard goes back to Redis when it returns.
 */
class RedisGuardFailureTest {
    record Msg(long user, String text) {
        long chat() {
            return 100;
        }
    }

    enum Policy {
        FAIL_OPEN,
        FAIL_CLOSED,
        FALLBACK;

        FailurePolicy policy() {
            return switch (this) {
                case FAIL_OPEN -> FailurePolicy.failOpen();
                case FAIL_CLOSED -> FailurePolicy.failClosed();
                case FALLBACK -> FailurePolicy.fallbackTo(ReferenceStorage.create());
            };
        }
    }

    @ParameterizedTest
    @EnumSource(Policy.class)
    void guard_redisStoppedMidRunAndRestarted_followsThePolicyAndRecovers(Policy policy) throws Exception {
        ManualTicker ticker = ManualTicker.create();
        List<Msg> handled = new CopyOnWriteArrayList<>();
        try (RedisProcess server = RedisProcess.start();
                RedisStorage storage = RedisStorage.builder(server.uri())
                        .timeout(Duration.ofSeconds(5))
                        .build()) {
            Guard<Msg> guard = Guard.<Msg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Msg::user)
                    .chatId(Msg::chat)
                    .duplicates(Duration.ofSeconds(30), Msg::text)
                    .tokenBucket("per-user", KeyBy.USER, 3, 1, Duration.ofMinutes(1))
                    .onStorageFailure(policy.policy())
                    .breaker(3, Duration.ofSeconds(5))
                    .build();
            GuardedHandler<Msg> handler = guard.wrap(handled::add);

            // Redis up: the limits hold across the chain.
            assertThat(handler.handle(new Msg(1, "a")).reason()).isEqualTo(Reason.ALLOWED);
            assertThat(handler.handle(new Msg(1, "a")).reason()).isEqualTo(Reason.DUPLICATE);
            assertThat(handler.handle(new Msg(1, "b")).reason()).isEqualTo(Reason.ALLOWED);
            assertThat(handler.handle(new Msg(1, "c")).reason()).isEqualTo(Reason.ALLOWED);
            assertThat(handler.handle(new Msg(1, "d")).reason()).isEqualTo(Reason.RATE_LIMITED);
            assertThat(handled).extracting(Msg::text).containsExactly("a", "b", "c");

            server.stop();

            long start = System.nanoTime();
            for (int i = 0; i < 10; i++) {
                // A new user: with the fallback, its own bucket of 3 starts on the local storage.
                Decision decision = i % 2 == 0
                        ? handler.handle(new Msg(2, "down " + i))
                        : guard.checkAsync(new Msg(2, "down " + i))
                                .toCompletableFuture()
                                .join();
                assertThat(decision.degraded())
                        .as("decision %d while Redis is down", i)
                        .isTrue();
                switch (policy) {
                    case FAIL_OPEN -> assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
                    case FAIL_CLOSED -> {
                        assertThat(decision.allowed()).isFalse();
                        assertThat(decision.reason()).isEqualTo(Reason.STORAGE_UNAVAILABLE);
                    }
                    case FALLBACK ->
                        assertThat(decision.reason()).isEqualTo(i < 3 ? Reason.ALLOWED : Reason.RATE_LIMITED);
                }
            }
            // The timeout is 5 s; a dead Redis is noticed at once, and after three failures not even asked.
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(2_000);
            long handledWhileDown = handled.stream().filter(m -> m.user() == 2).count();
            assertThat(handledWhileDown)
                    .isEqualTo(policy == Policy.FAIL_CLOSED ? 0 : policy == Policy.FALLBACK ? 2 : 5);

            CountDownLatch reconnected = new CountDownLatch(1);
            Disposable subscription = storage.resources().eventBus().get().subscribe(e -> {
                if (e instanceof ConnectionActivatedEvent) {
                    reconnected.countDown();
                }
            });
            try {
                server.restart();
                assertThat(reconnected.await(10, TimeUnit.SECONDS))
                        .as("reconnected")
                        .isTrue();
            } finally {
                subscription.dispose();
            }

            // Still degraded while the breaker is open; the first message after it opened for 5 s probes Redis.
            assertThat(handler.handle(new Msg(3, "e")).degraded()).isTrue();
            ticker.advance(Duration.ofSeconds(5));
            Decision probe = handler.handle(new Msg(3, "f"));
            assertThat(probe.degraded()).isFalse();
            assertThat(probe.reason()).isEqualTo(Reason.ALLOWED);
            // The restarted Redis kept nothing: user 3's bucket of 3 is full, and now Redis counts it.
            assertThat(handler.handle(new Msg(3, "f")).reason()).isEqualTo(Reason.DUPLICATE);
            assertThat(handler.handle(new Msg(3, "g")).reason()).isEqualTo(Reason.ALLOWED);
            assertThat(handler.handle(new Msg(3, "h")).reason()).isEqualTo(Reason.ALLOWED);
            Decision limited = handler.handle(new Msg(3, "i"));
            assertThat(limited.reason()).isEqualTo(Reason.RATE_LIMITED);
            assertThat(limited.degraded()).isFalse();
        }
    }
}
