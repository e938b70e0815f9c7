package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.resource.ClientResources;
import io.netty.util.concurrent.DefaultEventExecutor;
import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisStorage#close()} releases what the storage opened without waiting for ever: a Netty shutdown that never
 * completes (the hang seen after a Redis restart) ends the wait at the bound, and a part that fails to close does not
 * keep the parts after it open. Only the last case needs Redis.
 */
class RedisStorageReleaseTest {

    @Test
    void awaitReleased_aShutdownThatNeverCompletes_endsAtTheBound() {
        // A Netty promise that nobody completes: the event loop whose termination it stands for is stuck.
        DefaultPromise<Boolean> stuck = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);

        assertThat(RedisStorage.awaitReleased("stuck threads", stuck, Duration.ofMillis(1)))
                .isFalse();
        assertThat(Thread.currentThread().isInterrupted()).isFalse();
    }

    @Test
    void awaitReleased_aCompletedOrFailedShutdown_counts() {
        DefaultPromise<Boolean> done = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
        done.setSuccess(true);

        assertThat(RedisStorage.awaitReleased("threads", done, Duration.ofMillis(1)))
                .isTrue();
        assertThat(RedisStorage.awaitReleased(
                        "connection", CompletableFuture.failedFuture(new IllegalStateException("x")), Duration.ZERO))
                .isTrue();
    }

    @Test
    void awaitReleased_interrupted_returnsAndKeepsTheInterrupt() {
        Thread.currentThread().interrupt();
        try {
            assertThat(RedisStorage.awaitReleased("client", new CompletableFuture<Void>(), RedisStorage.RELEASE_WAIT))
                    .isFalse();
            assertThat(Thread.currentThread().isInterrupted()).isTrue();
        } finally {
            Thread.interrupted();
        }
    }

    @Test
    void awaitReleased_onANettyEventLoop_doesNotWaitForAShutdownThatTheLoopMayHaveToRun() throws Exception {
        // A bot that closes the storage in a callback of Lettuce's runs on one of its event loops; a shutdown that
        // loop has to run could not finish while it waited. Before: the wait went to its bound (5 s for close()).
        DefaultEventExecutor loop = new DefaultEventExecutor();
        try {
            DefaultPromise<Boolean> pending = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
            Future<Boolean> waited =
                    loop.submit(() -> RedisStorage.awaitReleased("client", pending, Duration.ofHours(1)));

            assertThat(assertTimeoutPreemptively(Duration.ofSeconds(10), () -> waited.get()))
                    .isFalse();
            // A shutdown already done still counts there.
            DefaultPromise<Boolean> done = new DefaultPromise<>(GlobalEventExecutor.INSTANCE);
            done.setSuccess(true);
            assertThat(loop.submit(() -> RedisStorage.awaitReleased("client", done, Duration.ofHours(1)))
                            .get())
                    .isTrue();
        } finally {
            loop.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        }
    }

    @Test
    void releaseAll_aPartThatThrows_theLaterPartsStillClose() {
        List<String> closed = new ArrayList<>();

        RedisStorage.releaseAll(List.of(
                () -> closed.add("connection"),
                () -> {
                    throw new IllegalStateException("client refused to shut down");
                },
                () -> closed.add("threads")));

        assertThat(closed).containsExactly("connection", "threads");
    }

    @Test
    void close_ofAStorageOverAUsersClient_whoseConnectionNeverCloses_returns() {
        // The storage opens its connection from the user's client; that connection's close never completes (the
        // stuck event loop), as closeAsync().join(), which StatefulRedisConnection.close() is, would wait for ever.
        ClientResources resources = ClientResources.create();
        RedisClient client = new StuckCloseClient(resources, RedisURI.create(RedisServers.standalone()));
        try {
            RedisStorage storage = RedisStorage.builder(client).build();
            assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
                // Interrupted, close() waits for nothing: the bound is not what this case measures.
                Thread.currentThread().interrupt();
                storage.close();
                assertThat(Thread.interrupted()).isTrue();
            });
        } finally {
            client.shutdown(0, 2, TimeUnit.SECONDS);
            resources.shutdown(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
        }
    }

    /** A client whose connections' closeAsync never completes; the real connection closes with the client. */
    private static final class StuckCloseClient extends RedisClient {
        StuckCloseClient(ClientResources resources, RedisURI uri) {
            super(resources, uri);
        }

        @Override
        @SuppressWarnings("unchecked")
        public <K, V> StatefulRedisConnection<K, V> connect(RedisCodec<K, V> codec) {
            StatefulRedisConnection<K, V> real = super.connect(codec);
            return (StatefulRedisConnection<K, V>) Proxy.newProxyInstance(
                    getClass().getClassLoader(), new Class<?>[] {StatefulRedisConnection.class}, (proxy, m, args) -> {
                        switch (m.getName()) {
                            case "closeAsync":
                                return new CompletableFuture<Void>();
                            case "close":
                                return ((StatefulRedisConnection<?, ?>) proxy)
                                        .closeAsync()
                                        .join();
                            default:
                                try {
                                    return m.invoke(real, args);
                                } catch (InvocationTargetException e) {
                                    throw e.getCause();
                                }
                        }
                    });
        }
    }
}
