package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

class SubjectMemoTest {
    private final SubjectMemo memo = new SubjectMemo(Subjects.USER);

    @Property
    void everyIdGetsItsOwnSubject(@ForAll long id, @ForAll long other) {
        assertThat(memo.of(id)).isEqualTo("u:" + id);
        assertThat(memo.of(other)).isEqualTo("u:" + other);
        assertThat(memo.of(id)).isEqualTo("u:" + id);
    }

    @Test
    void edgeIds_andTelegramGroupIds() {
        long[] ids = {
            0,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            Long.MAX_VALUE,
            Long.MIN_VALUE,
            Long.MIN_VALUE + 1,
            -1001234567890L,
            4_000_000_000L
        };
        for (int round = 0; round < 2; round++) {
            for (long id : ids) {
                assertThat(memo.of(id)).isEqualTo("u:" + id);
            }
        }
    }

    @Test
    void aRepeatedId_getsTheSameString() {
        String first = memo.of(-1001234567890L);

        assertThat(memo.of(-1001234567890L)).isSameAs(first);
    }

    @Test
    void idsThatShareASlot_takeTurns_andNeverGetEachOthersSubject() {
        // More ids than slots: every slot is shared, and each id must still get exactly its own subject.
        int ids = 4 * SubjectMemo.SLOTS;
        for (int round = 0; round < 3; round++) {
            for (long id = 0; id < ids; id++) {
                assertThat(memo.of(id)).isEqualTo("u:" + id);
                assertThat(memo.of(-id)).isEqualTo("u:" + -id);
            }
        }
    }

    @Test
    void anIdWhoseDigitsEndAnotherIds_isNotConfusedWithIt() {
        // "u:12" ends with the digits of 2, and "u:-5" with those of 5: the memo compares the whole subject.
        for (int i = 0; i < 2 * SubjectMemo.SLOTS; i++) {
            assertThat(memo.of(12)).isEqualTo("u:12");
            assertThat(memo.of(2)).isEqualTo("u:2");
            assertThat(memo.of(-5)).isEqualTo("u:-5");
            assertThat(memo.of(5)).isEqualTo("u:5");
        }
    }
}
