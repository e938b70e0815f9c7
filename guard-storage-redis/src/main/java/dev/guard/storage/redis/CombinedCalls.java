package dev.guard.storage.redis;

import dev.guard.spi.GuardStorageException;
import io.lettuce.core.ScriptOutputType;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.internal.ThreadExecutorMap;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * Lets the decisions of concurrent callers share calls to Redis. At most {@code maxCalls} evaluate calls are in flight
 * at once; a decision that arrives while that many are waits, and when a call returns, the decisions waiting then go
 * together in the next one (up to {@value #MAX_DECISIONS_PER_CALL} of them and {@value #MAX_STEPS_PER_CALL} steps,
 * oldest first; in a Cluster, those whose keys share the oldest one's slot). A decision that arrives while fewer calls
 * are in flight goes at once, alone, in the same call as without this class; a synchronous caller that finds a call
 * free and nothing waiting or about to be sent {@link #claim() claims} it and sends its call itself, as a storage
 * without this class did (the futures and locks of a shared call cost a lone thread about a tenth of its throughput in
 * a paired run).
 *
 * <p>Why: Redis runs one command at a time, and much of what a decision costs it is per command: reading and parsing
 * the command, calling the function, writing the reply; the client pays a write and a read per command too. Under
 * load (many threads on few cores, or one hot key) a shared call decides more per second. A shared call is mode
 * {@code c} of {@code evaluate.lua}: it decides its decisions one after the other, each all-or-nothing on its own, as
 * if each had been a call of its own sent in that order; a decision that fails there (an error from Redis, a step
 * Redis cannot read) fails alone, and the ones before and after it stand.
 *
 * <p><b>Order.</b> Calls go out in the order their decisions came, so that a later decision of one key never overtakes
 * an earlier one: they are taken from the queue and handed to the connection under one lock ({@link #sending}). The
 * thread of the event loop that reads the connection writes at once what other threads only queue for it, so a call
 * taken there is not sent there: it is queued, in the order taken, as a task of that loop (its tasks and the writes
 * queued by other threads run in one order, and a call that ends there queues the next without waking another
 * thread), or in a Cluster, whose masters' connections may each have a loop of their own, as a task of a thread of
 * this class (a hand-over that cost standalone calls 30% of the throughput of sixteen threads). Other threads,
 * another Netty's loops included, send what they take themselves. A batch across Cluster slots waits its turn in the
 * queue too, and nothing after it is taken before it.
 *
 * <p><b>Giving up.</b> A decision whose caller gives up (its timeout, an interrupt) before its call is taken is left
 * out; one whose call is taken but not yet handed to the connection ends that call, and so cancels its command, when
 * no other decision of the call still waits for it. A call has no timer of its own: it runs until it returns, or until
 * one of its decisions times out (each caller has the storage's timeout from the moment it asked), or until none of
 * its decisions waits for it any more; then it fails, every decision it carried fails with it (whether Redis ran them
 * is then unknown, as for a call of their own), and its command is cancelled if it has not gone out yet.
 *
 * <p>Thread-safe. The queue and the counts are guarded by this object's monitor, held only briefly and never while
 * sending or completing; a caller may wait for {@link #sending} while another thread hands calls to the connection.
 * Decisions are completed on Lettuce's event loop (as its replies come), on the thread of the caller that timed out,
 * or (calls that failed as they were sent) on {@link CompletableFuture}'s default async pool; never under either lock.
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
        final String operation;
        final byte[][] keys;
        final byte[][] steps;
        final byte[] now;
        final byte[] count;
        final int slot;

        /** For a batch across Cluster slots: sends it (see {@link CrossSlotBatch}); null for a call of evaluate.lua. */
        final Supplier<CompletableFuture<long[]>> elsewhere;

        final CompletableFuture<long[]> result = new CompletableFuture<>();

        /** The call that carries it, once taken. */
        volatile Call call;

        /**
         * A decision of {@code operation} (for messages) on {@code keys} (one per step) of {@code steps} (each step's
         * text, see {@link LuaArgs#step}) at {@code now} (see {@code evaluate.lua}'s first argument); {@code slot} is
         * the Cluster slot its keys share (0 outside a Cluster).
         */
        Decision(String operation, byte[][] keys, byte[][] steps, byte[] now, int slot) {
            this(operation, keys, steps, now, slot, null);
        }

        private Decision(
                String operation,
                byte[][] keys,
                byte[][] steps,
                byte[] now,
                int slot,
                Supplier<CompletableFuture<long[]>> elsewhere) {
            this.operation = operation;
            this.keys = keys;
            this.steps = steps;
            this.now = now;
            this.count = LuaArgs.number(steps.length);
            this.slot = slot;
            this.elsewhere = elsewhere;
        }

        /**
         * A batch of {@code steps} steps across Cluster slots, which {@code send} sends when its turn comes and which
         * goes alone.
         */
        static Decision acrossSlots(String operation, int steps, Supplier<CompletableFuture<long[]>> send) {
            return new Decision(operation, new byte[0][], new byte[steps][], LuaArgs.EMPTY, -1, send);
        }
    }

    /** A call taken: its decisions, and its reply, which giving the call up completes (failed) first. */
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

    /** Calls taken (counted in flight) but not yet handed to the connection. */
    private int unsent;

    /** The event loop that read the last reply (see {@link #sender()}). */
    private volatile EventExecutor loop;

    /** Whether the connection is a Cluster's. */
    private final boolean cluster;

    /** A Cluster's sending thread, made when first needed; guarded by this object's monitor. */
    private ExecutorService thread;

    /** Set by {@link #close()}; guarded by this object's monitor. */
    private boolean closed;

    /** Held while taking and sending calls: see the class's notes on order. */
    private final Object sending = new Object();

    /**
     * Calls through {@code lua}, with {@code margin} as {@code evaluate.lua}'s third argument, at most {@code maxCalls}
     * in flight.
     */
    CombinedCalls(LuaCalls lua, byte[] margin, int maxCalls, boolean cluster) {
        if (maxCalls < 1) {
            throw new IllegalArgumentException("maxCalls must be at least 1 but was " + maxCalls);
        }
        this.lua = lua;
        this.margin = margin;
        this.maxCalls = maxCalls;
        this.cluster = cluster;
    }

    /**
     * Stops a Cluster's sending thread, if any: calls taken later are sent by the threads that take them (the storage
     * is closed; in order or not, they fail with its connection).
     */
    synchronized void close() {
        closed = true;
        if (thread != null) {
            thread.shutdown();
        }
    }

    /**
     * Sends {@code decision} now, or once a call is free; answers its outcomes, or fails as its call failed. A caller
     * that gives up (a timeout of its own, an interrupt) fails {@code decision.result} (see {@link #giveUp}), not the
     * answer: the decision is then withdrawn (left out while it waits, its call's command cancelled if not sent yet)
     * before the answer fails, so that a caller who hears of the failure finds nothing of the decision left to go out.
     */
    CompletableFuture<long[]> submit(Decision decision) {
        // A dependent future of its own: a future runs its dependents in no promised order, and the caller's (a
        // timeout's continuation) must not run before the withdrawal.
        CompletableFuture<long[]> answer = decision.result.whenComplete((outcomes, failure) -> {
            if (failure != null) {
                gaveUp(decision, failure);
            }
        });
        synchronized (this) {
            waiting.addLast(decision);
            if (inFlight >= maxCalls) {
                return answer;
            }
        }
        dispatch();
        return answer;
    }

    /** Gives {@code decision} up for {@code why}: withdraws it, then fails the answer {@link #submit} gave. */
    static void giveUp(Decision decision, Throwable why) {
        decision.result.completeExceptionally(why);
    }

    /** Gives {@code decision} up if it has no outcomes within {@code nanos}: see {@link #giveUp}. */
    static void timeOut(Decision decision, long nanos) {
        decision.result.orTimeout(nanos, TimeUnit.NANOSECONDS);
    }

    /** How many decisions wait for a call now, not counting those whose callers gave up. For tests. */
    synchronized int waitingCount() {
        return (int) waiting.stream().filter(d -> !d.result.isDone()).count();
    }

    /**
     * Takes calls while fewer than {@code maxCalls} are in flight and hands each to the connection, holding {@link
     * #sending} (see the class's notes on order). What fails as it is sent is settled on the default async pool.
     */
    private void dispatch() {
        List<Runnable> failed = null;
        synchronized (sending) {
            while (true) {
                List<Call> calls;
                synchronized (this) {
                    calls = fill();
                }
                if (calls.isEmpty()) {
                    break;
                }
                Executor via = sender();
                for (Call call : calls) {
                    if (via != null) {
                        // On an event loop, whose own writes go out at once: queued, in the order taken.
                        queue(via, call);
                        continue;
                    }
                    Runnable settle = send(call);
                    if (settle != null) {
                        if (failed == null) {
                            failed = new ArrayList<>();
                        }
                        failed.add(settle);
                    }
                }
            }
        }
        if (failed != null) {
            List<Runnable> settles = failed;
            CompletableFuture.runAsync(() -> settles.forEach(Runnable::run));
        }
    }

    /**
     * Where the calls taken on this thread are queued, or null when this thread sends them itself: on the loop that
     * reads the connection (standalone and Sentinel: its one loop, known from its last reply; it writes at once, and
     * its tasks and the writes other threads queue for it run in one order), as a task of that loop; on any event loop
     * of a Cluster's connection (a connection, and perhaps a loop, per master), as a task of a thread of this class,
     * whose writes are all queued; elsewhere, here.
     */
    private Executor sender() {
        EventExecutor current = ThreadExecutorMap.currentExecutor();
        if (current == null) {
            return null; // not an event loop: its writes are queued for the connection's loop
        }
        if (!cluster) {
            // Only the connection's own loop writes at once; another loop's writes (a bot's own Netty) are queued.
            return current == loop ? current : null;
        }
        synchronized (this) {
            if (closed) {
                return null;
            }
            if (thread == null) {
                thread = Executors.newSingleThreadExecutor(task -> {
                    Thread sending = new Thread(task, "guard-redis-calls");
                    sending.setDaemon(true);
                    return sending;
                });
            }
            return thread;
        }
    }

    /** Sends {@code call} as a task of {@code via}; here when it refuses (it shut down with its client). */
    private void queue(Executor via, Call call) {
        Runnable task = () -> {
            Runnable settle = send(call);
            if (settle != null) {
                CompletableFuture.runAsync(settle);
            }
        };
        try {
            via.execute(task);
        } catch (RejectedExecutionException e) {
            task.run();
        }
    }

    /**
     * The calls to send now, each counted in flight and unsent: while fewer than {@code maxCalls} are in flight, the
     * next group of waiting decisions (none when nothing waits that is still wanted). Holding the monitor.
     */
    private List<Call> fill() {
        List<Call> calls = List.of();
        while (inFlight < maxCalls) {
            List<Decision> group = take();
            if (group.isEmpty()) {
                break;
            }
            if (calls.isEmpty()) {
                calls = new ArrayList<>(1);
            }
            Call call = new Call(group, new CompletableFuture<>());
            for (Decision d : group) {
                d.call = call;
            }
            calls.add(call);
            inFlight++;
            unsent++;
        }
        return calls;
    }

    /**
     * The next call's decisions, taken out of the queue: the oldest one still wanted, and after it every later one
     * that shares its slot, while they fit, up to a batch across slots (which goes alone, and before which nothing
     * later is taken). Decisions whose callers gave up are dropped on the way.
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
            if (next.elsewhere != null) {
                if (group.isEmpty()) {
                    it.remove();
                    group.add(next);
                }
                break;
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
     * A call taken ends when one of its decisions timed out (the calls have no timer of their own: the callers'
     * timeouts end them), or when none of its decisions waits for it any more: it then fails, which frees its slot,
     * fails its other decisions, and cancels its command if it has not gone out yet.
     */
    private static void gaveUp(Decision decision, Throwable failure) {
        Call call = decision.call;
        if (call != null
                && !call.reply.isDone()
                && (LuaCalls.unwrap(failure) instanceof TimeoutException || call.abandoned())) {
            call.reply.completeExceptionally(failure);
        }
    }

    /**
     * Hands {@code call} to the connection, unless it was given up meanwhile; when it ends, the calls waiting go and
     * its decisions are settled. Answers the settlement to run later when it failed at once (else null).
     */
    private Runnable send(Call call) {
        List<Decision> group = call.group;
        CompletableFuture<Object> sent = null;
        Throwable refused = null;
        try {
            if (!call.abandoned() && !call.reply.isDone()) {
                Decision first = group.get(0);
                if (first.elsewhere != null) {
                    sent = first.elsewhere.get().thenApply(outcomes -> (Object) outcomes);
                } else {
                    sent = group.size() == 1 ? alone(first) : together(group);
                }
            }
        } catch (Throwable e) {
            // Lettuce may refuse a command by throwing instead of failing its future (a closed client's timer); an
            // Error fails the call too, so that its slot is freed, and the thread that sends goes on with the others.
            refused = e;
        } finally {
            synchronized (this) {
                unsent--;
            }
        }
        if (sent == null) {
            Throwable why = refused != null ? refused : new CancellationException("every decision of the call gave up");
            call.reply.completeExceptionally(why);
        } else {
            CompletableFuture<Object> command = sent;
            // Giving the call up fails the command's future, which cancels the command if it has not gone out.
            call.reply.whenComplete((value, error) -> {
                if (error != null) {
                    command.completeExceptionally(error);
                }
            });
            command.whenComplete((value, error) -> {
                if (error != null) {
                    call.reply.completeExceptionally(error);
                } else {
                    // A reply: this is the thread of the loop that reads the connection (after a reconnect, perhaps
                    // another than before).
                    EventExecutor reader = ThreadExecutorMap.currentExecutor();
                    if (reader != null) {
                        loop = reader;
                    }
                    call.reply.complete(value);
                }
            });
        }
        if (call.reply.isDone()) {
            // Failed at once: settled after the lock is let go, on the default async pool.
            return () -> call.reply.whenComplete((value, error) -> ended(call, value, error));
        }
        call.reply.whenComplete((value, error) -> ended(call, value, error));
        return null;
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
     * Claims a call for a decision that its own thread sends and waits for, when a call is free and nothing waits or
     * is about to be sent (a thread alone, or threads that keep out of each other's way): the call then costs what a
     * call without this class did, none of its futures and locks. Answers false when the decision must {@link
     * #submit} instead; after true, {@link #release()} once the call has ended.
     */
    synchronized boolean claim() {
        if (inFlight < maxCalls && unsent == 0 && waiting.isEmpty()) {
            inFlight++;
            return true;
        }
        return false;
    }

    /** Gives back a call {@link #claim() claimed}, or one that ended; the decisions that came meanwhile go. */
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
     * A call ended: its slot goes to the decisions waiting (if any), whose calls go in order (see the
     * class's notes on order), then each decision of the call is settled.
     */
    private void ended(Call call, Object reply, Throwable error) {
        release();
        settle(call.group, reply, error == null ? null : LuaCalls.unwrap(error));
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
                // Alone: one integer, a list of them, or a cross-slot batch's outcomes.
                group.get(0).result.complete(outcomes(reply, 0, group.get(0).steps.length));
                return;
            }
            List<?> replies = (List<?>) reply;
            int at = 0;
            for (Decision d : group) {
                Object first = at < replies.size() ? replies.get(at) : null;
                if (first instanceof byte[] text) {
                    d.result.completeExceptionally(new GuardStorageException(
                            RedisStorage.BACKEND, d.operation, new String(text, StandardCharsets.UTF_8), null));
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
        if (reply instanceof long[] ready && ready.length == n) {
            return ready; // a batch across Cluster slots, decided elsewhere
        }
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
