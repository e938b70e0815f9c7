package dev.guard.internal;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A circuit breaker on the caller's clock: after {@code threshold} consecutive failures it opens for {@code
 * openMicros}, during which {@link #allows} answers false at the cost of two volatile reads; then it lets exactly one
 * probe through (half-open) and closes on that probe's success or opens again on its failure. A clock set back by more
 * than an open period counts as past the deadline. Thread-safe, lock-free.
 */
public final class Breaker {
    private final int threshold;
    private final long openMicros;
    private final AtomicInteger failures = new AtomicInteger();
    /** 0 when closed; otherwise the time until which calls are refused. */
    private final AtomicLong openUntil = new AtomicLong();

    /**
     * Creates a closed breaker.
     *
     * @throws IllegalArgumentException if {@code threshold} or {@code openMicros} is not positive
     */
    public Breaker(int threshold, long openMicros) {
        if (threshold <= 0) {
            throw new IllegalArgumentException("breaker threshold must be positive but was " + threshold);
        }
        if (openMicros <= 0) {
            throw new IllegalArgumentException("breaker open duration must be positive but was " + openMicros + "us");
        }
        this.threshold = threshold;
        this.openMicros = openMicros;
    }

    /**
     * Whether the breaker is closed: calls go to the storage without a probe. One volatile read; false when open or
     * half-open, where {@link #allows} decides.
     */
    public boolean closed() {
        return openUntil.get() == 0;
    }

    /** Whether a call may go to the storage at {@code nowMicros}; a true answer in the half-open state is the probe. */
    public boolean allows(long nowMicros) {
        long until = openUntil.get();
        if (until == 0) {
            return true;
        }
        // Half-open: the first caller past the deadline re-arms it and becomes the one probe.
        return (nowMicros >= until || wentBack(until, nowMicros))
                && openUntil.compareAndSet(until, openUntil(nowMicros));
    }

    /**
     * Whether {@code nowMicros} is more than an open period before the breaker opened (or let its last probe
     * through), for a deadline {@code until}: the clock was set back (a wall clock stepped back by an hour would
     * otherwise keep the storage refused for that hour). A caller whose clock is merely a little behind another's
     * (read just before another thread re-armed the breaker) is not taken for one, and lets no second probe through.
     */
    private boolean wentBack(long until, long nowMicros) {
        if (until == Long.MAX_VALUE) {
            return false; // open for ever, or until the end of time
        }
        long opened = until - openMicros;
        return opened >= Long.MIN_VALUE + openMicros && nowMicros < opened - openMicros;
    }

    /** Records a successful call: the breaker closes. */
    public void success() {
        if (failures.get() != 0) {
            failures.set(0);
        }
        if (openUntil.get() != 0) {
            openUntil.set(0);
        }
    }

    /**
     * Records a failed call that began at {@code nowMicros}. A call that began before the breaker last opened or let
     * its probe through (one that ran into a timeout meanwhile) never brings the deadline forward: that would let
     * further probes through while the first is still under way.
     */
    public void failure(long nowMicros) {
        if (failures.incrementAndGet() >= threshold) {
            long until = openUntil(nowMicros);
            openUntil.accumulateAndGet(until, (current, next) -> current == 0 ? next : Math.max(current, next));
        }
    }

    /**
     * When a breaker opened at {@code nowMicros} lets the next probe through: saturated, so that a huge open duration
     * means never rather than a time in the past; never 0, which means closed.
     */
    private long openUntil(long nowMicros) {
        long until = nowMicros + openMicros;
        if (((nowMicros ^ until) & (openMicros ^ until)) < 0) {
            until = Long.MAX_VALUE;
        }
        return until == 0 ? 1 : until;
    }

    /** Whether the breaker is open (refusing calls) at {@code nowMicros}. */
    public boolean isOpen(long nowMicros) {
        long until = openUntil.get();
        return until != 0 && nowMicros < until && !wentBack(until, nowMicros);
    }

    /**
     * The wait from {@code nowMicros} until the breaker next lets a call try the storage: 0 when it would let one
     * through now (closed, or its probe is due), {@link Long#MAX_VALUE} when the wait does not fit a long (a breaker
     * open until the end of time, read on a clock before 1970). Changes nothing: a probe is let through only by
     * {@link #allows}.
     */
    public long waitMicros(long nowMicros) {
        long until = openUntil.get();
        if (until == 0 || nowMicros >= until || wentBack(until, nowMicros)) {
            return 0;
        }
        return Saturated.until(until, nowMicros);
    }
}
