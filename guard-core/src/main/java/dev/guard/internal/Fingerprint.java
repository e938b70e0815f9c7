package dev.guard.internal;

/**
 * A 53-bit content fingerprint for duplicate suppression, the item of a {@link dev.guard.limit.DuplicateWindow}
 * step: two independent 64-bit FNV-1a style hashes over the UTF-16 code units, each finished with a strong mixer,
 * combined and cut to 53 bits (exact in every backend, Lua's doubles included). Not cryptographic: a collision merely
 * drops one message as a duplicate, and a window compares a message with the few dozen others of its conversation
 * (about one collision in 9·10^15 comparisons).
 */
public final class Fingerprint {
    private Fingerprint() {}

    /** The fingerprint of {@code content}: a number in {@code [0, 2^53)}. */
    public static long of(CharSequence content) {
        long h1 = 0xcbf29ce484222325L;
        long h2 = 0x84222325cbf29ce4L ^ content.length();
        for (int i = 0, n = content.length(); i < n; i++) {
            char c = content.charAt(i);
            h1 = (h1 ^ c) * 0x100000001b3L;
            h2 = (h2 ^ c) * 0x9e3779b97f4a7c15L;
        }
        return (mix(h1) ^ Long.rotateLeft(mix(h2 ^ h1), 29)) >>> 11;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
