package dev.guard;

/**
 * The subjects ({@code prefix + id}) of recently seen numeric ids, so that a user who writes again costs no new
 * string, and the storage finds the string's hash code already computed.
 *
 * <p>Direct mapped ({@value #SLOTS} slots, about 50 KB when full) and shared by all threads without a lock: a slot
 * holds a string, which is immutable and safe to publish through a race, and a hit is checked against the id digit
 * by digit. Two ids that map to one slot take turns; a race costs at most a string made again.
 */
final class SubjectMemo {
    static final int SLOTS = 1024;

    final String prefix;
    private final String[] slots = new String[SLOTS];

    SubjectMemo(String prefix) {
        this.prefix = prefix;
    }

    /** {@code prefix + id}, the same instance as last time if the id's slot still holds it. */
    String of(long id) {
        int slot = (int) ((id * 0x9E3779B97F4A7C15L) >>> (64 - 10));
        String subject = slots[slot];
        if (subject != null && holds(subject, id)) {
            return subject;
        }
        subject = prefix + id;
        slots[slot] = subject;
        return subject;
    }

    /** Whether {@code subject} (one of ours: it starts with the prefix) is the subject of {@code id}. */
    private boolean holds(String subject, long id) {
        int start = prefix.length();
        int at = subject.length();
        // Digit by digit from the last, on the negative value so that Long.MIN_VALUE has one too.
        long rest = id < 0 ? id : -id;
        do {
            if (at == start || subject.charAt(--at) != (char) ('0' - rest % 10)) {
                return false;
            }
            rest /= 10;
        } while (rest != 0);
        if (id < 0 && (at == start || subject.charAt(--at) != '-')) {
            return false;
        }
        return at == start;
    }
}
