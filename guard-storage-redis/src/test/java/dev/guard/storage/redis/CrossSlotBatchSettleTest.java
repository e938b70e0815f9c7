package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import io.lettuce.core.RedisException;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.protocol.AsyncCommand;
import io.lettuce.core.protocol.Command;
import io.lettuce.core.protocol.CommandType;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A cross-slot batch whose settling meets a refund refused as it is sent, or a reply of an unexpected shape: every
 * other slot that committed is still refunded, and the batch's stage completes (with the outcomes, or failed). No
 * Redis: a fake connection answers each call at once, on the test's thread.
 */
class CrossSlotBatchSettleTest {
    private static final long HOUR = TimeUnit.HOURS.toNanos(1);
    private static final String A = "{a}bucket";
    private static final String B = "{b}bucket";
    private static final String C = "{c}bucket";

    /** The keys of the refunds sent (or refused as they were sent), in order. */
    private final List<String> refunds = new CopyOnWriteArrayList<>();

    @Test
    void refundRefusedAsItIsSent_laterSlotsAreStillRefunded_andTheOutcomesReported() throws Exception {
        // a and b admit and commit, c rejects: a's refund is refused by a closed client, b's must still go.
        CompletableFuture<long[]> stage = evaluate(Map.of(A, admitted(), B, admitted(), C, rejected()), A);

        assertThat(refunds).containsExactly(A, B);
        assertThat(stage).isCompleted();
        assertThat(stage.get()).containsExactly(5, 5, -7);
    }

    @Test
    void replyOfAnUnexpectedShape_otherSlotsAreStillRefunded_andTheBatchFails() {
        // a answers a text where an outcome belongs: its commit is unknown; b committed and c rejected.
        List<Object> odd = new ArrayList<>(admitted());
        odd.set(0, "OK".getBytes(StandardCharsets.UTF_8));
        CompletableFuture<long[]> stage = evaluate(Map.of(A, odd, B, admitted(), C, rejected()), null);

        assertThat(refunds).containsExactly(B);
        assertThat(stage).isCompletedExceptionally();
        assertThat(stage.handle((value, error) -> LuaCalls.unwrap(error)).join())
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("as an outcome");
    }

    @Test
    void evaluateRefusedAsItIsSent_slotsSentBeforeAreRefunded_andTheBatchFails() {
        // c's call is refused as it is sent, after a and b committed.
        CompletableFuture<long[]> stage = evaluate(Map.of(A, admitted(), B, admitted()), null);

        assertThat(refunds).containsExactly(A, B);
        assertThat(stage).isCompletedExceptionally();
        assertThat(stage.handle((value, error) -> LuaCalls.unwrap(error)).join())
                .isInstanceOf(RedisException.class)
                .hasMessageContaining("refused");
    }

    /**
     * Evaluates a batch of one step per key a, b, c (each its own slot) on a connection that answers evaluate.lua
     * with {@code replies} (a key without one: refused as it is sent) and refund.lua with 1, except for
     * {@code refusedRefund}, whose refund is refused as it is sent.
     */
    private CompletableFuture<long[]> evaluate(Map<String, List<Object>> replies, String refusedRefund) {
        @SuppressWarnings("unchecked")
        RedisClusterAsyncCommands<byte[], byte[]> commands =
                (RedisClusterAsyncCommands<byte[], byte[]>) Proxy.newProxyInstance(
                        getClass().getClassLoader(),
                        new Class<?>[] {RedisClusterAsyncCommands.class},
                        (proxy, method, args) -> {
                            if (!method.getName().equals("fcall") || args.length != 4) {
                                throw new UnsupportedOperationException(method.getName());
                            }
                            String key = new String(((byte[][]) args[2])[0], StandardCharsets.UTF_8);
                            if (args[0].equals(RedisScript.REFUND.function())) {
                                refunds.add(key);
                                if (key.equals(refusedRefund)) {
                                    throw new RedisException("refused: the client is closed");
                                }
                                return answered(1L);
                            }
                            List<Object> reply = replies.get(key);
                            if (reply == null) {
                                throw new RedisException("refused: the client is closed");
                            }
                            return answered(reply);
                        });
        Step[] steps = Arrays.stream(new String[] {A, B, C})
                .map(key -> new Step(new StateKey("bucket", key), new TokenBucket(10, 1, Duration.ofHours(1)), 1))
                .toArray(Step[]::new);
        byte[][] keys = Arrays.stream(new String[] {A, B, C})
                .map(key -> key.getBytes(StandardCharsets.UTF_8))
                .toArray(byte[][]::new);
        return CrossSlotBatch.evaluate(
                new LuaCalls(commands, true),
                Batch.of(steps),
                keys,
                new int[][] {{0}, {1}, {2}},
                LuaArgs.number(1_000_000),
                LuaArgs.number(1000),
                HOUR);
    }

    /** A slot of one step that admitted (5 permits left) and committed: outcome, now, text before, text after. */
    private static List<Object> admitted() {
        return Arrays.asList(5L, 1_000_000L, null, "t 5 1000000".getBytes(StandardCharsets.UTF_8));
    }

    /** A slot of one step that rejected: nothing written. */
    private static List<Object> rejected() {
        return Arrays.asList(-7L, 1_000_000L, null, null);
    }

    private static <T> AsyncCommand<byte[], byte[], T> answered(T value) {
        AsyncCommand<byte[], byte[], T> command = new AsyncCommand<>(new Command<>(CommandType.FCALL, null));
        command.complete(value);
        return command;
    }
}
