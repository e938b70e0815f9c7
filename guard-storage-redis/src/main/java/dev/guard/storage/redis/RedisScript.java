package dev.guard.storage.redis;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;

/**
 * One operation of this backend's Lua code ({@code kinds.lua}, then one file per operation that defines a function of
 * the operation's name taking {@code keys} and {@code args}), in the two forms Redis runs it in.
 *
 * <ul>
 *   <li>A function of the {@link #LIBRARY library}, called with {@code FCALL} (Redis 7 and later). The library is
 *       created once per server ({@code FUNCTION LOAD}), so a call runs only the operation, not the definition of
 *       every helper function that a script body repeats on each call. Its name carries a digest of the code, so
 *       storages of different Guard versions can share a server without replacing each other's functions.
 *   <li>A script, {@code kinds.lua} and the operation's file followed by a call of the function, sent by its SHA-1
 *       ({@code EVALSHA}); for servers without Functions.
 * </ul>
 *
 * <p>Immutable and thread-safe. {@link LuaCalls} chooses the form and reloads what a server lost.
 */
final class RedisScript {
    private static final String KINDS = resource("kinds.lua");
    private static final List<String> OPERATIONS = List.of("evaluate", "refund", "gate", "member", "record");

    /** {@code guard_} and 16 hex digits of the SHA-1 of the library's Lua code. */
    static final String LIBRARY_NAME = "guard_" + libraryDigest();

    /** The text that {@code FUNCTION LOAD} takes. */
    static final String LIBRARY = library();

    static final RedisScript EVALUATE = new RedisScript("evaluate");
    static final RedisScript REFUND = new RedisScript("refund");
    static final RedisScript GATE = new RedisScript("gate");
    static final RedisScript MEMBER = new RedisScript("member");
    static final RedisScript RECORD = new RedisScript("record");

    private final String name;
    private final String function;
    private final byte[] body;
    private final String sha;

    private RedisScript(String name) {
        this.name = name;
        this.function = LIBRARY_NAME + "_" + name;
        this.body = (KINDS + resource(name + ".lua") + "\nreturn " + name + "(KEYS, ARGV)\n")
                .getBytes(StandardCharsets.UTF_8);
        this.sha = sha1(body);
    }

    private static String libraryDigest() {
        StringBuilder code = new StringBuilder(KINDS);
        for (String operation : OPERATIONS) {
            code.append(resource(operation + ".lua"));
        }
        return sha1(code.toString().getBytes(StandardCharsets.UTF_8)).substring(0, 16);
    }

    /**
     * The library: while it loads, Redis offers only {@code redis.register_function} (not even {@code string} or
     * {@code redis.call}), so the code that captures those runs on the first call, once, and keeps its functions.
     */
    private static String library() {
        StringBuilder text = new StringBuilder("#!lua name=")
                .append(LIBRARY_NAME)
                .append("\nlocal ops\nlocal function init()\n")
                .append(KINDS);
        for (String operation : OPERATIONS) {
            text.append(resource(operation + ".lua"));
        }
        text.append("\nreturn {");
        for (String operation : OPERATIONS) {
            text.append(' ').append(operation).append(" = ").append(operation).append(',');
        }
        text.append(" }\nend\n");
        for (String operation : OPERATIONS) {
            text.append("redis.register_function('")
                    .append(LIBRARY_NAME)
                    .append('_')
                    .append(operation)
                    .append("', function(keys, args)\n  ops = ops or init()\n  return ops.")
                    .append(operation)
                    .append("(keys, args)\nend)\n");
        }
        return text.toString();
    }

    private static String resource(String file) {
        try (InputStream in = RedisScript.class.getResourceAsStream(file)) {
            if (in == null) {
                throw new IllegalStateException("script resource " + file + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read script resource " + file, e);
        }
    }

    private static String sha1(byte[] body) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-1").digest(body);
            StringBuilder hex = new StringBuilder(40);
            for (byte b : digest) {
                hex.append(Character.forDigit(b >> 4 & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-1, which every Java platform must have", e);
        }
    }

    /** The operation's name, for messages. */
    String name() {
        return name;
    }

    /** The operation's function in the library, as {@code FCALL} names it. */
    String function() {
        return function;
    }

    /** The script's SHA-1 in lowercase hex, as {@code SCRIPT LOAD} answers it. */
    String sha() {
        return sha;
    }

    /** The script's text, as {@code SCRIPT LOAD} takes it; not to be modified. */
    byte[] body() {
        return body;
    }
}
