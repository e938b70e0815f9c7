package dev.guard;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * A clock read from one cached field that a ticking thread refreshes from a {@link PreciseTicker}: the logic of
 * {@link Ticker#system()}, with its time sources and its thread left to the caller so that tests drive {@link #tick}
 * by hand. {@link #SYSTEM} is the instance over the system clock with its daemon thread.
 *
 * <p><b>The word.</b> Readers read one volatile long: the time in microseconds shifted left by one, and in the low
 * bit a mark that someone read it since the last idle check. A reader that finds the mark set (the common case)
 * writes nothing, so a hot clock costs no shared write per read; the first reader after a check sets it by
 * compare-and-set. The ticking thread replaces the time keeping the mark, and once per {@link #IDLE_NANOS} clears it,
 * or, if nobody set it since the last check, publishes {@link #STALE} and ends.
 *
 * <p><b>Stale.</b> A reader that finds {@link #STALE} computes the time itself (one precise read), publishes it
 * marked, and starts a thread. Every value published is at least every value published before ({@link #floorMicros}
 * carries it across a stale period), so reads never go backwards, even when the wall clock is set back.
 */
final class CoarseTicker implements Ticker {
    /** The system clock, ticked by the {@code guard-clock} daemon thread. */
    static final CoarseTicker SYSTEM = new CoarseTicker(PreciseTicker.SYSTEM, ClockThread::wake);

    /** How often the thread refreshes the word. */
    static final long TICK_NANOS = 1_000_000L;

    /** How long without a read before the thread stops: the period of its idle check. */
    static final long IDLE_NANOS = 1_000_000_000L;

    /** No thread ticks: the word an idle clock holds. Even, so the readers' one test of the mark catches it. */
    private static final long STALE = Long.MIN_VALUE;

    private static final VarHandle WORD;

    static {
        try {
            WORD = MethodHandles.lookup().findVarHandle(CoarseTicker.class, "word", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final PreciseTicker source;
    private final Runnable wake;

    /** {@code micros << 1 | read}, or {@link #STALE}; accessed through {@link #WORD} for compare-and-set. */
    private volatile long word = STALE;

    /** The last time published before the word went stale: the least the next published time may be. */
    private volatile long floorMicros = Long.MIN_VALUE;

    /** The source's nanoTime at the last idle check; touched only by the ticking thread. */
    private long checkedAtNanos;

    /**
     * A stale clock over {@code source}; {@code wake} must see to it that a thread calls {@link #tick} again (start one
     * if none runs); if it throws, the clock goes stale again and the read rethrows.
     */
    CoarseTicker(PreciseTicker source, Runnable wake) {
        this.source = source;
        this.wake = wake;
        this.checkedAtNanos = source.nanoTime();
    }

    @Override
    public long epochMicros() {
        long w = word;
        return (w & 1) != 0 ? w >> 1 : mark(w);
    }

    /** A read of an unmarked or stale word: marks it, or publishes the time and wakes the thread. */
    private long mark(long w) {
        while (true) {
            if (w == STALE) {
                long micros = Math.max(source.epochMicros(), floorMicros);
                if (WORD.compareAndSet(this, STALE, micros << 1 | 1)) {
                    try {
                        wake.run();
                    } catch (RuntimeException | Error e) {
                        // No thread will tick this value (one could not start): stale again, so the next read
                        // computes the time and tries again, rather than a clock frozen at this value.
                        stop();
                        throw e;
                    }
                    return micros;
                }
            } else if (WORD.compareAndSet(this, w, w | 1)) {
                return w >> 1;
            }
            // Another reader or the thread moved the word: take theirs, never a time of our own behind it.
            w = word;
            if ((w & 1) != 0) {
                return w >> 1;
            }
        }
    }

    /**
     * One step of the ticking thread: publishes the current time (never behind the published one) and, once per
     * {@link #IDLE_NANOS}, checks for readers.
     *
     * @return whether to tick again in {@link #TICK_NANOS}; false when the clock went (or is) stale: the thread ends
     */
    boolean tick() {
        long nanos = source.nanoTime();
        boolean check = nanos - checkedAtNanos >= IDLE_NANOS;
        while (true) {
            long w = word;
            if (w == STALE) {
                return false;
            }
            long published = w >> 1;
            long read = w & 1;
            if (check && read == 0) {
                // Nobody read for a second: stop. The floor goes first so a reader who sees STALE sees it too.
                floorMicros = published;
                if (WORD.compareAndSet(this, w, STALE)) {
                    return false;
                }
                continue;
            }
            long micros = Math.max(source.at(nanos), published);
            if (WORD.compareAndSet(this, w, micros << 1 | (check ? 0 : read))) {
                if (check) {
                    checkedAtNanos = nanos;
                }
                return true;
            }
        }
    }

    /** Whether no thread ticks the clock: the next read computes the time and calls {@code wake}. */
    boolean isStale() {
        return word == STALE;
    }

    /**
     * Makes the clock stale whatever it holds: the ticking thread's last act when it ends abnormally, and a reader's
     * when no thread could be started, so that readers compute the time themselves (and start a new thread) instead
     * of reading a value that nobody refreshes.
     */
    void stop() {
        while (true) {
            long w = word;
            if (w == STALE) {
                return;
            }
            floorMicros = w >> 1;
            if (WORD.compareAndSet(this, w, STALE)) {
                return;
            }
        }
    }

    /**
     * The daemon thread that ticks {@link #SYSTEM}: started by the read that finds the clock stale, ended once the
     * clock goes stale for want of readers, so that an idle application holds no thread (nor, through it, its class
     * loader). At most one runs: starting and ending both happen under the class's lock.
     */
    private static final class ClockThread {
        /** The running thread, or null; written under the class's lock. */
        private static Thread thread;

        private ClockThread() {}

        static synchronized void wake() {
            if (thread != null) {
                // Still running, possibly about to end: it checks for a fresh value under this lock before it does.
                return;
            }
            // No inherited thread-locals and no context loader: nothing of the first reader's stays reachable.
            Thread t = new Thread(null, ClockThread::run, "guard-clock", 0, false);
            t.setDaemon(true);
            t.setContextClassLoader(null);
            thread = t;
            try {
                t.start();
            } catch (RuntimeException | Error e) {
                thread = null;
                throw e;
            }
        }

        private static void run() {
            Thread self = Thread.currentThread();
            boolean idle = false;
            try {
                while (!idle) {
                    // An interrupt would make every park return at once; nothing here is interruptible work.
                    Thread.interrupted();
                    if (SYSTEM.tick()) {
                        LockSupport.parkNanos(TICK_NANOS);
                    } else {
                        idle = endIfStale(self);
                    }
                }
            } finally {
                if (!idle) {
                    // Only an error (out of memory) gets here. A frozen clock would stop every bucket's refill:
                    // forget this thread, then go stale, so the next read computes the time and starts a new one.
                    synchronized (ClockThread.class) {
                        if (thread == self) {
                            thread = null;
                        }
                    }
                    SYSTEM.stop();
                }
            }
        }

        /** Ends the thread unless a reader published a time after the clock went stale (and so did not start one). */
        private static synchronized boolean endIfStale(Thread self) {
            if (!SYSTEM.isStale()) {
                return false;
            }
            if (thread == self) {
                thread = null;
            }
            return true;
        }
    }
}
