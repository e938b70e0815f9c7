package dev.guard.storage.jdbc;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Cancels statements that run past a timeout, from one daemon thread: the driver's query timeout without its cost per
 * statement. pgjdbc's {@code setQueryTimeout} schedules a task on a {@code java.util.Timer} for every execution and
 * cancels it afterwards, which costs a decision more client CPU than binding and reading it. Here a statement takes a
 * slot of a fixed array with one compare-and-set and frees it with one write; when every slot is taken (more
 * statements at once than slots) it goes into a concurrent set instead.
 *
 * <p>Cancelling goes through {@link Statement#cancel()}. pgjdbc cancels only while the statement executes, and an
 * execution that ends during a cancel waits for the cancel to finish before it returns, so a late cancel never hits the
 * connection's next statement. A cancel that arrives before the driver has started to execute the statement (a thread
 * paused between the watch and the execution for longer than the timeout) is lost, so a statement still watched is
 * cancelled again every {@link #RECANCEL_NANOS} (or timeout, if longer) until it ends; a statement whose deadline has
 * passed when it comes is not sent at all, rather than left to that race. Every watch has the same
 * timeout unless its caller gives an earlier deadline (a shared call, which ends by the earliest deadline of the
 * decisions it carries); such a watch wakes the thread when it is due before the thread's next look.
 *
 * <p>Thread-safe. {@link #close()} refuses new statements; the thread ends once the statements watched then have ended
 * (each still cancelled at its deadline), so that closing never leaves a statement without its timeout.
 */
final class StatementWatchdog implements AutoCloseable {
    /** Slots of a storage's watchdog: more than the statements that a connection pool runs at once. */
    static final int SLOTS = 64;

    /** The least time between two cancels of one statement: a statement that a cancel ends has left by then. */
    static final long RECANCEL_NANOS = 1_000_000_000L;

    /** PostgreSQL's SQL state of a cancelled statement (query_canceled), which committed nothing. */
    static final String QUERY_CANCELED = "57014";

    private static final Logger LOG = LoggerFactory.getLogger(StatementWatchdog.class);

    private final long timeoutNanos;
    private final long recancelNanos;
    private final AtomicReferenceArray<Watch> slots;
    private final Set<Watch> overflow = ConcurrentHashMap.newKeySet();
    private final Thread thread;
    private volatile boolean closed;

    /**
     * When the watchdog looks again at the latest: one timeout after it started its last look, written before that
     * look. A watch due earlier, added after the look read its slot, wakes the thread.
     */
    private volatile long wakeAtNanos = Long.MIN_VALUE;

    /** Starts the watchdog's daemon thread, named {@code name}, with {@link #SLOTS} slots. */
    StatementWatchdog(Duration timeout, String name) {
        this(timeout, name, SLOTS, Math.max(RECANCEL_NANOS, timeout.toNanos()));
    }

    /**
     * Starts the watchdog's daemon thread, named {@code name}, with {@code slotCount} slots, cancelling a statement
     * again every {@code recancelNanos} while it runs (tests use few slots and a short interval).
     */
    StatementWatchdog(Duration timeout, String name, int slotCount, long recancelNanos) {
        this.timeoutNanos = timeout.toNanos();
        this.recancelNanos = recancelNanos;
        this.slots = new AtomicReferenceArray<>(slotCount);
        this.thread = new Thread(this::run, name);
        thread.setDaemon(true);
        thread.start();
    }

    /** Executes {@code statement}'s query, cancelled if it runs longer than the timeout. */
    ResultSet executeQuery(PreparedStatement statement) throws SQLException {
        return executeQuery(statement, System.nanoTime() + timeoutNanos);
    }

    /**
     * Executes {@code statement}'s query, cancelled if it runs past {@code deadlineNanos} ({@link System#nanoTime()}),
     * which is at most one timeout from now: a call that carries decisions which waited for it ends by the earliest of
     * their deadlines.
     *
     * @throws SQLException with SQL state {@value #QUERY_CANCELED}, the statement not sent, when the deadline has
     *     passed already
     */
    ResultSet executeQuery(PreparedStatement statement, long deadlineNanos) throws SQLException {
        if (deadlineNanos - System.nanoTime() <= 0) {
            // Due already (a shared call whose earliest decision ran out while its thread waited for a connection, a
            // decision's second statement): its cancel would race the start of the execution, and one that comes
            // before it is lost, leaving the statement to run until the next cancel, RECANCEL_NANOS later. Refused
            // unsent, it commits nothing, as a cancelled statement does, and fails with the same SQL state.
            throw new SQLException("the statement's deadline passed before it was sent", QUERY_CANCELED);
        }
        Watch w = new Watch(statement, deadlineNanos);
        int slot = claim(w);
        try {
            if (closed) {
                // Read after the claim: the thread may have ended without seeing the watch, and nothing would cancel
                // the statement.
                throw new SQLException("the storage is closed: its statements are no longer watched");
            }
            if (deadlineNanos - wakeAtNanos < 0) {
                // Due before the watchdog's next look: wake it (at most one timeout from now, which a watch of the
                // full timeout never needs).
                LockSupport.unpark(thread);
            }
            return statement.executeQuery();
        } finally {
            // Only the claiming thread empties its slot: the watchdog only reads slots.
            if (slot >= 0) {
                slots.set(slot, null);
            } else {
                overflow.remove(w);
            }
            if (closed) {
                // The thread may be waiting for this statement alone before it ends.
                LockSupport.unpark(thread);
            }
        }
    }

    /** The slot that now holds {@code w}, or -1 when it went into the overflow set. */
    private int claim(Watch w) {
        int n = slots.length();
        // A thread starts from a slot of its own, so that threads rarely compete for one.
        int start = Math.floorMod(System.identityHashCode(Thread.currentThread()), n);
        for (int i = 0; i < n; i++) {
            int s = (start + i) % n;
            if (slots.get(s) == null && slots.compareAndSet(s, null, w)) {
                return s;
            }
        }
        overflow.add(w);
        return -1;
    }

    /** The watchdog's thread: for tests, which check that {@link #close()} ends it. */
    Thread thread() {
        return thread;
    }

    private void run() {
        while (true) {
            // Read before the slots: a statement claimed after this look read its slot sees close() and is refused.
            boolean closing = closed;
            long now = System.nanoTime();
            wakeAtNanos = now + timeoutNanos;
            long wait = timeoutNanos;
            boolean watching = !overflow.isEmpty();
            for (int s = 0; s < slots.length(); s++) {
                Watch w = slots.get(s);
                if (w != null) {
                    watching = true;
                    wait = Math.min(wait, check(w, now));
                }
            }
            for (Watch w : overflow) {
                wait = Math.min(wait, check(w, now));
            }
            if (closing && !watching) {
                // Closed, and every statement watched then has ended: they kept their timeout.
                return;
            }
            // The longest wait is one timeout: any watch started during it expires at its end or later.
            LockSupport.parkNanos(this, wait);
        }
    }

    /**
     * Cancels {@code w}'s statement once it is due, and again every {@link #recancelNanos} while it is still watched;
     * answers how long until it is due next.
     */
    private long check(Watch w, long now) {
        long left = w.deadlineNanos - now;
        if (left > 0) {
            return left;
        }
        w.deadlineNanos = now + recancelNanos;
        try {
            w.statement.cancel();
        } catch (SQLException | RuntimeException e) {
            // The statement may have finished or been closed meanwhile; it then needs no cancelling.
            LOG.debug("guard jdbc watchdog could not cancel a statement: {}", e.getMessage());
        }
        return recancelNanos;
    }

    /**
     * Refuses statements from now on; the thread ends once the statements it watches have ended, each cancelled at
     * its deadline as before. Does not wait for them. Idempotent.
     */
    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(thread);
    }

    /** One statement under watch. */
    private static final class Watch {
        private final Statement statement;
        /** When the statement is cancelled next; after creation, read and written by the watchdog's thread only. */
        private long deadlineNanos;

        private Watch(Statement statement, long deadlineNanos) {
            this.statement = statement;
            this.deadlineNanos = deadlineNanos;
        }
    }
}
