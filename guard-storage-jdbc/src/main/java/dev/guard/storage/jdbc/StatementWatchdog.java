package dev.guard.storage.jdbc;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Cancels statements that run past a timeout, from one daemon thread: the driver's query timeout without its cost per
 * statement. pgjdbc's {@code setQueryTimeout} schedules a task on a {@code java.util.Timer} for every execution and
 * cancels it afterwards, which costs a decision more client CPU than binding and reading it; here a statement costs
 * an insertion into and a removal from a concurrent set.
 *
 * <p>Cancelling goes through {@link Statement#cancel()}. pgjdbc cancels only while the statement executes, and an
 * execution that ends during a cancel waits for the cancel to finish before it returns, so a late cancel never hits the
 * connection's next statement. Every watch has the same timeout, so a watch started while the thread waits never
 * expires before the thread wakes: nothing needs to wake it early.
 *
 * <p>Thread-safe. {@link #close()} stops the thread; statements still watched then are no longer cancelled.
 */
final class StatementWatchdog implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StatementWatchdog.class);

    private final long timeoutNanos;
    private final Set<Watch> watches = ConcurrentHashMap.newKeySet();
    private final Thread thread;
    private volatile boolean closed;

    /** Starts the watchdog's daemon thread, named {@code name}. */
    StatementWatchdog(Duration timeout, String name) {
        this.timeoutNanos = timeout.toNanos();
        this.thread = new Thread(this::run, name);
        thread.setDaemon(true);
        thread.start();
    }

    /** Executes {@code statement}'s query, cancelled if it runs longer than the timeout. */
    ResultSet executeQuery(PreparedStatement statement) throws SQLException {
        Watch w = watch(statement);
        try {
            return statement.executeQuery();
        } finally {
            w.close();
        }
    }

    /**
     * Watches {@code statement} from now on: it is cancelled if the returned watch is still open after the timeout.
     * Close the watch once the statement has executed (and before closing the statement).
     */
    Watch watch(Statement statement) {
        Watch w = new Watch(statement, System.nanoTime() + timeoutNanos);
        watches.add(w);
        return w;
    }

    /** The watchdog's thread: for tests, which check that {@link #close()} ends it. */
    Thread thread() {
        return thread;
    }

    private void run() {
        while (!closed) {
            long now = System.nanoTime();
            long wait = timeoutNanos;
            for (Iterator<Watch> it = watches.iterator(); it.hasNext(); ) {
                Watch w = it.next();
                long left = w.deadlineNanos - now;
                if (left > 0) {
                    wait = Math.min(wait, left);
                } else if (watches.remove(w)) {
                    cancel(w.statement);
                }
            }
            // The longest wait is one timeout: any watch started during it expires at its end or later.
            LockSupport.parkNanos(this, wait);
        }
    }

    private static void cancel(Statement statement) {
        try {
            statement.cancel();
        } catch (SQLException | RuntimeException e) {
            // The statement may have finished or been closed meanwhile; it then needs no cancelling.
            LOG.debug("guard jdbc watchdog could not cancel a statement: {}", e.getMessage());
        }
    }

    /** Stops the thread without waiting for a cancel in progress. Idempotent. */
    @Override
    public void close() {
        closed = true;
        watches.clear();
        LockSupport.unpark(thread);
    }

    /** One watched statement; closing it stops the watch. */
    final class Watch implements AutoCloseable {
        private final Statement statement;
        private final long deadlineNanos;

        private Watch(Statement statement, long deadlineNanos) {
            this.statement = statement;
            this.deadlineNanos = deadlineNanos;
        }

        @Override
        public void close() {
            watches.remove(this);
        }
    }
}
