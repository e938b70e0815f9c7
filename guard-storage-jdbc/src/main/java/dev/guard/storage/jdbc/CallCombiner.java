package dev.guard.storage.jdbc;

import dev.guard.limit.LimitSpec;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.function.Predicate;

/**
 * Lets the decisions of concurrent threads share calls to the database. At most {@code maxCalls} calls run at once; a
 * decision that arrives while that many are in flight waits, and the thread that gets the next free slot sends every
 * decision waiting then (up to {@code maxPerCall}, oldest first) in one call. A decision that arrives while a slot is
 * free goes at once, with whatever is waiting (nothing, when the calls keep up).
 *
 * <p>Why: on PostgreSQL most of what a decision costs the server is per call (the round trip, the statement, the
 * transaction's start and commit, the set-up of the evaluate function's expressions), and a server whose cores are
 * busy decides more per second when several decisions share those costs. Each decision stays atomic on its own; the
 * decisions of one call are evaluated one after the other, as if they had been sent in that order.
 *
 * <p><b>Deadlines.</b> Each decision has the storage's timeout from the moment it arrives (which its caller tells: an
 * asynchronous decision arrives before it waits for an executor's thread): it waits for a call at most
 * until then (and then fails without having been sent), and a call runs at most until the earliest deadline of its
 * decisions. When a shared call fails in a way known to have committed nothing (its statement was stopped, or never
 * sent: its thread got no connection), each of its decisions whose deadline is still ahead goes again alone, so that a
 * key that one decision waits for (locked elsewhere, say) or the thread that ran the call (interrupted while it
 * waited for a connection, say) fails that decision and not the others it travelled with.
 */
final class CallCombiner {
    /**
     * The most steps a shared call carries (a decision with more goes alone): the evaluate function copies its state
     * array at every write, which grows with the steps, so a call's cost grows faster than its steps.
     */
    static final int MAX_STEPS_PER_CALL = 256;

    /** Waiting for a call. */
    private static final int QUEUED = 0;
    /** Waiting for a call of its own: a shared call that carried it failed. */
    private static final int ALONE = 1;
    /** In a call. */
    private static final int TAKEN = 2;
    /** Decided, or failed. */
    private static final int DONE = 3;

    /** Runs one call for a group of decisions, until {@code deadlineNanos} ({@link System#nanoTime()}). */
    @FunctionalInterface
    interface Call {
        /**
         * Completes every request of {@code group}, or throws: {@link NotSent} when nothing of the call reached the
         * database, otherwise the failure itself, and the combiner's {@code committedNothing} then tells whether the
         * call may have committed.
         */
        void run(List<Request> group, long deadlineNanos);
    }

    /**
     * What a {@link Call} throws when it failed before it sent anything (so it committed nothing), around the failure
     * that the decisions get if they do not go again. Never reaches a caller of {@link #decide}.
     */
    static final class NotSent extends RuntimeException {
        private static final long serialVersionUID = 1L;

        private final transient RuntimeException failure;

        NotSent(RuntimeException failure) {
            super(null, failure, false, false);
            this.failure = failure;
        }

        /** The failure itself. */
        RuntimeException failure() {
            return failure;
        }
    }

    /** One decision: its steps, and once its call has returned, its outcomes or the failure. */
    static final class Request {
        final String operation;
        final StateKey[] keys;
        final LimitSpec[] specs;
        final long[] permits;
        final byte[][] hashes;
        final long nowMicros;

        /** Guarded by the combiner, as are the fields below. */
        private int state = QUEUED;

        private long deadlineNanos;
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
    private final long timeoutNanos;
    private final Call call;
    private final Predicate<RuntimeException> committedNothing;
    private final LongSupplier nanoClock;
    private final ArrayDeque<Request> waiting = new ArrayDeque<>();
    private int inFlight;

    /**
     * A combiner that runs {@code call} for each group of decisions, giving each decision {@code timeoutNanos} from
     * its arrival.
     */
    CallCombiner(
            int maxCalls, int maxPerCall, long timeoutNanos, Call call, Predicate<RuntimeException> committedNothing) {
        this(maxCalls, maxPerCall, timeoutNanos, call, committedNothing, System::nanoTime);
    }

    /**
     * As above, reading deadlines off {@code nanoClock} (tests move it by hand, then {@link #wakeAll()}).
     * {@code committedNothing} tells a failure known to have committed nothing (a statement that failed before its
     * commit) from one that may have (a connection lost on the way back): only the decisions of the former go again.
     */
    CallCombiner(
            int maxCalls,
            int maxPerCall,
            long timeoutNanos,
            Call call,
            Predicate<RuntimeException> committedNothing,
            LongSupplier nanoClock) {
        if (maxCalls < 1) {
            throw new IllegalArgumentException("maxCalls must be at least 1 but was " + maxCalls);
        }
        if (maxPerCall < 1) {
            throw new IllegalArgumentException("maxPerCall must be at least 1 but was " + maxPerCall);
        }
        if (timeoutNanos < 1) {
            throw new IllegalArgumentException("timeoutNanos must be positive but was " + timeoutNanos);
        }
        this.maxCalls = maxCalls;
        this.maxPerCall = maxPerCall;
        this.timeoutNanos = timeoutNanos;
        this.call = call;
        this.committedNothing = committedNothing;
        this.nanoClock = nanoClock;
    }

