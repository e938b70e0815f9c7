package dev.guard.storage.redis;

import dev.guard.spi.GuardStorageException;
import io.lettuce.core.ScriptOutputType;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;

/**
 * Lets the decisions of concurrent callers share calls to Redis. At most {@code maxCalls} evaluate calls are in flight
 * at once; a decision that arrives while that many are waits, and when a call returns, the decisions waiting then go
 * together in the next one (up to {@value #MAX_DECISIONS_PER_CALL} of them and {@value #MAX_STEPS_PER_CALL} steps,
 * oldest first; in a Cluster, those whose keys share the oldest one's slot). A decision that arrives while fewer calls
 * are in flight goes at once, alone, in the same call as without this class; a synchronous caller that finds a call
 * free and nothing waiting {@link #claim() claims} it and sends its call itself, as a storage without this class did
 * (the futures and locks of a shared call cost a lone thread about a tenth of its throughput in a paired run).
 *
 * <p>Why: Redis runs one command at a time, and much of what a decision costs it is per command: reading and parsing
 * the command, calling the function, writing the reply; the client pays a write and a read per command too. Under
 * load (many threads on few cores, or one hot key) a shared call decides more per second. A shared call is mode
 * {@code c} of {@code evaluate.lua}: it decides its decisions one after the other, each all-or-nothing on its own, as
 * if each had been a call of its own sent in that order; a decision that fails there (an error from Redis, a step
 * Redis cannot read) fails alone, and the ones before and after it stand.
 *
 * <p>Nothing blocks. A decision whose future completes before its call is sent (its caller timed out, was interrupted,
 * or cancelled) is never sent: it took nothing. A call has no timer of its own: it runs until it returns, or until the
 * first of its decisions times out (each caller has the storage's timeout from the moment it asked), or until none of
 * its decisions waits for it any more; then it fails, every decision it carried fails with it (whether Redis ran them
 * is then unknown, as for a call of their own), and its command is cancelled if it has not gone out yet.
 *
 * <p>Thread-safe: the queue and the count of calls in flight are guarded by this object's monitor, never held while
 * sending or completing; calls are taken and sent under a second lock, so that they go out in the order taken.
 */
final class CombinedCalls {
    /** The most decisions a shared call carries. */
    static final int MAX_DECISIONS_PER_CALL = 64;

    /**
     * The most steps a shared call carries (a decision with more goes alone): Redis runs nothing else while it runs a
     * call, so a call's length is every other client's wait.
     */
    static final int MAX_STEPS_PER_CALL = 256;

    private static final byte[] COMBINED = LuaArgs.ascii("c");

    /** One decision: its state keys, its steps' texts, its now; its future completes with Lua's raw outcomes. */
    static final class Decision {
        final byte[][] keys;
        final byte[][] steps;
        final byte[] now;
        final byte[] count;
        final int slot;
        final CompletableFuture<long[]> result = new CompletableFuture<>();

        /** The call that carries it, once sent. */
        volatile Call call;

        /**
         * A decision on {@code keys} (one per step) of {@code steps} (each step's text, see {@link LuaArgs#step}) at
         * {@code now} (see {@code evaluate.lua}'s first argument); {@code slot} is the Cluster slot its keys share (0
         * outside a Cluster).
         */
        Decision(byte[][] keys, byte[][] steps, byte[] now, int slot) {
            this.keys = keys;
            this.steps = steps;
            this.now = now;
            this.count = LuaArgs.number(steps.length);
            this.slot = slot;
        }
    }

    /** A call in flight: its decisions and its reply. */
    private record Call(List<Decision> group, CompletableFuture<Object> reply) {
        /** Whether no decision of the call waits for it any more. */
        boolean abandoned() {
            for (Decision d : group) {
                if (!d.result.isDone()) {
                    return false;
                }
            }
            return true;
        }
    }

    private final LuaCalls lua;
    private final byte[] margin;
    private final int maxCalls;
    private final ArrayDeque<Decision> waiting = new ArrayDeque<>();
    private int inFlight;

    /** Held while taking and sending calls: see {@link #dispatch()}. */
    private final Object sending = new Object();

    /** Settlements of calls that ended as they were sent, run once {@link #sending} is let go; guarded by it. */
    private List<Runnable> settleLater = List.of();

    /** Calls through {@code lua}, with {@code margin} as {@code evaluate.lua}'s third argument, at most {@code maxCalls} in flight. */
    CombinedCalls(LuaCalls lua, byte[] margin, int maxCalls) {
        if (maxCalls < 1) {
            throw new IllegalArgumentException("maxCalls must be at least 1 but was " + maxCalls);
        }
        this.lua = lua;
        this.margin = margin;
        this.maxCalls = maxCalls;
    }

