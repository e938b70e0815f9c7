package dev.guard.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.TokenBucket;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class BatchBufferTest {
    private final TokenBucket bucket = new TokenBucket(5, 1, Duration.ofSeconds(1));
    private final FixedWindow window = new FixedWindow(3, Duration.ofMinutes(1));

    @Test
    void attachment_isNoneAtFirst_andStaysAcrossClear_untilReplaced() {
        BatchBuffer buffer = new BatchBuffer(1);
        assertThat(buffer.attachment()).isNull();
        Object working = new long[4];

        buffer.attach(working);
        buffer.add("per-user", "u:1", bucket, 1);
        buffer.clear();

        assertThat(buffer.attachment()).isSameAs(working);
        buffer.attach(null);
        assertThat(buffer.attachment()).isNull();
    }

    @Test
    void refilledAfterClear_readsOnlyTheNewSteps() {
        BatchBuffer buffer = new BatchBuffer(1);
        buffer.add("per-user", "u:1", bucket, 1);
        buffer.add("per-chat", "c:1", window, 2);
        buffer.setOutcome(1, -5);

        buffer.clear();
        assertThat(buffer.size()).isZero();
        assertThatThrownBy(() -> buffer.subject(0))
                .isInstanceOf(IndexOutOfBoundsException.class)
                .hasMessageContaining("was 0");

        // The same scope and spec at the first step, other ones at the second: each reads what was added last.
        buffer.add("per-user", "u:2", bucket, 1);
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(3));
        buffer.add("cooldown", "u:2", cooldown, 0);
        assertThat(buffer.toBatch())
                .isEqualTo(Batch.of(
                        new Step(new StateKey("per-user", "u:2"), bucket, 1),
                        new Step(new StateKey("cooldown", "u:2"), cooldown, 0)));
        assertThat(buffer.outcome(1)).as("outcomes start afresh").isZero();
    }

    @Test
    void badArguments_areRefusedByName_andTheBufferKeepsWhatItHad() {
        BatchBuffer buffer = new BatchBuffer(1);
        buffer.add("per-user", "u:1", bucket, 1);

        assertThatThrownBy(() -> buffer.add(null, "u:1", window, 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("scope must not be empty but was null");
        assertThatThrownBy(() -> buffer.add("", "u:1", window, 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("scope must not be empty but was ''");
        assertThatThrownBy(() -> buffer.add("per-chat", null, window, 1))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("subject must not be null");
        assertThatThrownBy(() -> buffer.add("per-chat", "c:1", null, 1))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("spec must not be null");
        assertThatThrownBy(() -> buffer.add("per-chat", "c:1", window, -1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("permits must not be negative but was -1");
        assertThatThrownBy(() -> buffer.add((Step) null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("step must not be null");
        // The first invalid argument is the one named.
        assertThatThrownBy(() -> buffer.add("", null, null, -1)).hasMessageStartingWith("scope");

        assertThat(buffer.size()).isEqualTo(1);
        buffer.add("per-chat", "c:1", window, 2);
        // A scope whose text hashes to 0, as an empty one does, is not empty.
        assertThat("\0".hashCode()).isZero();
        buffer.add("\0", "c:1", window, 3);
        assertThat(buffer.toBatch())
                .isEqualTo(Batch.of(
                        new Step(new StateKey("per-user", "u:1"), bucket, 1),
                        new Step(new StateKey("per-chat", "c:1"), window, 2),
                        new Step(new StateKey("\0", "c:1"), window, 3)));
    }

    @Test
    void aKeyAddedTwice_isRefused_andTheBufferKeepsWhatItHad() {
        BatchBuffer buffer = new BatchBuffer(4);
        buffer.add("per-user", "u:1", bucket, 1);
        buffer.add("per-chat", "c:1", window, 1);

        assertThatThrownBy(() -> buffer.add("per-user", "u:1", window, 2))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("key StateKey[scope=per-user, subject=u:1] appears twice in one batch");
        assertThat(buffer.size()).isEqualTo(2);
        // The same scope under another subject, or the same subject under another scope, is another key.
        buffer.add("per-user", "u:2", bucket, 1);
        buffer.add("per-chat", "u:1", window, 1);
        assertThat(buffer.size()).isEqualTo(4);

        buffer.clear();
        buffer.add("per-user", "u:1", bucket, 1);
        assertThatThrownBy(() -> buffer.add("per-user", "u:1", bucket, 1)).hasMessageContaining("appears twice");
    }

    @Test
    void manyScopes_allDifferent_areAllAdded_andARepeatOfAnyIsRefused() {
        // More scopes than the buffer's bits per scope hash: some share a bit, and are still told apart.
        BatchBuffer buffer = new BatchBuffer(4);
        for (int i = 0; i < 200; i++) {
            buffer.add("f:" + i, "u:1", bucket, 1);
        }
        assertThat(buffer.size()).isEqualTo(200);
        for (int i = 0; i < 200; i += 7) {
            String scope = "f:" + i;
            assertThatThrownBy(() -> buffer.add(scope, "u:1", bucket, 1))
                    .as(scope)
                    .hasMessageContaining("appears twice");
        }
        assertThat(buffer.size()).isEqualTo(200);
    }
}
