package dev.guard;

/**
 * The subjects of the numeric ids one thread met last ({@link Subjects#USER} or {@link Subjects#CHAT} and the id), so
 * that a bot, which hears from the same users and chats again and again, neither formats nor hashes them again (a
 * string keeps its hash code), and often passes the very string the memory storage's map holds, whose lookup then
 * compares by identity. Not thread-safe: one per thread.
 *
 * <p><b>Places.</b> {@link #PLACES} in all, half for users and half for chats; an id may sit in either of two places
 * that its hash picks. Two, not one, because real ids (Telegram's ten-digit ones) are spread at random: with one
 * place each, 100 users in 128 places leave about half of them sharing a place with another, and those are formatted
 * on every message.
 *
 * <p><b>Stores.</b> A store of a new string into a long-lived array costs the collector's write barrier, more than
 * formatting the string. An empty place takes the first subject that misses there; when both are taken, a subject
 * replaces one (the one not found last) only when its id misses there a second time before another id does. Ids that
 * do not come back soon (a bot with many more users than places) are then never stored, and cost a store of a number
 * each.
 *
 * <p><b>Scopes in group chats.</b> A key per chat and user outside the user's private chat has the chat in its scope
 * ({@link #chatScope}): the scopes built last are kept too, one per place of {@link #CHAT_SCOPES}, found by the
 * identity of the scope and of the chat's subject (which the places above keep), so that a user's next message in
 * the same group builds no string. Only for chats with numeric ids, whose subjects are kept: see {@code
 * Guard.Steps#chatScope}.
 */
final class RecentSubjects {
    /** How many subjects are kept at most. */
    static final int PLACES = 1 << 10;

    private final long[] ids = new long[PLACES];
    private final String[] subjects = new String[PLACES];

    /** Per pair of places, the id that last missed there while both were taken. */
    private final long[] missed = new long[PLACES / 2];

    /** Per pair of places, which of the two (0 or 1) a subject replaces next: the one not found last. */
    private final byte[] victims = new byte[PLACES / 2];

    /** How many scopes of keys per chat and user are kept at most. */
    static final int CHAT_SCOPES = 256;

    /** A scope of a key per chat and user: {@code scope + "\0" + chat}, kept with the two it was built of. */
    private record ChatScope(String scope, String chat, String built) {}

    private final ChatScope[] chatScopes = new ChatScope[CHAT_SCOPES];

    /**
     * {@code prefix + id}: a string kept from before when there is one.
     *
     * @param prefix {@link Subjects#USER} or {@link Subjects#CHAT} (the constants themselves: compared by identity)
     */
    String subject(String prefix, long id) {
        // A pair per hash and kind: a user's two places, then a chat's two.
        long mixed = id * 0x9E3779B97F4A7C15L;
        int pair = (int) (mixed >>> (64 - Integer.numberOfTrailingZeros(PLACES) + 1)) & ~1
                | (prefix == Subjects.USER ? 0 : 1);
        int first = pair << 1;
        for (int way = 0; way < 2; way++) {
            String kept = subjects[first + way];
            if (kept != null && ids[first + way] == id) {
                victims[pair] = (byte) (1 - way);
                return kept;
            }
        }
        String subject = prefix + id;
        int place;
        if (subjects[first] == null) {
            place = first;
        } else if (subjects[first + 1] == null) {
            place = first + 1;
        } else if (missed[pair] != id) {
            missed[pair] = id;
            return subject;
        } else {
            place = first + victims[pair];
        }
        ids[place] = id;
        subjects[place] = subject;
        victims[pair] = (byte) (1 - (place - first));
        return subject;
    }

    /**
     * {@code scope + "\0" + chatSubject}, the scope of a key per chat and user in the chat {@code chatSubject}: one
     * kept from before when the same two strings (compared by identity) built it.
     */
    String chatScope(String scope, String chatSubject) {
        int place = (scope.hashCode() * 31 + chatSubject.hashCode()) & (CHAT_SCOPES - 1);
        ChatScope kept = chatScopes[place];
        if (kept != null && kept.scope == scope && kept.chat == chatSubject) {
            return kept.built;
        }
        String built = scope + "\0" + chatSubject;
        chatScopes[place] = new ChatScope(scope, chatSubject, built);
        return built;
    }
}
