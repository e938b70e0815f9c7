package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SenderTest {

    @Test
    void tags_rejectsALoneDash_becauseSenderRecordsUseItForTheConfiguredTags() {
        assertThatThrownBy(() -> Sender.builder("bot-1").tags("-"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must not be '-', which sender records use for the configured tags, but was '-'");
    }

    @Test
    void tags_acceptsDashesInsideLongerTags() {
        Sender s = Sender.builder("bot-1").tags("-a", "a-", "--", "per-user").build();

        assertThat(s.tags()).containsExactly("-a", "a-", "--", "per-user");
    }

    @Test
    void tags_rejectsCharactersOutsideTheAlphabet_namingTheTag() {
        assertThatThrownBy(() -> Sender.builder("bot-1").tags("a,b"))
                .hasMessage("tag must hold only a-z, 0-9, '-', '_' and '.' but was 'a,b'");
        assertThatThrownBy(() -> Sender.builder("bot-1").tags("a|b"))
                .hasMessage("tag must hold only a-z, 0-9, '-', '_' and '.' but was 'a|b'");
        assertThatThrownBy(() -> Sender.builder("bot-1").tags("")).hasMessage("tag must not be empty but was ''");
    }

    @Test
    void tags_withABadOne_addNoneOfThem() {
        Sender.Builder b = Sender.builder("bot-1").tags("kept");

        assertThatThrownBy(() -> b.tags("good", "BAD"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must hold only a-z, 0-9, '-', '_' and '.' but was 'BAD'");
        assertThatThrownBy(() -> b.tags("good", null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must not be empty but was null");

        assertThat(b.build().tags()).containsExactly("kept");
    }
}