    /**
     * Sends {@code decision} now, or once a call is free; answers its future, which fails as its call failed, and
     * which the caller may fail first (a timeout of its own) to withdraw the decision while it waits.
     */
    CompletableFuture<long[]> submit(Decision decision) {
        decision.result.whenComplete((outcomes, failure) -> {
            if (failure != null) {
                gaveUp(decision, failure);
            }
        });
        synchronized (this) {
            waiting.addLast(decision);
            if (inFlight >= maxCalls) {
                return decision.result;
            }
        }
        dispatch();
        return decision.result;
    }

    /**
     * Takes calls while fewer than {@code maxCalls} are in flight and sends each, one thread at a time (holding {@link
     * #sending}), so that calls go out in the order their decisions were taken: a later decision of one key never
     * overtakes an earlier one on the connection. A call that fails before it is sent frees its slot at once; its
     * decisions are settled once this thread has let go of the lock (they may run their callers' code).
     */
    private void dispatch() {
        List<Runnable> later;
        synchronized (sending) {
            while (true) {
                List<List<Decision>> calls;
                synchronized (this) {
                    calls = fill();
                }
                if (calls.isEmpty()) {
                    break;
                }
                for (List<Decision> group : calls) {
                    send(group);
                }
            }
            later = settleLater;
            settleLater = List.of();
        }
        for (Runnable settle : later) {
            settle.run();
        }
    }

    /** How many decisions wait for a call now, not counting those whose callers gave up. For tests. */
    synchronized int waitingCount() {
        return (int) waiting.stream().filter(d -> !d.result.isDone()).count();
    }

    /**
     * The calls to send now, each counted in flight: while fewer than {@code maxCalls} are, the next group of waiting
     * decisions (none when nothing waits that is still wanted). Holding the monitor.
     */
    private List<List<Decision>> fill() {
        List<List<Decision>> calls = List.of();
        while (inFlight < maxCalls) {
            List<Decision> group = take();
            if (group.isEmpty()) {
                break;
            }
            if (calls.isEmpty()) {
                calls = new ArrayList<>(1);
            }
            calls.add(group);
            inFlight++;
        }
        return calls;
    }

    /**
     * The next call's decisions, taken out of the queue: the oldest one still wanted, and after it every later one
     * that shares its slot, while they fit. Decisions whose callers gave up are dropped on the way.
     */
    private List<Decision> take() {
        List<Decision> group = new ArrayList<>();
        int steps = 0;
        for (Iterator<Decision> it = waiting.iterator(); it.hasNext(); ) {
            Decision next = it.next();
            if (next.result.isDone()) {
                it.remove();
                continue;
            }
            if (!group.isEmpty() && next.slot != group.get(0).slot) {
                // Another slot's decision: a later call takes it; order matters only among decisions of one slot.
                continue;
            }
            if (!group.isEmpty() && steps + next.steps.length > MAX_STEPS_PER_CALL) {
                break;
            }
            it.remove();
            group.add(next);
            steps += next.steps.length;
            if (group.size() == MAX_DECISIONS_PER_CALL) {
                break;
            }
        }
        return group;
    }

    /**
     * A decision failed or its caller gave up on it. A decision still waiting is dropped when the next call is taken.
     * A call in flight runs until the first of its decisions times out (the calls have no timer of their own: the
     * callers' timeouts end them), or until none of its decisions waits for it any more: then it fails, which frees
     * its slot, fails its other decisions, and cancels its command if it has not gone out yet.
     */
    private static void gaveUp(Decision decision, Throwable failure) {
        Call call = decision.call;
        if (call != null
                && !call.reply.isDone()
                && (LuaCalls.unwrap(failure) instanceof TimeoutException || call.abandoned())) {
            call.reply.completeExceptionally(failure);
        }
    }

    /** Sends one call for {@code group} (not empty); when it ends, the next call goes and the group is settled. */
    private void send(List<Decision> group) {
        CompletableFuture<Object> reply;
        try {
            reply = group.size() == 1 ? alone(group.get(0)) : together(group);
        } catch (RuntimeException e) {
            // Lettuce may refuse a command by throwing instead of failing its future (a closed client's timer).
            reply = CompletableFuture.failedFuture(e);
        }
        Call call = new Call(group, reply);
        for (Decision d : group) {
            d.call = call;
        }
        if (call.abandoned()) {
            // Each caller gave up between the take and now, so none told the call.
            reply.completeExceptionally(new CancellationException("every decision of the call was given up"));
        }
        reply.whenComplete((value, error) -> ended(group, value, error));
    }

    private CompletableFuture<Object> alone(Decision decision) {
        return lua.run(RedisScript.EVALUATE, aloneType(decision), decision.keys, aloneArgs(decision));
    }

    /** The reply's type of {@code evaluate.lua} for {@code decision} alone: its outcome, or a list of them. */
    static ScriptOutputType aloneType(Decision decision) {
        return decision.steps.length == 1 ? ScriptOutputType.INTEGER : ScriptOutputType.MULTI;
    }

