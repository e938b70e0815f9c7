package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ForwardingStorage;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A guard whose one stateful filter is keyed by the user, the chat or nothing decides without a buffer, in one {@code
 * Storage.acquire}. Its decisions, listeners, reject notices and failure handling must be those of the chain's path:
 * here the same filter beside a set that nobody is in (a chain of two steps, whose set never rejects and counts no
 * quota) decides the same random history on a storage of its own.
 */
class GuardSingleStepTest {
    record Msg(Long user, Long chat) {}

    /** A storage that fails every decision while {@link #failing}. */
    static final class Switchable extends ForwardingStorage {
        boolean failing;
        final List<String> calls = new ArrayList<>();

        Switchable() {
            super(ReferenceStorage.create());
        }

        private void maybeFail(String call) {
            calls.add(call);
            if (failing) {
                throw new GuardStorageException("test", call, "down", null);
            }
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            maybeFail("evaluate");
            return super.evaluate(batch, nowMicros);
        }

        @Override
        public boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
            maybeFail("evaluateInPlace");
            return super.evaluateInPlace(buffer, nowMicros);
        }

        @Override
        public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
            maybeFail("acquire");
            return super.acquire(key, spec, permits, nowMicros);
        }
    }

    /** One side: its guard, storage and what its listeners heard. */
    static final class Side {
        final Switchable storage = new Switchable();
        final List<String> heard = new ArrayList<>();
        final Guard<Msg> guard;

        Side(
                ManualTicker ticker,
                String filter,
                KeyBy key,
                MissingKeyPolicy missing,
                String policy,
                boolean listened,
                boolean chain) {
            Guard.Builder<Msg> b = Guard.<Msg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Msg::user)
                    .chatId(Msg::chat)
                    .missingKeys(missing)
                    .breaker(3, Duration.ofSeconds(5))
                    .onStorageFailure(
                            switch (policy) {
                                case "open" -> FailurePolicy.failOpen();
                                case "closed" -> FailurePolicy.failClosed();
                                default -> FailurePolicy.fallbackTo(ReferenceStorage.create());
                            });
            if (listened) {
                b.listener((m, d, nanos) -> heard.add("decided " + m + " " + d))
                        .onReject((m, d) -> heard.add("rejected " + m + " " + d))
                        .rejectNotice(Duration.ofSeconds(3), (m, d) -> heard.add("notice " + m + " " + d));
            }
            switch (filter) {
                case "throttle" -> b.throttle("f", key, 3, Duration.ofSeconds(10));
                case "bucket" -> b.tokenBucket("f", key, 2, 1, Duration.ofSeconds(2));
                case "window" -> b.slidingWindow("f", key, 3, Duration.ofSeconds(10));
                case "cooldown" -> b.cooldown("f", key, Duration.ofSeconds(3));
                default -> throw new IllegalArgumentException(filter);
            }
            if (chain) {
                b.limit("nobody", key, Membership.MUST_BE_ABSENT);
            }
            guard = b.build();
        }
    }

    @ParameterizedTest(name = "{0} by {1}, {2}, fail {3}, listened {4}")
    @CsvSource({
        "throttle, USER, SKIP_FILTER, open, true",
        "throttle, CHAT, REJECT, closed, true",
        "throttle, GLOBAL, SKIP_FILTER, fallback, true",
        "throttle, GLOBAL, SKIP_FILTER, fallback, false",
        "bucket, USER, REJECT, fallback, true",
        "bucket, CHAT, SKIP_FILTER, open, true",
        "bucket, GLOBAL, REJECT, closed, true",
        "bucket, GLOBAL, REJECT, closed, false",
        "bucket, USER, SKIP_FILTER, open, false",
        "window, USER, SKIP_FILTER, closed, true",
        "window, GLOBAL, SKIP_FILTER, open, true",
        "window, GLOBAL, SKIP_FILTER, open, false",
        "cooldown, USER, SKIP_FILTER, fallback, true",
        "cooldown, CHAT, REJECT, open, true",
        "cooldown, GLOBAL, REJECT, fallback, false",
    })
    void oneFilter_decidesAsTheChainsPath(
            String filter, KeyBy key, MissingKeyPolicy missing, String policy, boolean listened) {
        ManualTicker ticker = ManualTicker.create();
        Side single = new Side(ticker, filter, key, missing, policy, listened, false);
        Side chain = new Side(ticker, filter, key, missing, policy, listened, true);
        SplittableRandom random = new SplittableRandom(filter.hashCode() * 31L + key.ordinal());
        Long[] users = {null, 1L, 2L, 1_234_567_890L, 7_000_000_001L};
        Long[] chats = {null, 1L, -100_200_300L, 5L};
        int failed = 0;
        int rejected = 0;
        for (int i = 0; i < 3_000; i++) {
            Msg m = new Msg(users[random.nextInt(users.length)], chats[random.nextInt(chats.length)]);
            boolean fail = random.nextInt(20) == 0 || (i > 1_000 && i < 1_040);
            single.storage.failing = fail;
            chain.storage.failing = fail;
            failed += fail ? 1 : 0;
            Function<Guard<Msg>, Guard<Msg>> view = random.nextBoolean() ? g -> g : g -> g.scope("search");
            Decision expected = view.apply(chain.guard).check(m);
            Decision actual = view.apply(single.guard).check(m);
            assertThat(actual).as("message %d: %s", i, m).isEqualTo(expected);
            rejected += actual.allowed() ? 0 : 1;
            ticker.advance(Duration.ofMillis(random.nextInt(2_000)));
        }
        assertThat(single.heard).isEqualTo(chain.heard);
        assertThat(failed).isPositive();
        assertThat(rejected).isPositive();
        // The single path really took one acquire per decision that reached the storage, the chain a batch.
        assertThat(single.storage.calls)
                .doesNotContain("evaluateInPlace", "evaluate")
                .contains("acquire");
        assertThat(chain.storage.calls).contains("evaluateInPlace");
        if (listened) {
            assertThat(single.heard).anyMatch(h -> h.startsWith("notice")).anyMatch(h -> h.startsWith("rejected"));
        }
    }
}
