package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.spi.StateKey;
import io.lettuce.core.cluster.SlotHash;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The key layout, without a server: escaping, hash tags and the forget pattern. */
class RedisKeysTest {
    private final RedisKeys keys = new RedisKeys("guard:", false);

    private static String text(byte[] key) {
        return new String(key, StandardCharsets.UTF_8);
    }

    @Test
    void state_plainKey_isReadable() {
        assertThat(text(keys.state(new StateKey("f:per-user", "u:42")))).isEqualTo("guard:s:f:per-user{u:42}");
        assertThat(text(keys.record(new StateKey("sender", "bot-1")))).isEqualTo("guard:r:sender{bot-1}");
    }

    @Test
    void state_bracesAndGlobCharacters_areEscaped() {
        assertThat(text(keys.state(new StateKey("a{b}", "x}{*?[]\\%"))))
                .isEqualTo("guard:s:a%7Bb%7D{x%7D%7B%2A%3F%5B%5D%5C%25}");
    }

    @Test
    void state_emptySubjectAndLoneSurrogates_stayDistinct() {
        List<String> subjects = List.of("", "%", "\uD800", "\uDC00", "?", "\uD83D\uDE00", "\uD83D", "\0", "%25");
        Set<String> encoded = new HashSet<>();
        for (String subject : subjects) {
            encoded.add(text(keys.state(new StateKey("s", subject))));
        }
        assertThat(encoded).hasSameSizeAs(subjects);
        assertThat(text(keys.state(new StateKey("s", "")))).isEqualTo("guard:s:s{%}");
        assertThat(text(keys.state(new StateKey("s", "\uD800")))).isEqualTo("guard:s:s{%uD800}");
    }

    @Test
    void state_scopeAndSubjectBoundary_neverCollides() {
        // Without the braces around the subject, ("ab", "c") and ("a", "bc") would meet.
        assertThat(keys.state(new StateKey("ab", "c"))).isNotEqualTo(keys.state(new StateKey("a", "bc")));
        assertThat(keys.state(new StateKey("a{", "c"))).isNotEqualTo(keys.state(new StateKey("a", "{c")));
    }

    @Test
    void slot_everyKeyOfASubject_sharesTheSubjectsSlot() {
        String subject = "user }{ 42";
        int slot = SlotHash.getSlot(keys.state(new StateKey("bucket", subject)));
        assertThat(SlotHash.getSlot(keys.state(new StateKey("throttle\0chat", subject))))
                .isEqualTo(slot);
        assertThat(SlotHash.getSlot(keys.record(new StateKey("sender", subject))))
                .isEqualTo(slot);
        assertThat(SlotHash.getSlot(keys.state(new StateKey("bucket", "user-43"))))
                .isNotEqualTo(slot);
    }

    @Test
    void slot_singleSlotMode_putsEveryKeyInOneSlot() {
        RedisKeys one = new RedisKeys("guard:", true);
        int slot = SlotHash.getSlot("{g}".getBytes(StandardCharsets.UTF_8));
        for (String subject : List.of("u1", "u2", "*", "{x}")) {
            assertThat(SlotHash.getSlot(one.state(new StateKey("bucket", subject))))
                    .isEqualTo(slot);
        }
        assertThat(text(one.state(new StateKey("bucket", "u1")))).isEqualTo("guard:{g}s:bucket{u1}");
    }

    @Test
    void subjectPattern_escapesThePrefixAndMatchesTheTypeAndAnyScope() {
        RedisKeys globby = new RedisKeys("bot*1?[x]:", false);
        assertThat(text(globby.subjectPattern("a*b"))).isEqualTo("bot\\*1\\?\\[x\\]:?:*{a%2Ab}");
    }

    @Test
    void keyPrefix_withOrWithoutItsColon_isOnePrefixEndedByOneColon() {
        assertThat(text(new RedisKeys("guard", false).state(new StateKey("f:per-user", "u:42"))))
                .isEqualTo("guard:s:f:per-user{u:42}");
        assertThat(new RedisKeys("guard", true).record(new StateKey("sender", "bot-1")))
                .isEqualTo(new RedisKeys("guard:", true).record(new StateKey("sender", "bot-1")));
    }

    @Test
    void keyPrefix_colonBeforeItsEnd_isRejected() {
        // "bot:7:" beside "bot:" was matched by the other's forget pattern; "bot:s:" shared its keys.
        for (String prefix : List.of("bot:7:", "bot:s:", "bot::", "a:b")) {
            assertThatThrownBy(
                            () -> RedisStorage.builder("redis://127.0.0.1:6379").keyPrefix(prefix))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("keyPrefix must not contain ':' but as its last character (the ':' that ends the"
                            + " prefix in every key) but was '" + prefix + "'");
        }
        for (String prefix : List.of("", ":")) {
            assertThatThrownBy(() -> new RedisKeys(prefix, false))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("keyPrefix must not be empty but was '" + prefix + "'");
        }
    }

    @Test
    void keyPrefix_differentPrefixes_neverShareAKeyOrAForgetPattern() {
        // Each was a collision before every prefix ended with the one colon it may hold: scope "s:x" under "bot"
        // equalled scope "x" under "bots:", and the pattern of "bot" matched the keys of "bots:".
        RedisKeys bot = new RedisKeys("bot", false);
        RedisKeys bots = new RedisKeys("bots:", false);
        assertThat(text(bot.state(new StateKey("s:x", "alice")))).isEqualTo("bot:s:s:x{alice}");
        assertThat(text(bots.state(new StateKey("x", "alice")))).isEqualTo("bots:s:x{alice}");
        assertThat(text(bot.subjectPattern("alice"))).isEqualTo("bot:?:*{alice}");
        assertThat(text(bots.subjectPattern("alice"))).isEqualTo("bots:?:*{alice}");
    }

    @Test
    void keyPrefix_withBraces_isRejected() {
        assertThatThrownBy(() -> new RedisKeys("guard{1}:", false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("keyPrefix must not contain braces, which choose the Cluster slot, but was 'guard{1}:'");
        assertThatThrownBy(() -> RedisStorage.builder("redis://127.0.0.1:6379").keyPrefix(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("keyPrefix must not be null");
    }
}
