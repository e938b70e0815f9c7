package dev.guard.storage.redis;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.FlushMode;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;

/**
 * Calls made while the calls queued behind a reload of the library are being sent again go after them; a reload that
 * Lettuce refuses at once does not hold up the calls after it.
 */
class LuaCallsReloadOrderTest {

    @Test
    void callMadeWhileQueuedCallsAreSentAgain_goesAfterThem() throws Exception {
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE)) {
            byte[] first = "guard-test:reload-order:{a}".getBytes(StandardCharsets.UTF_8);
            byte[] later = "guard-test:reload-order:{c}".getBytes(StandardCharsets.UTF_8);
            List<String> sent = new CopyOnWriteArrayList<>();
            AtomicReference<LuaCalls> lua = new AtomicReference<>();
            AtomicReference<CompletableFuture<Long>> laterCall = new AtomicReference<>();
            RedisClusterAsyncCommands<byte[], byte[]> hooked = hooked(connection.async(), (method, args) -> {
                if (method.getName().equals("fcall") && args.length == 4) {
                    String key = new String(((byte[][]) args[2])[0], StandardCharsets.UTF_8);
                    if (key.endsWith("{a}") && sent.contains(key) && laterCall.get() == null) {
                        // The first call goes again after the load: another call is made just now.
                        laterCall.set(run(lua.get(), later));
                    }
                    sent.add(key);
                }
            });
            lua.set(new LuaCalls(hooked, true));
            lua.get().loadLibrary().get(30, SECONDS);
            connection.sync().functionFlush(FlushMode.SYNC);

            CompletableFuture<Long> firstCall = run(lua.get(), first);

            assertThat(firstCall.get(30, SECONDS)).isNotNull();
            assertThat(laterCall.get()).isNotNull();
            assertThat(laterCall.get().get(30, SECONDS)).isNotNull();
            String a = new String(first, StandardCharsets.UTF_8);
            String c = new String(later, StandardCharsets.UTF_8);
            assertThat(sent).as("the calls in the order sent").containsExactly(a, a, c);
            connection.sync().del(first, later);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    @Test
    void reloadRefusedAsItIsSent_laterCallsLoadTheLibraryAgain_ratherThanWaitForEver() throws Exception {
        RedisClient client = RedisClient.create(RedisServers.standalone());
        try (StatefulRedisConnection<byte[], byte[]> connection = client.connect(ByteArrayCodec.INSTANCE)) {
            byte[] first = "guard-test:reload-refused:{a}".getBytes(StandardCharsets.UTF_8);
            byte[] later = "guard-test:reload-refused:{b}".getBytes(StandardCharsets.UTF_8);
            AtomicBoolean refuseLoad = new AtomicBoolean();
            RedisClusterAsyncCommands<byte[], byte[]> hooked = hooked(connection.async(), (method, args) -> {
                if (method.getName().equals("functionLoad") && refuseLoad.getAndSet(false)) {
                    // As Lettuce refuses a command at once (a full request queue, say).
                    throw new RedisException("Request queue size exceeded");
                }
            });
            LuaCalls lua = new LuaCalls(hooked, true);
            lua.loadLibrary().get(30, SECONDS);
            connection.sync().functionFlush(FlushMode.SYNC);
            refuseLoad.set(true);

            CompletableFuture<Long> firstCall = run(lua, first);
            assertThat(firstCall).failsWithin(30, SECONDS);

            assertThat(lua.reloading()).as("a reload still pending").isFalse();
            assertThat(run(lua, later).get(30, SECONDS)).isNotNull();
            connection.sync().del(first, later);
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }

    /** {@code real}'s commands, each call shown to {@code before} first (which may throw in its place). */
    @SuppressWarnings("unchecked")
    private static RedisClusterAsyncCommands<byte[], byte[]> hooked(
            RedisClusterAsyncCommands<byte[], byte[]> real, BiConsumer<Method, Object[]> before) {
        return (RedisClusterAsyncCommands<byte[], byte[]>) Proxy.newProxyInstance(
                LuaCallsReloadOrderTest.class.getClassLoader(),
                new Class<?>[] {RedisClusterAsyncCommands.class},
                (proxy, method, args) -> {
                    before.accept(method, args);
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    private static CompletableFuture<Long> run(LuaCalls lua, byte[] key) {
        Step step = new Step(new StateKey("bucket", "x"), new TokenBucket(1, 1, Duration.ofHours(1)), 1);
        return lua.run(
                RedisScript.EVALUATE,
                ScriptOutputType.INTEGER,
                new byte[][] {key},
                LuaArgs.number(1_000_000),
                LuaArgs.ONE_OUTCOME,
                LuaArgs.number(1000),
                LuaArgs.step(step));
    }
}
