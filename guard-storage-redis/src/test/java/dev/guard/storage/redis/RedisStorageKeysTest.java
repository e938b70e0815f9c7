package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.VersionedRecord;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Keys of any content on a real server: each is its own key, and forget removes exactly one subject's keys. */
class RedisStorageKeysTest {
    private static final List<String> AWKWARD = List.of(
            "plain",
            "",
            "with space",
            "new\nline\r\n",
            "tab\tand\0nul",
            "{braces}",
            "}{",
            "{",
            "quotes \"double\" 'single' `back`",
            "glob * ? [a-z] \\",
            "%7B percent",
            "unicode é ß 中文 😀",
            "lone \uD800 surrogate",
            "x".repeat(10_240));

    private final ManualTicker ticker = ManualTicker.create();

    @ParameterizedTest
    @EnumSource(Target.class)
    void keysOfAnyContent_areIndependentKeys(Target target) {
        FixedWindow window = new FixedWindow(100, Duration.ofMinutes(1));
        long now = ticker.epochMicros();
        try (RedisStorage storage = target.builder().build()) {
            List<StateKey> keys = new ArrayList<>();
            for (String scope : AWKWARD) {
                for (String subject : AWKWARD) {
                    keys.add(new StateKey("scope " + scope, subject));
                }
            }
            // Key i takes i % 50 + 1 permits; any two keys that shared state would see each other's counts.
            for (int i = 0; i < keys.size(); i++) {
                long permits = i % 50 + 1;
                assertThat(storage.acquire(keys.get(i), window, permits, now))
                        .as("key %d", i)
                        .isEqualTo(Outcome.admitted(100 - permits));
            }
            for (int i = 0; i < keys.size(); i++) {
                assertThat(storage.acquire(keys.get(i), window, 0, now))
                        .as("key %d", i)
                        .isEqualTo(Outcome.admitted(100 - (i % 50 + 1)));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void chainsOnKeysOfAnyContent_countEachKeyOnItsOwn(Target target) {
        TokenBucket bucket = new TokenBucket(100, 1, Duration.ofMinutes(1));
        long now = ticker.epochMicros();
        try (RedisStorage storage = target.builder().build()) {
            for (int round = 1; round <= 3; round++) {
                for (String subject : AWKWARD) {
                    // Per user, per chat, and a global step whose scope holds the awkward text (another slot in a
                    // Cluster).
                    BatchResult result = storage.evaluate(
                            Batch.of(
                                    new Step(new StateKey("per-user", subject), bucket, 1),
                                    new Step(new StateKey("per-chat " + subject, subject), bucket, 2),
                                    new Step(new StateKey("global " + subject, StateKey.GLOBAL), bucket, 3)),
                            now);
                    assertThat(result)
                            .as("round %d, subject of %d chars", round, subject.length())
                            .isEqualTo(BatchResult.of(
                                    Outcome.admitted(100 - round),
                                    Outcome.admitted(100 - 2 * round),
                                    Outcome.admitted(100 - 3 * round)));
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void forget_awkwardSubjects_removesExactlyThatSubjectsKeys(Target target) {
        FixedWindow window = new FixedWindow(10, Duration.ofMinutes(1));
        long now = ticker.epochMicros();
        try (RedisStorage storage = target.builder().build()) {
            for (String subject : AWKWARD) {
                storage.evaluate(
                        Batch.of(
                                new Step(new StateKey("throttle", subject), window, 1),
                                new Step(new StateKey("throttle {per chat}", subject), window, 1)),
                        now);
                storage.addMember(new StateKey("set:blocklist", subject), Long.MAX_VALUE, now);
                storage.putRecord(new StateKey("record", subject), subject.getBytes(StandardCharsets.UTF_8), 0);
            }
            for (String subject : AWKWARD) {
                // Two limits, one membership, one record: four keys. A glob subject like "*" matches nothing else.
                assertThat(storage.forget(subject)).as("forget '%s'", subject).isEqualTo(4);
                assertThat(storage.acquire(new StateKey("throttle", subject), window, 0, now))
                        .isEqualTo(Outcome.admitted(10));
                assertThat(storage.isMember(new StateKey("set:blocklist", subject), now))
                        .isFalse();
                assertThat(storage.getRecord(new StateKey("record", subject))).isEmpty();
            }
            assertThat(storage.forget("never seen")).isZero();
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void forget_globSubject_leavesSubjectsItWouldMatchAlone(Target target) {
        long now = ticker.epochMicros();
        try (RedisStorage storage = target.builder().build()) {
            for (String subject : List.of("a*", "ab", "a?", "a[b]", "[a]")) {
                storage.addMember(new StateKey("set:blocklist", subject), Long.MAX_VALUE, now);
            }
            assertThat(storage.forget("a*")).isEqualTo(1);
            assertThat(storage.forget("[a]")).isEqualTo(1);
            for (String kept : List.of("ab", "a?", "a[b]")) {
                assertThat(storage.isMember(new StateKey("set:blocklist", kept), now))
                        .as(kept)
                        .isTrue();
            }
            assertThat(storage.acquire(new StateKey("set:blocklist", "ab"), Membership.MUST_BE_ABSENT, 1, now))
                    .isEqualTo(Outcome.NEVER);
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void storagesWithPrefixesThatStartAlike_shareNoKeyAndForgetOnlyTheirOwn(Target target) {
        // Before every prefix ended with a colon of its own, scope "s:x" under "<p>" was the key of scope "x" under
        // "<p>s:", and forget under "<p>" matched "<p>s:"'s keys too.
        String name = "t" + UUID.randomUUID();
        FixedWindow window = new FixedWindow(10, Duration.ofMinutes(1));
        long now = ticker.epochMicros();
        try (RedisStorage shorter = target.builder(name).build();
                RedisStorage longer = target.builder(name + "s:").build()) {
            assertThat(shorter.acquire(new StateKey("s:x", "alice"), window, 3, now))
                    .isEqualTo(Outcome.admitted(7));
            assertThat(longer.acquire(new StateKey("x", "alice"), window, 1, now))
                    .isEqualTo(Outcome.admitted(9));
            longer.addMember(new StateKey("set:blocklist", "alice"), Long.MAX_VALUE, now);

            assertThat(shorter.forget("alice")).isEqualTo(1);
            assertThat(longer.acquire(new StateKey("x", "alice"), window, 0, now))
                    .isEqualTo(Outcome.admitted(9));
            assertThat(longer.isMember(new StateKey("set:blocklist", "alice"), now))
                    .isTrue();
            assertThat(longer.forget("alice")).isEqualTo(2);
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void records_ofAnyBytes_roundTripWithVersions(Target target) {
        byte[] bytes = new byte[4096];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) i;
        }
        StateKey key = new StateKey("sender", "{bot} 1");
        try (RedisStorage storage = target.builder().build()) {
            assertThat(storage.putRecord(key, bytes, 0)).isEqualTo(1);
            assertThat(storage.putRecord(key, new byte[0], 0)).isEqualTo(-1);
            assertThat(storage.getRecord(key)).contains(new VersionedRecord(bytes, 1));
            assertThat(storage.putRecord(key, new byte[0], 1)).isEqualTo(2);
            assertThat(storage.getRecord(key)).contains(new VersionedRecord(new byte[0], 2));
        }
    }
}
