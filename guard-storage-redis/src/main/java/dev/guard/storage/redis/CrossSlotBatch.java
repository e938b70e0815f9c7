package dev.guard.storage.redis;

import dev.guard.spi.Batch;
import dev.guard.spi.Step;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.cluster.SlotHash;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A batch whose keys live in several Redis Cluster slots, which no single script may touch: evaluated per slot, each
 * slot atomic and all-or-nothing on its own, with a refund when some slot rejects.
 *
 * <p>All slots' scripts are sent at once, so an admitted batch still costs one round trip of latency. Each script
 * journals the text of every state it wrote, before and after. When every slot admits, the batch is admitted. When
 * some slot rejects, every slot that admitted (and so committed) runs {@code refund.lua}: a key that nobody wrote
 * since gets its exact previous text back (another limit's state, which the batch read as absent, with its expiry);
 * a key that others wrote since loses only this batch's permits (tokens put back, a count or a log entry taken out, a
 * duplicate window's item forgotten again and an item that the batch's pair pushed out early remembered again). The
 * outcomes reported are each slot's, computed against that slot's state before the batch, exactly as one script
 * would have computed them.
 *
 * <p>What differs from a single-slot batch: between the commit and the refund (one round trip) other callers see the
 * refunded permits as taken, so under contention a cross-slot batch can reject a request that a single script would
 * have admitted; it never admits more than a limit allows (a duplicate window's refund can let one copy of a
 * message pass: see the package documentation). If a slot's script fails or times out, the slots that
 * committed are refunded and the failure is reported; the failed slot's own commit is then unknown (so too when its
 * call is refused as it is sent, or its reply has an unexpected shape). If a refund fails (also when it is refused as
 * it is sent), its permits stay taken until their state expires (at most the limit's ttl): a loss on the safe side;
 * the other slots are refunded all the same, and the outcomes or the failure are reported as without it.
 */
final class CrossSlotBatch {
    private static final Logger LOG = LoggerFactory.getLogger(CrossSlotBatch.class);

    private final LuaCalls lua;
    private final Batch batch;
    private final byte[][] keys;
    private final int[][] groups;
    private final byte[] now;
    private final byte[] margin;
    private final long timeoutNanos;

    private CrossSlotBatch(
            LuaCalls lua, Batch batch, byte[][] keys, int[][] groups, byte[] now, byte[] margin, long timeoutNanos) {
        this.lua = lua;
        this.batch = batch;
        this.keys = keys;
        this.groups = groups;
        this.now = now;
        this.margin = margin;
        this.timeoutNanos = timeoutNanos;
    }

    /**
     * The steps of {@code keys} grouped by cluster slot, in order of first appearance; one group when they share a
     * slot (the common case: one subject's steps share its hash tag).
     */
    static int[][] groups(byte[][] keys) {
        int first = SlotHash.getSlot(keys[0]);
        int[] slots = new int[keys.length];
        boolean same = true;
        for (int i = 0; i < keys.length; i++) {
            slots[i] = SlotHash.getSlot(keys[i]);
            same &= slots[i] == first;
        }
        if (same) {
            return new int[][] {indexes(keys.length)};
        }
        Map<Integer, List<Integer>> bySlot = new LinkedHashMap<>();
        for (int i = 0; i < keys.length; i++) {
            bySlot.computeIfAbsent(slots[i], s -> new ArrayList<>()).add(i);
        }
        return bySlot.values().stream()
                .map(list -> list.stream().mapToInt(Integer::intValue).toArray())
                .toArray(int[][]::new);
    }

    private static int[] indexes(int n) {
        int[] all = new int[n];
        Arrays.setAll(all, i -> i);
        return all;
    }

    /**
     * Evaluates {@code batch} over the slots of {@code groups}, answering the outcomes in step order. The future fails
     * with the first slot's failure (not yet a {@link dev.guard.spi.GuardStorageException}; a reply of an unexpected
     * shape fails its slot with an {@link IllegalStateException}); it never fails because a refund did.
     */
    static CompletableFuture<long[]> evaluate(
            LuaCalls lua, Batch batch, byte[][] keys, int[][] groups, byte[] now, byte[] margin, long timeoutNanos) {
        return new CrossSlotBatch(lua, batch, keys, groups, now, margin, timeoutNanos).evaluate();
    }

    private CompletableFuture<long[]> evaluate() {
        List<CompletableFuture<List<Object>>> calls = new ArrayList<>(groups.length);
        for (int[] group : groups) {
            calls.add(send(group));
        }
        // Wait for every slot, failed or not: a slot that committed must be refunded even when another one failed.
        return CompletableFuture.allOf(calls.toArray(CompletableFuture[]::new))
                .handle((ignored, error) -> calls)
                .thenCompose(this::settle);
    }

    /**
     * Sends evaluate.lua for the steps of one slot. A call that Lettuce refuses by throwing (a closed client's timer)
     * fails its own future instead: the slots sent before it may have committed, and are refunded as for any failure.
     */
    private CompletableFuture<List<Object>> send(int[] group) {
        try {
            byte[][] args = new byte[LuaArgs.EVALUATE_HEADER + group.length][];
            args[0] = now;
            args[1] = LuaArgs.JOURNAL;
            args[2] = margin;
            byte[][] groupKeys = new byte[group.length][];
            for (int j = 0; j < group.length; j++) {
                groupKeys[j] = keys[group[j]];
                args[LuaArgs.EVALUATE_HEADER + j] = LuaArgs.step(batch.step(group[j]));
            }
            return lua.<List<Object>>run(RedisScript.EVALUATE, ScriptOutputType.MULTI, groupKeys, args)
                    .orTimeout(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Decides the batch from every slot's reply, and refunds the slots that committed when it is not admitted. Never
     * throws: a slot whose call failed, or whose reply has an unexpected shape, is a failed slot (its commit unknown);
     * a refund that cannot be sent (or whose journal cannot be read) is logged, and the later slots are refunded all
     * the same.
     */
    private CompletableFuture<long[]> settle(List<CompletableFuture<List<Object>>> calls) {
        long[] outcomes = new long[batch.size()];
        boolean admitted = true;
        Throwable failure = null;
        List<List<Object>> replies = new ArrayList<>(groups.length);
        boolean[] committed = new boolean[groups.length];
        for (int g = 0; g < groups.length; g++) {
            List<Object> reply = null;
            try {
                reply = calls.get(g).join();
                committed[g] = read(reply, groups[g], outcomes);
                admitted &= committed[g];
            } catch (RuntimeException e) {
                // Failed, cancelled, or answered in an unexpected shape: whether it committed is unknown.
                reply = null;
                failure = failure == null ? LuaCalls.unwrap(e) : failure;
            }
            replies.add(reply);
        }
        if (failure == null && admitted) {
            return CompletableFuture.completedFuture(outcomes);
        }
        List<CompletableFuture<Long>> refunds = new ArrayList<>();
        for (int g = 0; g < groups.length; g++) {
            if (!committed[g]) { // a slot without a reply did not commit either
                continue;
            }
            try {
                CompletableFuture<Long> refund = refund(groups[g], replies.get(g));
                if (refund != null) {
                    refunds.add(refund);
                }
            } catch (RuntimeException e) {
                // Refused as it was sent (a closed client), or a journal of an unexpected shape: the other slots'
                // refunds go on.
                LOG.warn("refunding a cross-slot batch failed; its permits stay taken until their state expires", e);
            }
        }
        Throwable cause = failure;
        return CompletableFuture.allOf(refunds.toArray(CompletableFuture[]::new))
                .handle((ignored, refundError) -> {
                    if (refundError != null) {
                        LOG.warn(
                                "refunding a cross-slot batch failed; its permits stay taken until their state expires",
                                refundError);
                    }
                    if (cause != null) {
                        throw new CompletionException(cause);
                    }
                    return outcomes;
                });
    }

    /**
     * Reads one slot's outcomes into {@code outcomes}, and answers whether its script committed: it does exactly when
     * every step of its slot admits.
     *
     * @throws IllegalStateException when the reply has not the shape that evaluate.lua answers
     */
    private static boolean read(List<Object> reply, int[] group, long[] outcomes) {
        int m = group.length;
        if (reply == null || reply.size() < 3 * m + 1) {
            throw new IllegalStateException("Redis answered " + (reply == null ? "nothing" : reply.size() + " values")
                    + " for a slot of " + m + " steps");
        }
        boolean committed = true;
        for (int j = 0; j < m; j++) {
            if (!(reply.get(j) instanceof Long outcome)) {
                throw new IllegalStateException("Redis answered a " + type(reply.get(j)) + " as an outcome");
            }
            outcomes[group[j]] = outcome;
            committed &= outcome >= 0;
        }
        return committed;
    }

    private static String type(Object value) {
        return value == null ? "null" : value.getClass().getSimpleName();
    }

    /** Sends {@code refund.lua} for the steps of one slot that wrote state; null when none did. */
    private CompletableFuture<Long> refund(int[] group, List<Object> reply) {
        int m = group.length;
        List<Integer> writers = new ArrayList<>(m);
        for (int j = 0; j < m; j++) {
            if (LuaArgs.commits(batch.step(group[j]).spec())) {
                writers.add(j);
            }
        }
        if (writers.isEmpty()) {
            return null;
        }
        byte[][] refundKeys = new byte[writers.size()][];
        byte[][] args = new byte[LuaArgs.REFUND_HEADER + writers.size() * LuaArgs.PER_REFUND][];
        // The script's own clock reading, so that a refund under the server's TIME uses the commit's instant.
        args[0] = LuaArgs.number((Long) reply.get(m));
        args[1] = margin;
        for (int w = 0; w < writers.size(); w++) {
            int j = writers.get(w);
            Step step = batch.step(group[j]);
            refundKeys[w] = keys[group[j]];
            int at = LuaArgs.REFUND_HEADER + w * LuaArgs.PER_REFUND;
            args[at] = LuaArgs.step(step);
            args[at + 1] = text(reply.get(m + 2 * j + 1));
            args[at + 2] = text(reply.get(m + 2 * j + 2));
        }
        return lua.<Long>run(RedisScript.REFUND, ScriptOutputType.INTEGER, refundKeys, args)
                .orTimeout(timeoutNanos, TimeUnit.NANOSECONDS);
    }

    private static byte[] text(Object journaled) {
        return journaled == null ? LuaArgs.EMPTY : (byte[]) journaled;
    }
}