    /** The arguments of {@code evaluate.lua} for {@code decision} alone. */
    byte[][] aloneArgs(Decision decision) {
        byte[][] args = new byte[LuaArgs.EVALUATE_HEADER + decision.steps.length][];
        args[0] = decision.now;
        args[1] = decision.steps.length == 1 ? LuaArgs.ONE_OUTCOME : LuaArgs.OUTCOMES;
        args[2] = margin;
        System.arraycopy(decision.steps, 0, args, LuaArgs.EVALUATE_HEADER, decision.steps.length);
        return args;
    }

    /**
     * Claims a call for a decision that its own thread sends and waits for, when a call is free and nothing waits (a
     * thread alone, or threads that keep out of each other's way): the call then costs what a call without this class
     * did, none of its futures and locks. Answers false when the decision must {@link #submit} instead; after true,
     * {@link #release()} once the call has ended.
     */
    synchronized boolean claim() {
        if (inFlight < maxCalls && waiting.isEmpty()) {
            inFlight++;
            return true;
        }
        return false;
    }

    /** Gives back a call {@link #claim() claimed}; the decisions that came meanwhile go. */
    void release() {
        boolean waits;
        synchronized (this) {
            inFlight--;
            waits = !waiting.isEmpty();
        }
        if (waits) {
            dispatch();
        }
    }

    private CompletableFuture<Object> together(List<Decision> group) {
        int steps = 0;
        for (Decision d : group) {
            steps += d.steps.length;
        }
        byte[][] keys = new byte[steps][];
        byte[][] args = new byte[LuaArgs.EVALUATE_HEADER + 2 * group.size() + steps][];
        args[0] = LuaArgs.EMPTY;
        args[1] = COMBINED;
        args[2] = margin;
        int k = 0;
        int a = LuaArgs.EVALUATE_HEADER;
        for (Decision d : group) {
            args[a++] = d.count;
            args[a++] = d.now;
            System.arraycopy(d.keys, 0, keys, k, d.keys.length);
            System.arraycopy(d.steps, 0, args, a, d.steps.length);
            k += d.keys.length;
            a += d.steps.length;
        }
        return lua.run(RedisScript.EVALUATE, ScriptOutputType.MULTI, keys, args);
    }

    /**
     * A call ended: its slot goes to the decisions waiting (if any), whose call is sent first, so that Redis works on
     * it while this thread settles each decision of {@code group} (waking each of their threads takes a while). When it
     * ended as it was sent, in {@link #dispatch()}, that goes on taking calls, and settles the group after.
     */
    private void ended(List<Decision> group, Object reply, Throwable error) {
        boolean waits;
        synchronized (this) {
            inFlight--;
            waits = !waiting.isEmpty();
        }
        if (Thread.holdsLock(sending)) {
            if (settleLater.isEmpty()) {
                settleLater = new ArrayList<>();
            }
            settleLater.add(() -> settle(group, reply, error));
            return;
        }
        try {
            if (waits) {
                // Not taken when nothing waits: its holder may be a thread that the scheduler put aside just after
                // it sent, and waiting for it would delay every reply behind this one.
                dispatch();
            }
        } finally {
            settle(group, reply, error);
        }
    }

    private static void settle(List<Decision> group, Object reply, Throwable error) {
        if (error != null) {
            for (Decision d : group) {
                d.result.completeExceptionally(error);
            }
            return;
        }
        try {
            if (group.size() == 1) {
                group.get(0).result.complete(outcomes(reply, 0, group.get(0).steps.length));
                return;
            }
            List<?> replies = (List<?>) reply;
            int at = 0;
            for (Decision d : group) {
                Object first = at < replies.size() ? replies.get(at) : null;
                if (first instanceof byte[] text) {
                    d.result.completeExceptionally(new GuardStorageException(
                            RedisStorage.BACKEND, "evaluate", new String(text, StandardCharsets.UTF_8), null));
                } else {
                    d.result.complete(outcomes(replies, at, d.steps.length));
                }
                at += d.steps.length;
            }
        } catch (RuntimeException e) {
            // A reply of an unexpected shape: every decision not settled yet fails with it.
            for (Decision d : group) {
                d.result.completeExceptionally(e);
            }
        }
    }

    /** The {@code n} integers of {@code reply} (one integer, or a list) from index {@code from}. */
    static long[] outcomes(Object reply, int from, int n) {
        long[] outcomes = new long[n];
        if (reply instanceof Long one) {
            if (n != 1) {
                throw new IllegalStateException("Redis answered one outcome for " + n + " steps");
            }
            outcomes[0] = one;
            return outcomes;
        }
        List<?> replies = (List<?>) reply;
        if (replies.size() < from + n) {
            throw new IllegalStateException(
                    "Redis answered " + replies.size() + " outcomes where " + (from + n) + " were due");
        }
        for (int i = 0; i < n; i++) {
            outcomes[i] = (Long) replies.get(from + i);
        }
        return outcomes;
    }
}
