package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RecentSubjectsTest {
    private static long[] tenDigitIds(int count, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] ids = new long[count];
        for (int i = 0; i < count; i++) {
            ids[i] = 1_000_000_000L + random.nextLong(7_000_000_000L);
        }
        return ids;
    }

    /** How many of {@code ids} get the very string they got the round before. */
    private static int kept(RecentSubjects recent, String prefix, long[] ids) {
        String[] before = new String[ids.length];
        for (int i = 0; i < ids.length; i++) {
            before[i] = recent.subject(prefix, ids[i]);
        }
        int same = 0;
        for (int i = 0; i < ids.length; i++) {
            if (recent.subject(prefix, ids[i]) == before[i]) {
                same++;
            }
        }
        return same;
    }

    @Test
    void subject_isThePrefixAndTheId_forUsersAndChatsOfTheSameId() {
        RecentSubjects recent = new RecentSubjects();
        for (int round = 0; round < 3; round++) {
            for (long id : new long[] {0, 1, -1, 42, Long.MIN_VALUE, Long.MAX_VALUE, 5_123_456_789L}) {
                assertThat(recent.subject(Subjects.USER, id)).isEqualTo("u:" + id);
                assertThat(recent.subject(Subjects.CHAT, id)).isEqualTo("c:" + id);
            }
        }
    }

    @Test
    void aHundredRandomUsers_allButAFewAreKept() {
        // With one place per id (the earlier layout, 128 places for users) about half of 100 random ids shared a
        // place and were formatted on every message.
        RecentSubjects recent = new RecentSubjects();
        long[] users = tenDigitIds(100, 7);

        kept(recent, Subjects.USER, users);

        assertThat(kept(recent, Subjects.USER, users)).isGreaterThanOrEqualTo(95);
        assertThat(kept(recent, Subjects.CHAT, users)).isGreaterThanOrEqualTo(95);
    }

    @Test
    void idsSeenOnce_doNotDisplaceTheRegulars() {
        RecentSubjects recent = new RecentSubjects();
        long[] regulars = atMostTwoAPair(tenDigitIds(100, 11));
        kept(recent, Subjects.USER, regulars);
        String[] before = new String[regulars.length];
        for (int i = 0; i < regulars.length; i++) {
            before[i] = recent.subject(Subjects.USER, regulars[i]);
        }

        // Twenty times more passers-by than places: each misses once, and takes only places nobody holds.
        for (long passerBy : tenDigitIds(20 * RecentSubjects.PLACES, 13)) {
            recent.subject(Subjects.USER, passerBy);
        }

        int same = 0;
        for (int i = 0; i < regulars.length; i++) {
            if (recent.subject(Subjects.USER, regulars[i]) == before[i]) {
                same++;
            }
        }
        assertThat(regulars.length).isGreaterThan(90);
        assertThat(same).isEqualTo(regulars.length);
    }

    @Test
    void anIdThatMissesTwiceRunningAtAFullPair_replacesTheOneNotFoundLast() {
        RecentSubjects recent = new RecentSubjects();
        // Three ids whose users share one pair of places: the first two take it.
        long[] ids = idsOfOnePair(3);
        String a = recent.subject(Subjects.USER, ids[0]);
        String b = recent.subject(Subjects.USER, ids[1]);
        assertThat(recent.subject(Subjects.USER, ids[0])).isSameAs(a);

        String c = recent.subject(Subjects.USER, ids[2]);
        assertThat(recent.subject(Subjects.USER, ids[2]))
                .as("one miss: not kept")
                .isNotSameAs(c);
        String kept = recent.subject(Subjects.USER, ids[2]);

        assertThat(recent.subject(Subjects.USER, ids[2]))
                .as("kept after its second miss")
                .isSameAs(kept);
        assertThat(recent.subject(Subjects.USER, ids[0]))
                .as("found last: stays")
                .isSameAs(a);
        assertThat(recent.subject(Subjects.USER, ids[1])).as("replaced").isNotSameAs(b);
    }

    /** The pair of places of a kind where {@code id}'s subject may be. */
    private static int pairOf(long id) {
        return (int) ((id * 0x9E3779B97F4A7C15L) >>> (64 - Integer.numberOfTrailingZeros(RecentSubjects.PLACES) + 2));
    }

    /** {@code ids} without those that would be a third in their pair of places. */
    private static long[] atMostTwoAPair(long[] ids) {
        int[] inPair = new int[RecentSubjects.PLACES / 4];
        return java.util.Arrays.stream(ids)
                .filter(id -> ++inPair[pairOf(id)] <= 2)
                .toArray();
    }

    /** {@code count} ids whose subjects of one kind share a pair of places. */
    private static long[] idsOfOnePair(int count) {
        long[] ids = new long[count];
        int found = 0;
        int pairOfFirst = -1;
        for (long id = 1_000_000_000L; found < count; id++) {
            int pair = pairOf(id);
            if (found == 0) {
                pairOfFirst = pair;
            }
            if (pair == pairOfFirst) {
                ids[found++] = id;
            }
        }
        return ids;
    }

    @Test
    void chatScope_isTheScopeAndTheChat_keptForTheSameTwoStrings() {
        RecentSubjects recent = new RecentSubjects();
        String scope = "f:duplicates";
        String chat = recent.subject(Subjects.CHAT, -1_001_000_000_007L);

        String first = recent.chatScope(scope, chat);

        assertThat(first).isEqualTo("f:duplicates\0c:-1001000000007");
        assertThat(recent.chatScope(scope, chat)).isSameAs(first);
        // Equal texts that are other instances: built again, equal still.
        assertThat(recent.chatScope(new String(scope), chat)).isEqualTo(first).isNotSameAs(first);
    }

    @Test
    void chatScope_manyChatsSharingPlaces_eachGetsItsOwnScope() {
        RecentSubjects recent = new RecentSubjects();
        String scope = "f:duplicates";

        for (int round = 0; round < 2; round++) {
            for (long chat = 1; chat <= 4 * RecentSubjects.CHAT_SCOPES; chat++) {
                String subject = "c:-" + chat;

                assertThat(recent.chatScope(scope, subject)).isEqualTo(scope + "\0" + subject);
            }
        }
    }
}