    /** {@link #decide(Request, long)} of a decision that arrives now. */
    long[] decide(Request request) {
        return decide(request, nanoClock.getAsLong());
    }

    /**
     * Decides {@code request}, which arrived at {@code arrivalNanos} (on the combiner's clock: before it waited for an
     * executor's thread, say), in a call of its own or shared with other waiting decisions; answers its outcomes. Its
     * deadline is one timeout after its arrival.
     *
     * @throws GuardStorageException if the call that carried it failed, or it found no call before its deadline, or
     *     the thread was interrupted before it was sent (it then never is; an interrupted thread runs no call, for
     *     itself or others, and keeps its interrupt status)
     */
    long[] decide(Request request, long arrivalNanos) {
        synchronized (this) {
            request.deadlineNanos = arrivalNanos + timeoutNanos;
            waiting.addLast(request);
        }
        while (true) {
            List<Request> group;
            synchronized (this) {
                boolean bypass = awaitTurn(request);
                if (request.state == DONE) {
                    return outcomeOf(request);
                }
                inFlight++;
                if (bypass) {
                    waiting.remove(request);
                    request.state = TAKEN;
                    group = new ArrayList<>(List.of(request));
                } else {
                    group = take();
                }
            }
            // The group may not hold this thread's own request (more were waiting than one call takes, or an older
            // one goes alone): it then helps those through and goes round again.
            try {
                run(group);
            } catch (Throwable e) {
                // Never leave a decision to be sent without its thread: withdraw it while it waits, and while another
                // thread's call carries it, wait for that call (it ends by the deadline), which may also hand it back
                // to wait again alone.
                synchronized (this) {
                    boolean interrupted = false;
                    while (request.state != DONE) {
                        if (request.state == QUEUED || request.state == ALONE) {
                            withdraw(request, "the thread failed while running a call for others", e);
                        } else {
                            try {
                                wait();
                            } catch (InterruptedException ie) {
                                interrupted = true;
                            }
                        }
                    }
                    if (interrupted) {
                        Thread.currentThread().interrupt();
                    }
                }
                throw e;
            }
        }
    }

    /** Wakes every waiting thread to look at its deadline again (tests, after moving the clock). */
    synchronized void wakeAll() {
        notifyAll();
    }

    /** How many decisions wait for a call now. */
    synchronized int waitingCount() {
        return waiting.size();
    }

