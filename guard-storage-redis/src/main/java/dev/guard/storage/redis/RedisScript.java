package dev.guard.storage.redis;

import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisNoScriptException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/**
 * One Lua script of this backend ({@code kinds.lua} followed by the script's own file), called by its SHA-1.
 *
 * <p>The digest is computed here, so no {@code SCRIPT LOAD} is needed up front: {@code EVALSHA} runs the cached
 * script, and when a server answers {@code NOSCRIPT} (it restarted, was flushed, or is a new cluster node) the call
 * is repeated once as {@code EVAL}, which also caches the script on that server. Immutable and thread-safe.
 */
final class RedisScript {
    static final RedisScript EVALUATE = load("evaluate");
    static final RedisScript REFUND = load("refund");
    static final RedisScript GATE = load("gate");
    static final RedisScript MEMBER = load("member");
    static final RedisScript RECORD = load("record");

    private final String name;
    private final byte[] body;
    private final String sha;

    private RedisScript(String name, byte[] body) {
        this.name = name;
        this.body = body;
        this.sha = sha1(body);
    }

    private static RedisScript load(String name) {
        byte[] kinds = resource("kinds.lua");
        byte[] own = resource(name + ".lua");
        byte[] body = new byte[kinds.length + own.length];
        System.arraycopy(kinds, 0, body, 0, kinds.length);
        System.arraycopy(own, 0, body, kinds.length, own.length);
        return new RedisScript(name, body);
    }

    private static byte[] resource(String file) {
        try (InputStream in = RedisScript.class.getResourceAsStream(file)) {
            if (in == null) {
                throw new IllegalStateException("script resource " + file + " is missing from the jar");
            }
            return in.readAllBytes();
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

    /** The script's name, for messages. */
    String name() {
        return name;
    }

    /** The script's SHA-1 in lowercase hex, as {@code SCRIPT LOAD} answers it. */
    String sha() {
        return sha;
    }

    /** The script's text, as {@code SCRIPT LOAD} takes it; not to be modified. */
    byte[] body() {
        return body;
    }

    /** Sends the script by its digest; the future fails with {@link RedisNoScriptException} if it is not cached. */
    <T> RedisFuture<T> evalsha(
            RedisClusterAsyncCommands<byte[], byte[]> commands, ScriptOutputType type, byte[][] keys, byte[]... args) {
        return commands.evalsha(sha, type, keys, args);
    }

    /** Sends the script by its text, which also caches it on the server that runs it. */
    <T> RedisFuture<T> eval(
            RedisClusterAsyncCommands<byte[], byte[]> commands, ScriptOutputType type, byte[][] keys, byte[]... args) {
        return commands.eval(body, type, keys, args);
    }

    /** Runs the script by its digest and, on {@code NOSCRIPT}, once more by its text; never blocks. */
    <T> CompletableFuture<T> run(
            RedisClusterAsyncCommands<byte[], byte[]> commands, ScriptOutputType type, byte[][] keys, byte[]... args) {
        CompletableFuture<T> call = commands.<T>evalsha(sha, type, keys, args).toCompletableFuture();
        return call.exceptionallyCompose(e -> {
            Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            if (cause instanceof RedisNoScriptException) {
                return commands.<T>eval(body, type, keys, args).toCompletableFuture();
            }
            return CompletableFuture.failedFuture(cause);
        });
    }
}
