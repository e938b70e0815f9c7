package dev.guard.storage.jdbc;

import dev.guard.limit.LimitSpec;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Lets the decisions of concurrent threads share calls to the database. At most {@code maxCalls} calls run at once; a
 * decision that arrives while that many are in flight waits, and when one returns, the first waiting thread to get
 * the free slot sends every decision waiting then (up to {@code maxPerCall}, oldest first) in one call. A decision
 * that finds a free slot goes at once, alone: one thread never waits for another.
 *
 * <p>Why: on PostgreSQL most of what a decision costs the server is per call (the round trip, the statement, the
 * transaction's start and commit, the set-up of the evaluate function's expressions), and a server whose cores are
 * busy decides more per second when several decisions share those costs. Each decision stays atomic on its own; the
 * decisions of one call are evaluated one after the other, as if they had been sent in that order.
 */
final class CallCombiner {
    private static final int QUEUED = 0;
    private static final int TAKEN = 1;
    private static final int DONE = 2;

    /** One decision: its steps, and once its call has returned, its outcomes or the failure. */
    static final class Request {
        final String operation;
        final StateKey[] keys;
        final LimitSpec[] specs;
        final long[] permits;
        final byte[][] hashes;
        final long nowMicros;

        /** Guarded by the combiner. */
        private int state = QUEUED;

        private long[] outcomes;
        private RuntimeException failure;

        Request(String operation, StateKey[] keys, LimitSpec[] specs, long[] permits, byte[][] hashes, long nowMicros) {
            this.operation = operation;
            this.keys = keys;
            this.specs = specs;
            this.permits = permits;
            this.hashes = hashes;
            this.nowMicros = nowMicros;
        }

        /** Sets the outcomes, in the order of the steps; the call does this for each of its decisions. */
        void complete(long[] decided) {
            this.outcomes = decided;
        }

        /** The outcomes that {@link #complete} set, or null. */
        long[] outcomes() {
            return outcomes;
        }
    }

    private final int maxCalls;
    private final int maxPerCall;
    private final Consumer<List<Request>> call;
    private final ArrayDeque<Request> waiting = new ArrayDeque<>();
    private int inFlight;

    /**
     * A combiner that runs {@code call} for each group of decisions; {@code call} completes every request it is
     * given, or throws, which fails those it left incomplete.
     */
    CallCombiner(int maxCalls, int maxPerCall, Consumer<List<Request>> call) {
        if (maxCalls < 1) {
            throw new IllegalArgumentException("maxCalls must be at least 1 but was " + maxCalls);
        }
        if (maxPerCall < 1) {
            throw new IllegalArgumentException("maxPerCall must be at least 1 but was " + maxPerCall);
        }
        this.maxCalls = maxCalls;
        this.maxPerCall = maxPerCall;
        this.call = call;
    }

    /**
     * Decides {@code request}, in a call of its own or shared with other waiting decisions; answers its outcomes.
     *
     * @throws GuardStorageException if the call that carried it failed, or the thread was interrupted while the
     *     decision was still waiting (it was then never sent)
     */
    long[] decide(Request request) {
        synchronized (this) {
            waiting.addLast(request);
        }
        while (true) {
            List<Request> group;
            synchronized (this) {
                awaitTurn(request);
                if (request.state == DONE) {
                    return outcomeOf(request);
                }
                inFlight++;
                int n = Math.min(maxPerCall, waiting.size());
                group = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    Request r = waiting.pollFirst();
                    r.state = TAKEN;
                    group.add(r);
                }
            }
            // The group may not hold this thread's own request (more were waiting than one call takes): it then
            // helps the older ones through and goes round again.
            run(group);
        }
    }

    /** How many decisions wait for a call now. */
    synchronized int waitingCount() {
        return waiting.size();
    }

    /**
     * Waits, holding the monitor, until {@code request} is done or may lead a call: still waiting, with a free slot.
     */
    private void awaitTurn(Request request) {
        boolean interrupted = false;
        try {
            while (request.state == TAKEN || (request.state == QUEUED && inFlight >= maxCalls)) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                    if (request.state == QUEUED) {
                        // Not sent yet: withdraw it. Once taken, the call decides it and this thread waits for that.
                        waiting.remove(request);
                        request.state = DONE;
                        request.failure = new GuardStorageException(
                                "postgresql", request.operation, "interrupted while waiting for a call", e);
                    }
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void run(List<Request> group) {
        RuntimeException failed = null;
        try {
            call.accept(group);
        } catch (RuntimeException e) {
            failed = e;
        } catch (Error e) {
            failed = new GuardStorageException("postgresql", group.get(0).operation, "the call failed", e);
            throw e;
        } finally {
            synchronized (this) {
                for (Request r : group) {
                    if (r.outcomes == null && r.failure == null) {
                        r.failure = failed != null
                                ? failed
                                : new IllegalStateException("the call left a decision without an outcome");
                    }
                    r.state = DONE;
                }
                inFlight--;
                notifyAll();
            }
        }
    }

    /** The outcomes of a done request, or its failure thrown in this thread. */
    private static long[] outcomeOf(Request request) {
        RuntimeException failure = request.failure;
        if (failure == null) {
            return request.outcomes;
        }
        if (failure instanceof GuardStorageException g) {
            // A fresh exception in each thread that the failed call carried, so that no two threads share one
            // (and its suppressed list); the call's own failure is the cause.
            String prefix = g.backend() + " " + g.operation() + " failed: ";
            String message = g.getMessage();
            throw new GuardStorageException(
                    g.backend(),
                    request.operation,
                    message != null && message.startsWith(prefix) ? message.substring(prefix.length()) : message,
                    g);
        }
        throw failure;
    }
}
