package dev.guard.storage.jdbc;

import dev.guard.spi.StateKey;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * How keys and states become column values. A key's identity is a SHA-256 over its UTF-16 code units, each part
 * prefixed with its length, so distinct keys never share a hash by construction (only by a SHA-256 collision) and any
 * content fits a 32-byte primary key, unpaired surrogates and NUL characters included. Thread-safe.
 */
final class KeyCodec {
    static final int HASH_BYTES = 32;

    private static final ThreadLocal<MessageDigest> SHA256 = ThreadLocal.withInitial(() -> {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    });

    private KeyCodec() {}

    /** The primary key of {@code key}. */
    static byte[] keyHash(StateKey key) {
        String scope = key.scope();
        String subject = key.subject();
        byte[] buf = new byte[8 + 2 * (scope.length() + subject.length())];
        int at = putString(buf, 0, scope);
        putString(buf, at, subject);
        return digest(buf);
    }

    /** The hash of a subject alone, indexed for {@code forget}. */
    static byte[] subjectHash(String subject) {
        byte[] buf = new byte[4 + 2 * subject.length()];
        putString(buf, 0, subject);
        return digest(buf);
    }

    private static byte[] digest(byte[] buf) {
        MessageDigest sha = SHA256.get();
        sha.reset();
        return sha.digest(buf);
    }

    private static int putString(byte[] buf, int at, String s) {
        int n = s.length();
        buf[at] = (byte) (n >>> 24);
        buf[at + 1] = (byte) (n >>> 16);
        buf[at + 2] = (byte) (n >>> 8);
        buf[at + 3] = (byte) n;
        at += 4;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            buf[at++] = (byte) (c >>> 8);
            buf[at++] = (byte) c;
        }
        return at;
    }

    /**
     * The text stored in the scope and subject columns, for people reading the table: PostgreSQL text cannot hold NUL,
     * so NUL becomes U+FFFD in every dialect. The identity is the hash, so this loses nothing that matters.
     */
    static String displayText(String s) {
        return s.indexOf('\0') < 0 ? s : s.replace('\0', '\uFFFD');
    }

    /** Orders hashes as the databases order binary columns: unsigned, byte by byte. */
    static int compare(byte[] a, byte[] b) {
        for (int i = 0; i < HASH_BYTES; i++) {
            int d = (a[i] & 0xff) - (b[i] & 0xff);
            if (d != 0) {
                return d;
            }
        }
        return 0;
    }

    /** The first eight bytes of a key hash as a number: a hint's tag, not an identity. */
    static long prefix(byte[] hash) {
        long v = 0;
        for (int i = 0; i < 8; i++) {
            v = v << 8 | (hash[i] & 0xff);
        }
        return v;
    }

    /** A limit's {@code long[]} state as big-endian bytes (MariaDB, MySQL and H2 store states so). */
    static byte[] encodeState(long[] state) {
        if (state == null) {
            return null;
        }
        byte[] out = new byte[state.length * 8];
        for (int i = 0; i < state.length; i++) {
            long v = state[i];
            for (int b = 0; b < 8; b++) {
                out[i * 8 + b] = (byte) (v >>> (56 - 8 * b));
            }
        }
        return out;
    }

    /** The inverse of {@link #encodeState}. */
    static long[] decodeState(byte[] bytes) {
        if (bytes == null) {
            return null;
        }
        if (bytes.length % 8 != 0) {
            throw new IllegalStateException(
                    "a stored state must be a whole number of longs but had " + bytes.length + " bytes");
        }
        long[] out = new long[bytes.length / 8];
        for (int i = 0; i < out.length; i++) {
            long v = 0;
            for (int b = 0; b < 8; b++) {
                v = (v << 8) | (bytes[i * 8 + b] & 0xff);
            }
            out[i] = v;
        }
        return out;
    }
}
