package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import io.netty.util.concurrent.DefaultPromise;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * {@link RedisStorage#close()} releases what the storage opened without waiting for ever: a Netty shutdown that never
 * completes (the hang seen after a Redis restart) ends the wait at the bound, and a part that fails to close does not
 * keep the parts after it open. No Redis needed.
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
}
