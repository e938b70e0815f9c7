package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.InstanceOfAssertFactories.STRING;

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
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
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

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            maybeFail("evaluateAsync");
            return super.evaluateAsync(batch, nowMicros);
        }
    }

    /** The failure policy named {@code open}, {@code closed} or (anything else) a fallback to a reference storage. */
    static FailurePolicy policy(String name) {
        return switch (name) {
            case "open" -> FailurePolicy.failOpen();
            case "closed" -> FailurePolicy.failClosed();
            default -> FailurePolicy.fallbackTo(ReferenceStorage.create());
        };
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
                boolean local,
                boolean chain) {
            Guard.Builder<Msg> b = Guard.<Msg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(Msg::user)
                    .chatId(Msg::chat)
                    .missingKeys(missing)
                    .breaker(3, Duration.ofSeconds(5))
                    .onStorageFailure(policy(policy));
            if (listened) {
                b.listener((m, d, nanos) -> heard.add("decided " + m + " " + d))
                        .onReject((m, d) -> heard.add("rejected " + m + " " + d))
                        .rejectNotice(Duration.ofSeconds(3), (m, d) -> heard.add("notice " + m + " " + d));
            }
            if (local) {
                // Rejects chat 5; throws (and so rejects) for user 2 in chat 1.
                b.filter("local", m -> {
                    if (Long.valueOf(2L).equals(m.user()) && Long.valueOf(1L).equals(m.chat())) {
                        throw new IllegalStateException("the bot's filter failed");
                    }
                    return !Long.valueOf(5L).equals(m.chat());
                });
            }
            switch (filter) {
                case "throttle" -> b.throttle("f", key, 3, Duration.ofSeconds(10));
                case "bucket" -> b.tokenBucket("f", key, 2, 1, Duration.ofSeconds(2));
                case "window" -> b.slidingWindow("f", key, 3, Duration.ofSeconds(10));
                case "cooldown" -> b.cooldown("f", key, Duration.ofSeconds(3));
                case "gate" -> b.gate("f", key);
                case "members" -> b.limit("f", key, Membership.MUST_BE_PRESENT);
                case "muted" -> b.limit("f", key, Membership.MUST_BE_ABSENT);
                case "blocklist" -> b.blocklist();
                case "registered" -> b.requireRegistration();
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
        Side single = new Side(ticker, filter, key, missing, policy, listened, false, false);
        Side chain = new Side(ticker, filter, key, missing, policy, listened, false, true);
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

    /**
     * Gates closed by {@link Guard#pause} (for a while, for ever), sets changed through {@link Guard#members}, the
     * blocklist and the registrations as the one filter, and a local filter before it (one that rejects, one that
     * throws): the single filter's path decides as the chain's and as {@link Guard#checkAsync}, and tells the
     * listeners the same.
     */
    @ParameterizedTest(name = "{0} by {1}, {2}, fail {3}, listened {4}, local filter {5}")
    @CsvSource({
        "gate, USER, SKIP_FILTER, open, true, true",
        "gate, CHAT, REJECT, fallback, true, false",
        "gate, GLOBAL, SKIP_FILTER, closed, true, true",
        "gate, GLOBAL, SKIP_FILTER, fallback, false, false",
        "members, USER, REJECT, open, true, false",
        "members, CHAT, SKIP_FILTER, fallback, true, true",
        "members, GLOBAL, SKIP_FILTER, closed, false, false",
        "muted, CHAT, SKIP_FILTER, closed, true, false",
        "muted, GLOBAL, SKIP_FILTER, open, false, false",
        "blocklist, USER, SKIP_FILTER, fallback, true, false",
        "blocklist, USER, REJECT, open, false, true",
        "registered, USER, REJECT, closed, true, true",
        "registered, USER, SKIP_FILTER, fallback, true, false",
        "throttle, USER, SKIP_FILTER, fallback, true, true",
        "bucket, GLOBAL, SKIP_FILTER, closed, false, true",
    })
    void setsGatesAndLocalFilters_decideAsTheChainsPath(
            String filter, KeyBy key, MissingKeyPolicy missing, String policy, boolean listened, boolean local) {
        ManualTicker ticker = ManualTicker.create();
        Side single = new Side(ticker, filter, key, missing, policy, listened, local, false);
        Side chain = new Side(ticker, filter, key, missing, policy, listened, local, true);
        Side async = new Side(ticker, filter, key, missing, policy, listened, local, false);
        SplittableRandom random = new SplittableRandom(filter.hashCode() * 31L + key.ordinal() + (local ? 7 : 0));
        Long[] users = {null, 1L, 2L, 1_234_567_890L, 7_000_000_001L};
        Long[] chats = {null, 1L, -100_200_300L, 5L};
        Long[] ids = key == KeyBy.CHAT ? chats : users;
        int rejected = 0;
        int byFilter = 0;
        for (int i = 0; i < 2_000; i++) {
            if (random.nextInt(8) == 0) {
                Long id = ids[1 + random.nextInt(ids.length - 1)];
                boolean add = random.nextInt(3) > 0;
                Duration d = Duration.ofMillis(1 + random.nextInt(6_000));
                // For ever, now and then: a gate's rejection that no wait cures (never the global gate's, nor id 1's).
                boolean forever = key != KeyBy.GLOBAL && id != 1L && random.nextInt(40) == 0;
                for (Side side : List.of(single, chain, async)) {
                    switch (filter) {
                        case "gate" -> side.guard.pause("f", id, forever ? ChronoUnit.FOREVER.getDuration() : d);
                        case "members", "muted" -> change(side.guard.members("f"), id, add, forever ? null : d);
                        case "blocklist" -> change(side.guard.blocklist(), id, add, d);
                        case "registered" -> change(side.guard.registrations(), id, add, forever ? null : d);
                        default -> {}
                    }
                }
            }
            Msg m = new Msg(users[random.nextInt(users.length)], chats[random.nextInt(chats.length)]);
            boolean fail = random.nextInt(12) == 0 || (i > 900 && i < 930);
            single.storage.failing = fail;
            chain.storage.failing = fail;
            async.storage.failing = fail;
            Function<Guard<Msg>, Guard<Msg>> view = random.nextBoolean() ? g -> g : g -> g.scope("search");
            Decision expected = view.apply(chain.guard).check(m);
            Decision actual = view.apply(single.guard).check(m);
            Decision viaAsync =
                    view.apply(async.guard).checkAsync(m).toCompletableFuture().join();
            assertThat(actual).as("message %d: %s", i, m).isEqualTo(expected);
            assertThat(viaAsync).as("message %d: %s, checkAsync", i, m).isEqualTo(expected);
            rejected += actual.allowed() ? 0 : 1;
            byFilter +=
                    !actual.allowed() && !actual.degraded() && actual.filter().equals(name(filter)) ? 1 : 0;
            ticker.advance(Duration.ofMillis(random.nextInt(1_500)));
        }
        assertThat(single.heard).isEqualTo(chain.heard);
        assertThat(async.heard).isEqualTo(chain.heard);
        assertThat(rejected).isPositive();
        assertThat(byFilter).as("rejections by the filter itself").isPositive();
        assertThat(single.storage.calls).doesNotContain("evaluateInPlace", "evaluate");
        if (listened) {
            assertThat(single.heard).anyMatch(h -> h.startsWith("notice"));
        }
    }

    /** The name of the one filter of a {@link Side} of {@code filter}. */
    private static String name(String filter) {
        return filter.equals("blocklist") || filter.equals("registered") ? filter : "f";
    }

    /** Adds {@code id} to {@code set} (for {@code d}, or for good when null) or removes it. */
    private static void change(MemberSet set, Long id, boolean add, Duration d) {
        if (!add) {
            set.remove(id);
        } else if (d == null) {
            set.add(id);
        } else {
            set.add(id, d);
        }
    }

    /** A message whose ids are what its extractors meet: an id of any type, null, a {@link Throws}, a {@link Text}. */
    record OddMsg(int n, Object user, Object chat) {
        @Override
        public String toString() {
            return "#" + n; // not the ids': some of their toString() throw
        }
    }

    /** What an extractor throws when it meets one (undeclared for a checked one, as Kotlin code throws it). */
    record Throws(Throwable thrown) {}

    /** An id whose {@code toString()} throws {@code thrown} (undeclared for a checked one), or answers null. */
    static final class Text {
        final Throwable thrown;

        Text(Throwable thrown) {
            this.thrown = thrown;
        }

        @Override
        public String toString() {
            if (thrown == null) {
                return null;
            }
            throw sneaky(thrown);
        }
    }

    /** An {@link Error} of the bot's, which must reach the caller of a check as it does on the chain's path. */
    static final class BotError extends Error {
        private static final long serialVersionUID = 1L;

        BotError(String message) {
            super(message);
        }
    }

    @SuppressWarnings("unchecked")
    private static <E extends Throwable> RuntimeException sneaky(Throwable e) throws E {
        throw (E) e;
    }

    /** One side for {@link OddMsg}s: what its extractors were asked, what its listeners heard, what each check did. */
    static final class OddSide {
        final Switchable storage = new Switchable();
        final List<String> events = new ArrayList<>();
        final boolean async;
        final Guard<OddMsg> guard;
        int userReads;
        int chatReads;
        int depth;

        OddSide(
                ManualTicker ticker,
                KeyBy key,
                MissingKeyPolicy missing,
                String policy,
                boolean listened,
                String path) {
            this.async = path.equals("async");
            Guard.Builder<OddMsg> b = Guard.<OddMsg>builder()
                    .storage(storage)
                    .ticker(ticker)
                    .userId(m -> read(m.user(), true))
                    .chatId(m -> read(m.chat(), false))
                    .missingKeys(missing)
                    .breaker(2, Duration.ofSeconds(3))
                    .onStorageFailure(
                            switch (policy) {
                                case "open" -> FailurePolicy.failOpen();
                                case "closed" -> FailurePolicy.failClosed();
                                default -> FailurePolicy.fallbackTo(ReferenceStorage.create());
                            })
                    .throttle("f", key, 3, Duration.ofSeconds(10));
            if (listened) {
                b.listener((m, d, nanos) -> events.add("decided " + m + " " + d))
                        .onReject((m, d) -> events.add("rejected " + m + " " + d))
                        .rejectNotice(Duration.ofSeconds(3), (m, d) -> events.add("notice " + m + " " + d))
                        // A check from a listener, on the same thread, in the middle of the outer one.
                        .listener((m, d, nanos) -> nested(m));
            }
            if (path.equals("chain")) {
                b.limit("nobody", key, Membership.MUST_BE_ABSENT);
            }
            guard = b.build();
        }

        /** Checks a message of its own for every seventh message, from a listener of the check of {@code m}. */
        private void nested(OddMsg m) {
            if (depth == 0 && m.n() % 7 == 0) {
                depth++;
                try {
                    check(guard, new OddMsg(-m.n(), 1L, 1L));
                } finally {
                    depth--;
                }
            }
        }

        private Object read(Object id, boolean user) {
            if (user) {
                userReads++;
            } else {
                chatReads++;
            }
            if (id instanceof Throws t) {
                throw sneaky(t.thrown());
            }
            return id;
        }

        /**
         * Checks {@code m} on {@code view} (this side's guard or a scope of it), recording the decision or what the
         * check threw, whether the thread was left interrupted (clearing it), and the ids read so far.
         */
        void check(Guard<OddMsg> view, OddMsg m) {
            String result;
            try {
                result = String.valueOf(
                        async ? view.checkAsync(m).toCompletableFuture().join() : view.check(m));
            } catch (CompletionException e) {
                result = "threw " + e.getCause().getClass().getSimpleName(); // checkAsync's stage: the same Error
            } catch (Error | RuntimeException e) {
                result = "threw " + e.getClass().getSimpleName();
            }
            events.add(m + " " + result + " interrupted " + Thread.interrupted() + " reads " + userReads + "/"
                    + chatReads);
        }
    }

    /**
     * Ids of any type and extractors that misbehave (throw, throw undeclared checked exceptions or an {@link Error},
     * answer ids whose {@code toString()} throws or answers null): the single filter's path reads the ids as the
     * chain's path does, both of them, once each, whichever the filter is keyed by, so that what the bot's code throws
     * reaches the caller (an {@link Error}), leaves the thread interrupted (an undeclared {@link
     * InterruptedException}) or is logged alike; and {@link Guard#checkAsync} decides the same.
     */
    @ParameterizedTest(name = "by {0}, {1}, fail {2}, listened {3}")
    @CsvSource({
        "USER, SKIP_FILTER, open, true",
        "USER, REJECT, fallback, true",
        "USER, SKIP_FILTER, closed, false",
        "CHAT, REJECT, closed, true",
        "CHAT, SKIP_FILTER, fallback, false",
        "GLOBAL, SKIP_FILTER, fallback, true",
        "GLOBAL, REJECT, open, false",
    })
    void oddIdsAndExtractors_areReadAsOnTheChainsPath(
            KeyBy key, MissingKeyPolicy missing, String policy, boolean listened) {
        ManualTicker ticker = ManualTicker.create();
        OddSide single = new OddSide(ticker, key, missing, policy, listened, "single");
        OddSide chain = new OddSide(ticker, key, missing, policy, listened, "chain");
        OddSide async = new OddSide(ticker, key, missing, policy, listened, "async");
        Object[] ids = {
            null,
            1L,
            2L,
            1, // an Integer: the same subject as 1L
            "2", // a String: the same subject as 2L
            -100_200_300L,
            new Text(null),
            new Text(new IllegalStateException("no text")),
            new Text(new InterruptedException("interrupted in toString")),
            new Throws(new IllegalArgumentException("no id")),
            new Throws(new InterruptedException("interrupted in the extractor")),
            new Throws(new java.io.IOException("undeclared")),
            new Throws(new BotError("the extractor's")),
            new Text(new BotError("toString's")),
        };
        SplittableRandom random = new SplittableRandom(key.ordinal() * 31L + policy.hashCode());
        int threw = 0;
        for (int i = 1; i <= 1_500; i++) {
            // Mostly good ids (so that the throttle rejects and notices go out), an odd one in about one id of four.
            OddMsg m = new OddMsg(i, pick(ids, random), pick(ids, random));
            boolean fail = random.nextInt(15) == 0;
            Function<Guard<OddMsg>, Guard<OddMsg>> view = random.nextBoolean() ? g -> g : g -> g.scope("search");
            for (OddSide side : List.of(chain, single, async)) {
                side.storage.failing = fail;
                side.check(view.apply(side.guard), m);
            }
            threw += chain.events.get(chain.events.size() - 1).contains("threw") ? 1 : 0;
            ticker.advance(Duration.ofMillis(random.nextInt(1_500)));
        }
        assertSameEvents("single", single.events, chain.events);
        assertSameEvents("async", async.events, chain.events);
        assertThat(threw).isPositive();
        assertThat(chain.events).anyMatch(e -> e.contains("interrupted true"));
        assertThat(chain.events).anyMatch(e -> e.contains("filter=f, reason=THROTTLED"));
        assertThat(single.storage.calls).doesNotContain("evaluateInPlace", "evaluate");
        if (listened) {
            assertThat(chain.events).anyMatch(e -> e.startsWith("notice"));
        }
    }

    @Test
    void chatKeyedFilter_anErrorFromTheUserIdExtractor_reachesTheCaller_asOnTheChainsPath() {
        ManualTicker ticker = ManualTicker.create();
        OddSide single = new OddSide(ticker, KeyBy.CHAT, MissingKeyPolicy.SKIP_FILTER, "open", false, "single");
        OddSide chain = new OddSide(ticker, KeyBy.CHAT, MissingKeyPolicy.SKIP_FILTER, "open", false, "chain");
        OddMsg m = new OddMsg(1, new Throws(new BotError("the bot's extractor")), 10L);
        single.check(single.guard, m);
        chain.check(chain.guard, m);
        assertThat(chain.events).containsExactly("#1 threw BotError interrupted false reads 1/0");
        assertThat(single.events).isEqualTo(chain.events);
    }

    @Test
    void globalFilter_nobodyListening_readsTheIdsAsTheChainsPath() {
        ManualTicker ticker = ManualTicker.create();
        OddSide single = new OddSide(ticker, KeyBy.GLOBAL, MissingKeyPolicy.SKIP_FILTER, "open", false, "single");
        OddSide chain = new OddSide(ticker, KeyBy.GLOBAL, MissingKeyPolicy.SKIP_FILTER, "open", false, "chain");
        OddMsg m = new OddMsg(1, new Throws(new InterruptedException("undeclared")), 10L);
        single.check(single.guard, m);
        chain.check(chain.guard, m);
        assertThat(chain.events).singleElement(STRING).contains("interrupted true reads 1/1");
        assertThat(single.events).isEqualTo(chain.events);
    }

    @Test
    void userKeyedFilter_rejectionWithANotice_readsTheUsersIdOnce_asTheChainsPath() {
        ManualTicker ticker = ManualTicker.create();
        OddSide single = new OddSide(ticker, KeyBy.USER, MissingKeyPolicy.SKIP_FILTER, "open", true, "single");
        OddSide chain = new OddSide(ticker, KeyBy.USER, MissingKeyPolicy.SKIP_FILTER, "open", true, "chain");
        for (int n = 1; n <= 4; n++) { // the throttle lets 3 through: the fourth is rejected, and noticed
            single.check(single.guard, new OddMsg(n, 42L, 10L));
            chain.check(chain.guard, new OddMsg(n, 42L, 10L));
        }
        assertThat(chain.events).anyMatch(e -> e.startsWith("notice #4 "));
        assertThat(chain.events.get(chain.events.size() - 1)).endsWith("reads 4/4");
        assertThat(single.events).isEqualTo(chain.events);
    }

    /** {@code actual} equals {@code expected}; else the first event that differs, with the three before it. */
    private static void assertSameEvents(String side, List<String> actual, List<String> expected) {
        int i = 0;
        while (i < actual.size() && i < expected.size() && actual.get(i).equals(expected.get(i))) {
            i++;
        }
        List<String> before = expected.subList(Math.max(0, i - 3), i);
        assertThat(i < actual.size() ? actual.get(i) : "(no more)")
                .as("%s side, event %d, after %s", side, i, before)
                .isEqualTo(i < expected.size() ? expected.get(i) : "(no more)");
    }

    private static Object pick(Object[] ids, SplittableRandom random) {
        return random.nextInt(4) == 0 ? ids[random.nextInt(ids.length)] : ids[1 + random.nextInt(5)];
    }
}
