package dev.guard.internal;

import java.nio.charset.StandardCharsets;

/**
 * A 128-bit content fingerprint for duplicate suppression, as 32 hex digits: two independent 64-bit FNV-1a style
 * hashes over the UTF-16 code units, each finished with a strong mixer. Not cryptographic: a collision merely drops
 * one message as a duplicate, and at 128 bits it takes about 2^64 distinct texts to expect one.
 */
public final class Fingerprint {
    private Fingerprint() {}

    /** The fingerprint of {@code content}. */
    public static String of(CharSequence content) {
        long h1 = 0xcbf29ce484222325L;
        long h2 = 0x84222325cbf29ce4L ^ content.length();
        for (int i = 0, n = content.length(); i < n; i++) {
            char c = content.charAt(i);
            h1 = (h1 ^ c) * 0x100000001b3L;
            h2 = (h2 ^ c) * 0x9e3779b97f4a7c15L;
        }
        byte[] hex = new byte[32];
        hex(mix(h1), hex, 0);
        hex(mix(h2 ^ h1), hex, 16);
        return new String(hex, StandardCharsets.ISO_8859_1);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private static final byte[] DIGITS = "0123456789abcdef".getBytes(StandardCharsets.ISO_8859_1);

    /** Writes {@code v} as 16 lowercase hex digits at {@code at}, most significant first. */
    private static void hex(long v, byte[] into, int at) {
        for (int i = 15; i >= 0; i--) {
            into[at + i] = DIGITS[(int) (v & 0xf)];
            v >>>= 4;
        }
    }
}