    /**
     * Waits, holding the monitor, until {@code request} is done or may lead a call: still waiting, with a free slot.
     * Answers true when it has waited half its time for a slot: it then goes alone at once, beyond the limit, so that
     * calls that hang (on a row locked elsewhere, say) delay a decision on other keys by half its timeout at most. A
     * request still waiting at its deadline, or when its thread is interrupted (before it came here too), is withdrawn
     * and fails (done).
     */
    private boolean awaitTurn(Request request) {
        // An interrupt that came before (or during the call that this thread just ran for others) counts as one that
        // comes while it waits: an interrupted thread must run no call, for a pool refuses it a connection (HikariCP
        // does while it waits for one), which would fail the decisions of others that the call carried. Cleared here,
        // so that waits below block until the call that carries this request ends; set again on the way out.
        boolean interrupted = Thread.interrupted();
        try {
            while (request.state == TAKEN || (request.state != DONE && inFlight >= maxCalls)) {
                long now = nanoClock.getAsLong();
                long left = request.deadlineNanos - now;
                long untilBypass = left - timeoutNanos / 2;
                if (request.state != TAKEN && untilBypass <= 0 && left > 0 && !interrupted) {
                    return true;
                }
                if (request.state != TAKEN && (left <= 0 || interrupted)) {
                    break;
                }
                try {
                    if (request.state == TAKEN) {
                        // The call it is in ends by its deadline (the watchdog cancels it then).
                        wait();
                    } else {
                        TimeUnit.NANOSECONDS.timedWait(this, untilBypass);
                    }
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (request.state != DONE && (interrupted || request.deadlineNanos - nanoClock.getAsLong() <= 0)) {
                withdraw(
                        request,
                        interrupted ? "interrupted while waiting for a call" : "timed out waiting for a call",
                        null);
            }
            return false;
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Takes the next group from the waiting decisions: a decision that must go alone by itself, otherwise every
     * decision up to the next one that must go alone, at most {@link #maxPerCall} of them and {@link
     * #MAX_STEPS_PER_CALL} steps (unless the first has more).
     */
    private List<Request> take() {
        List<Request> group = new ArrayList<>();
        long now = nanoClock.getAsLong();
        int steps = 0;
        while (!waiting.isEmpty() && group.size() < maxPerCall) {
            Request next = waiting.peekFirst();
            if (!group.isEmpty() && (next.state == ALONE || steps + next.keys.length > MAX_STEPS_PER_CALL)) {
                break;
            }
            waiting.pollFirst();
            if (next.deadlineNanos - now <= 0) {
                // Its thread is about to give up on it: sending it would only cut the call's time short.
                finish(next, failure(next, "timed out waiting for a call", null));
                continue;
            }
            boolean alone = next.state == ALONE;
            next.state = TAKEN;
            group.add(next);
            steps += next.keys.length;
            if (alone) {
                break;
            }
        }
        return group;
    }

    /** Runs a call for {@code group} (possibly empty) and settles each of its decisions. */
    private void run(List<Request> group) {
        RuntimeException failed = null;
        try {
            if (!group.isEmpty()) {
                long deadline = group.get(0).deadlineNanos;
                for (Request r : group) {
                    // Compared by difference, as System.nanoTime() values must be (a far deadline may wrap around).
                    if (r.deadlineNanos - deadline < 0) {
                        deadline = r.deadlineNanos;
                    }
                }
                call.run(group, deadline);
            }
        } catch (RuntimeException e) {
            failed = e;
        } catch (Throwable e) {
            failed = new GuardStorageException(
                    StorageFailures.BACKEND, group.get(0).operation, "the call failed: " + e, e);
            throw e;
        } finally {
            settle(group, failed);
        }
    }

    /**
     * Settles each decision of a call that ended, {@code failed} or not, frees its slot and wakes the waiting threads:
     * whatever happens here, the slot is freed and they are woken, or they would wait for ever.
     */
    private void settle(List<Request> group, RuntimeException thrown) {
        boolean shared = group.size() > 1;
        RuntimeException failed = thrown instanceof NotSent n ? n.failure() : thrown;
        // Asked outside the monitor, once for the call, and never let through: a failure here must not leave the call
        // unsettled.
        boolean again = failed != null && shared && (thrown instanceof NotSent || committedNothing(failed));
        synchronized (this) {
            try {
                long now = nanoClock.getAsLong();
                List<Request> alone = new ArrayList<>();
                for (Request r : group) {
                    if (r.outcomes != null) {
                        finish(r, null);
                    } else if (again && r.deadlineNanos - now > 0) {
                        // Nothing of the shared call was committed: it goes again alone, before anything newer.
                        r.state = ALONE;
                        alone.add(r);
                    } else if (failed == null) {
                        finish(r, new IllegalStateException("the call left a decision without an outcome"));
                    } else {
                        // A lone call's thread gets the failure itself; each thread of a shared call its own copy.
                        finish(r, shared ? copy(failed, r) : failed);
                    }
                }
                for (int i = alone.size() - 1; i >= 0; i--) {
                    waiting.addFirst(alone.get(i));
                }
            } finally {
                inFlight--;
                notifyAll();
            }
        }
    }

    /** Whether {@code failed} committed nothing; false (unknown) when the predicate itself fails. */
    private boolean committedNothing(RuntimeException failed) {
        try {
            return committedNothing.test(failed);
        } catch (RuntimeException e) {
            // Unknown, then: treated as a call that may have committed, whose decisions are not sent again.
            failed.addSuppressed(e);
            return false;
        }
    }

    /** Takes {@code request}, still waiting, out of the queue, failed with {@code message}. */
    private void withdraw(Request request, String message, Throwable cause) {
        waiting.remove(request);
        finish(request, failure(request, message, cause));
    }

    private static void finish(Request r, RuntimeException failure) {
        r.failure = failure;
        r.state = DONE;
    }

    private static GuardStorageException failure(Request request, String message, Throwable cause) {
        return new GuardStorageException(StorageFailures.BACKEND, request.operation, message, cause);
    }

    /**
     * A failure of its own for {@code request}, of a call it shared: the same message, and the same cause (the
     * driver's exception, scrubbed), so that no two threads throw one exception object.
     */
    private static GuardStorageException copy(RuntimeException failed, Request request) {
        if (failed instanceof GuardStorageException g) {
            String prefix = g.backend() + " " + g.operation() + " failed: ";
            String message = String.valueOf(g.getMessage());
            return new GuardStorageException(
                    g.backend(),
                    request.operation,
                    message.startsWith(prefix) ? message.substring(prefix.length()) : message,
                    g.getCause());
        }
        return failure(request, "the call failed: " + failed, failed);
    }

    /** The outcomes of a done request, or its failure thrown in this thread. */
    private static long[] outcomeOf(Request request) {
        RuntimeException failure = request.failure;
        if (failure == null) {
            return request.outcomes;
        }
        throw failure;
    }
}
