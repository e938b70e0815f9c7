package dev.guard.internal;

/**
 * A 53-bit content fingerprint for duplicate suppression, the item of a {@link dev.guard.limit.DuplicateWindow}
 * step: the UTF-16 code units taken four at a time into 64-bit words, two lanes of words (alternating) each folded in
 * by a full 64x64-to-128-bit multiplication (its high and low halves xored), the lanes combined with a strong mixer
 * and cut to 53 bits (exact in every backend, Lua's doubles included). Four code units per multiplication, two lanes
 * in parallel: a long text costs about a third of what a multiplication per code unit did. Not cryptographic: a
 * collision merely drops one message as a duplicate, and a window compares a message with the few dozen others of
 * its conversation (about one collision in 9·10^15 comparisons).
 *
 * <p>Processes that share a storage must compute the same fingerprint: during a rolling upgrade to a version that
 * changes it, a copy sent to a process of the other version within its window can pass once.
 */
public final class Fingerprint {
    private static final long SEED_A = 0x243f6a8885a308d3L;
    private static final long SEED_B = 0x13198a2e03707344L;
    private static final long K_A = 0x9e3779b97f4a7c15L;
    private static final long K_B = 0xc2b2ae3d27d4eb4fL;

    private Fingerprint() {}

    /** The fingerprint of {@code content}: a number in {@code [0, 2^53)}. */
    public static long of(CharSequence content) {
        int n = content.length();
        long a = SEED_A ^ n;
        long b = SEED_B;
        int i = 0;
        for (int end = n - 7; i < end; i += 8) {
            a = fold(a ^ word(content, i), K_A);
            b = fold(b ^ word(content, i + 4), K_B);
        }
        // Zero to seven units left: up to four into a, the rest into b (the length, in a's seed, tells the padding
        // from a unit of 0).
        long tailA = 0;
        long tailB = 0;
        for (int k = 0; i < n; i++, k++) {
            long unit = content.charAt(i);
            if (k < 4) {
                tailA |= unit << (16 * k);
            } else {
                tailB |= unit << (16 * (k - 4));
            }
        }
        a = fold(a ^ tailA, K_A);
        b = fold(b ^ tailB, K_B);
        return (mix(a) ^ Long.rotateLeft(mix(b ^ a), 29)) >>> 11;
    }

    /** Units {@code i} to {@code i + 3} of {@code s} as one word, the first in the low bits. */
    private static long word(CharSequence s, int i) {
        return s.charAt(i) | (long) s.charAt(i + 1) << 16 | (long) s.charAt(i + 2) << 32 | (long) s.charAt(i + 3) << 48;
    }

    /** The high and low halves of the 128-bit product {@code x * k}, xored: every bit of x reaches every bit. */
    private static long fold(long x, long k) {
        return Math.multiplyHigh(x, k) ^ (x * k);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }
}
