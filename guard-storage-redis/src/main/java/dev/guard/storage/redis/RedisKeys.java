package dev.guard.storage.redis;

import dev.guard.spi.StateKey;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns {@link StateKey}s into Redis keys: {@code <prefix>:[{g}]<type>:<scope>{<subject>}}, where {@code prefix} is
 * the configured key prefix without its trailing {@code :} and {@code type} is {@code s} for limit, gate and set state
 * and {@code r} for records.
 *
 * <p>The prefix holds no {@code :} of its own, so the first {@code :} of a key ends it: storages with different
 * prefixes on one Redis never share a key, and {@code forget} never reaches another prefix's keys (a prefix that held
 * colons, like {@code bot:} beside {@code bot:7:}, was read as the start of a longer one). A configured prefix may end
 * with the {@code :}, so {@code guard:} and {@code guard} are the same prefix.
 *
 * <p>Scope and subject are escaped so that any content is safe: {@code %}, the braces and the glob characters
 * {@code * ? [ ] \} become {@code %XX}, an unpaired surrogate becomes {@code %uXXXX}, the empty subject becomes a lone
 * {@code %}; everything else is UTF-8. The encoding is injective, so distinct keys never collide, and the escaped
 * parts hold no braces, so the only hash tag Redis Cluster sees is the one chosen here: the subject (all state of one
 * user shares a slot) or, in single-slot mode, the constant {@code {g}} (all state shares one slot). Because the
 * escaped subject holds no glob characters either, {@code SCAN MATCH} finds exactly one subject's keys.
 */
final class RedisKeys {
    private static final byte[] HEX = "0123456789ABCDEF".getBytes(StandardCharsets.US_ASCII);
    private static final byte STATE = 's';
    private static final byte RECORD = 'r';

    private final byte[] prefix;

    RedisKeys(String prefix, boolean singleSlot) {
        checkPrefix(prefix);
        this.prefix = (name(prefix) + ":" + (singleSlot ? "{g}" : "")).getBytes(StandardCharsets.UTF_8);
    }

    /** The prefix without the {@code :} that may end it. */
    private static String name(String prefix) {
        return prefix.endsWith(":") ? prefix.substring(0, prefix.length() - 1) : prefix;
    }

    /**
     * Checks a key prefix: braces in it would choose the Cluster hash tag instead of the subject, and a {@code :} but
     * the last would let the prefix run into a longer prefix's keys.
     */
    static void checkPrefix(String prefix) {
        if (prefix == null) {
            throw new IllegalArgumentException("keyPrefix must not be null");
        }
        if (prefix.indexOf('{') >= 0 || prefix.indexOf('}') >= 0) {
            throw new IllegalArgumentException(
                    "keyPrefix must not contain braces, which choose the Cluster slot, but was '" + prefix + "'");
        }
        String name = name(prefix);
        if (name.isEmpty()) {
            throw new IllegalArgumentException("keyPrefix must not be empty but was '" + prefix + "'");
        }
        if (name.indexOf(':') >= 0) {
            throw new IllegalArgumentException("keyPrefix must not contain ':' but as its last character (the ':' that"
                    + " ends the prefix in every key) but was '" + prefix + "'");
        }
    }

    /** The key of the limit, gate or set state at {@code key}. */
    byte[] state(StateKey key) {
        return encode(STATE, key);
    }

    /** The key of the record at {@code key}. */
    byte[] record(StateKey key) {
        return encode(RECORD, key);
    }

    /** A {@code SCAN MATCH} pattern matching every key of {@code subject} and nothing else. */
    byte[] subjectPattern(String subject) {
        Bytes out = new Bytes(prefix.length * 2 + subject.length() + 8);
        for (byte b : prefix) {
            if (isGlob(b)) {
                out.add('\\');
            }
            out.add(b);
        }
        // The prefix ends with its ':', which no other prefix holds there; then the type, any escaped scope (it holds
        // no brace), and exactly this escaped subject at the end.
        out.add('?').add(':').add('*').add('{');
        escape(subject, out);
        return out.add('}').toArray();
    }

    private byte[] encode(byte type, StateKey key) {
        String scope = key.scope();
        String subject = key.subject();
        Bytes out = new Bytes(prefix.length + scope.length() + subject.length() + 8);
        out.add(prefix).add(type).add(':');
        escape(scope, out);
        out.add('{');
        escape(subject, out);
        return out.add('}').toArray();
    }

    private static void escape(String text, Bytes out) {
        if (text.isEmpty()) {
            // A lone '%' is never produced by a non-empty text, and keeps the hash tag non-empty.
            out.add('%');
            return;
        }
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char ch = text.charAt(i);
            if (ch < 0x80) {
                if (ch == '%' || ch == '{' || ch == '}' || isGlob(ch)) {
                    out.add('%').add(HEX[ch >> 4]).add(HEX[ch & 0xF]);
                } else {
                    out.add(ch);
                }
            } else if (ch < 0x800) {
                out.add(0xC0 | ch >> 6).add(0x80 | ch & 0x3F);
            } else if (Character.isHighSurrogate(ch) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                int cp = Character.toCodePoint(ch, text.charAt(++i));
                out.add(0xF0 | cp >> 18)
                        .add(0x80 | cp >> 12 & 0x3F)
                        .add(0x80 | cp >> 6 & 0x3F)
                        .add(0x80 | cp & 0x3F);
            } else if (Character.isSurrogate(ch)) {
                // UTF-8 has no form for an unpaired surrogate; String.getBytes would turn every one into '?'.
                out.add('%').add('u');
                for (int shift = 12; shift >= 0; shift -= 4) {
                    out.add(HEX[ch >> shift & 0xF]);
                }
            } else {
                out.add(0xE0 | ch >> 12).add(0x80 | ch >> 6 & 0x3F).add(0x80 | ch & 0x3F);
            }
        }
    }

    private static boolean isGlob(int b) {
        return b == '*' || b == '?' || b == '[' || b == ']' || b == '\\';
    }

    /** A growable byte array, so a key costs one exact-size copy at the end. */
    private static final class Bytes {
        private byte[] buf;
        private int size;

        Bytes(int capacity) {
            buf = new byte[Math.max(16, capacity)];
        }

        Bytes add(int b) {
            if (size == buf.length) {
                buf = Arrays.copyOf(buf, buf.length * 2);
            }
            buf[size++] = (byte) b;
            return this;
        }

        Bytes add(byte[] bytes) {
            if (size + bytes.length > buf.length) {
                buf = Arrays.copyOf(buf, Math.max(buf.length * 2, size + bytes.length));
            }
            System.arraycopy(bytes, 0, buf, size, bytes.length);
            size += bytes.length;
            return this;
        }

        byte[] toArray() {
            return Arrays.copyOf(buf, size);
        }
    }
}
