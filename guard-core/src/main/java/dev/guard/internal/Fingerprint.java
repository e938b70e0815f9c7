package dev.guard.internal;

/**
 * A 128-bit content fingerprint for duplicate suppression, as 32 hex digits: two independent 64-bit FNV-1a style
 * hashes over the UTF-16 code units, each finished with a strong mixer. Not cryptographic: a collision merely drops
 * one message as a duplicate, and at 128 bits it takes about 2^64 distinct texts to expect one.
 */
public final class Fingerprint {
    private Fingerprint() {}

    /** The number of characters of a fingerprint. */
    public static final int LENGTH = 32;

    /** The fingerprint of {@code content}. */
    public static String of(CharSequence content) {
        char[] chars = new char[LENGTH];
        write(content, chars, 0);
        return new String(chars);
    }

    /**
     * Writes the fingerprint of {@code content} ({@link #LENGTH} characters, as {@link #of}) into {@code into} at
     * {@code at}; answers the index after it.
     */
    public static int write(CharSequence content, char[] into, int at) {
        long h1 = 0xcbf29ce484222325L;
        long h2 = 0x84222325cbf29ce4L ^ content.length();
        for (int i = 0, n = content.length(); i < n; i++) {
            char c = content.charAt(i);
            h1 = (h1 ^ c) * 0x100000001b3L;
            h2 = (h2 ^ c) * 0x9e3779b97f4a7c15L;
        }
        hex(mix(h1), into, at);
        hex(mix(h2 ^ h1), into, at + 16);
        return at + LENGTH;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /** The two lowercase hex digits of each byte value, packed high digit first: half the lookups of one per digit. */
    private static final int[] PAIRS = new int[256];

    static {
        String digits = "0123456789abcdef";
        for (int b = 0; b < 256; b++) {
            PAIRS[b] = digits.charAt(b >>> 4) << 16 | digits.charAt(b & 0xf);
        }
    }

    /** Writes {@code v} as 16 lowercase hex digits at {@code at}, most significant first. */
    private static void hex(long v, char[] into, int at) {
        for (int i = 14; i >= 0; i -= 2) {
            int pair = PAIRS[(int) (v & 0xff)];
            into[at + i] = (char) (pair >>> 16);
            into[at + i + 1] = (char) pair;
            v >>>= 8;
        }
    }
}
