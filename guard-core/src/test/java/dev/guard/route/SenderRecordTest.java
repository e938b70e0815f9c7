package dev.guard.route;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.spi.GuardStorageException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SenderRecordTest {

    private static SenderRecord withTags(Set<String> tags) {
        return new SenderRecord(SenderStatus.ACTIVE, 3, 1_000_000L, 500_000L, 5, 1_000, tags);
    }

    private static Set<String> tags(String... tags) {
        return new LinkedHashSet<>(Arrays.asList(tags));
    }

    @Test
    void encodeThenDecode_keepsEveryTagSet_andTellsConfiguredFromEmpty() {
        List<Set<String>> cases = Arrays.asList(
                null,
                tags(),
                tags("a"),
                tags("links", "media"),
                tags("-a"),
                tags("a-"),
                tags("--"),
                tags("-", "a"),
                tags("a", "-"),
                tags("a.b_c-d", "0"));
        for (Set<String> t : cases) {
            SenderRecord r = withTags(t);

            assertThat(SenderRecord.decode("bot-1", r.encode())).as("%s", t).isEqualTo(r);
        }
    }

    @Test
    void encode_rejectsTagSetsItCouldNotReadBack() {
        assertThatThrownBy(() -> withTags(tags("-")).encode())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tags must not be exactly ['-'], which a sender record reads as the configured tags,"
                        + " but were [-]");
        assertThatThrownBy(() -> withTags(tags("a", "")).encode())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must not be empty or hold ',' or '|' but was ''");
        assertThatThrownBy(() -> withTags(tags("a,b")).encode())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must not be empty or hold ',' or '|' but was 'a,b'");
        assertThatThrownBy(() -> withTags(tags("a|b")).encode())
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("tag must not be empty or hold ',' or '|' but was 'a|b'");
    }

    @Test
    void decode_negativeStage_isAStorageFailureNamingTheSender() {
        assertThatThrownBy(() -> SenderRecord.decode("bot-w", "1|ACTIVE|-1|0|0|0|-".getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(GuardStorageException.class)
                .hasMessageContaining("the record of sender 'bot-w' is not a sender record: 1|ACTIVE|-1|0|0|0|-")
                .hasRootCauseMessage("stage must not be negative but was -1");
    }

    @Test
    void encode_writesTheActivationMark_inTheSecondFormat() {
        SenderRecord r = new SenderRecord(SenderStatus.BLOCKED, 2, 7_000_000L, 3_000_000L, 5, 0, tags("links"));

        assertThat(new String(r.encode(), StandardCharsets.UTF_8)).isEqualTo("2|BLOCKED|2|7000000|3000000|5|0|links");
        assertThat(SenderRecord.decode("bot-1", r.encode())).isEqualTo(r);
    }

    @Test
    void activated_marksTheActivation_andBeginsTheStageAgain_whereAStageAdvanceMarksNone() {
        SenderRecord blocked = new SenderRecord(SenderStatus.BLOCKED, 2, 7_000_000L, 3_000_000L, 5, 0, null);

        assertThat(blocked.activated(9_000_000L))
                .isEqualTo(new SenderRecord(SenderStatus.ACTIVE, 2, 9_000_000L, 9_000_000L, 5, 0, null));
        assertThat(blocked.withStatus(SenderStatus.ACTIVE)
                        .withStage(3, 9_000_000L)
                        .activatedMicros())
                .isEqualTo(3_000_000L);
        assertThat(SenderRecord.initial(9_000_000L).activatedMicros()).isZero();
    }

    @Test
    void decode_aRecordOfTheFirstFormat_readsItsStageStartAsItsActivation() {
        SenderRecord r =
                SenderRecord.decode("bot-1", "1|ACTIVE|2|7000000|5|1000|links,media".getBytes(StandardCharsets.UTF_8));

        assertThat(r)
                .isEqualTo(new SenderRecord(
                        SenderStatus.ACTIVE, 2, 7_000_000L, 7_000_000L, 5, 1_000, tags("links", "media")));
    }

    @Test
    void decode_aFormatItDoesNotKnow_isAStorageFailureNamingTheSender() {
        for (String text : List.of("3|ACTIVE|0|0|0|0|0|-", "2|ACTIVE|0|0|0|0|-", "1|ACTIVE|0|0|0|0|0|-")) {
            assertThatThrownBy(() -> SenderRecord.decode("bot-1", text.getBytes(StandardCharsets.UTF_8)))
                    .as(text)
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageContaining("the record of sender 'bot-1' is not a sender record: " + text)
                    .hasRootCauseMessage("unknown format");
        }
    }

    @Test
    void decode_readsTheDashAsTheConfiguredTags() {
        SenderRecord r = SenderRecord.decode("bot-1", "1|ACTIVE|0|0|0|0|-".getBytes(StandardCharsets.UTF_8));

        assertThat(r.tags()).isNull();
    }
}
