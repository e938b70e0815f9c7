package dev.guard.storage.memory;

import dev.guard.limit.Cooldown;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * State that is one deadline, {@code [untilMicros]}: a cooldown, a gate, or a set membership. All three read it the
 * same way (live while {@code now < until}, which is also when the reference expires it), so any of them is
 * answered with one read and, for a cooldown, one compare-and-set.
 *
 * <p>A cooldown changes its deadline in place, so the cache keeps the holder for the cooldown's period after each
 * read. Gates and memberships change only through {@link MemoryStorage#raiseGate} and {@link
 * MemoryStorage#addMember}, which replace the holder inside the cache's atomic update: the cache keeps them until
 * their absolute deadline.
 */
final class DeadlineHolder extends Holder {
    private static final VarHandle UNTIL;

    static {
        try {
            UNTIL = MethodHandles.lookup().findVarHandle(DeadlineHolder.class, "until", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final LimitSpec spec;

    /** The deadline in epoch microseconds, or a sentinel; accessed through {@link #UNTIL}. */
    private volatile long until;

    /**
     * A holder of {@code until} written by {@code spec} (a {@link Cooldown}, {@link Gate#INSTANCE} or a {@link
     * Membership}); {@code until} must not be one of the sentinels unless it is {@link #ABSENT}.
     */
    DeadlineHolder(LimitSpec spec, long until) {
        this.spec = spec;
        this.until = until;
    }

    /** Whether a deadline can be held here: the sentinels' values cannot. */
    static boolean holds(long until) {
        return until > BUSY;
    }

    @Override
    LimitSpec writer() {
        return spec;
    }

    @Override
    boolean accepts(LimitSpec other, long nowMicros) {
        return spec instanceof Cooldown && (other == spec || spec.equals(other)) && inRange(nowMicros);
    }

    private static boolean inRange(long nowMicros) {
        return nowMicros >= 0 && nowMicros < FAST_TIME_LIMIT;
    }

    @Override
    long tryAcquire(LimitSpec other, long permits, long nowMicros) {
        boolean commits = other instanceof Cooldown;
        if (commits ? !accepts(other, nowMicros) : !(other instanceof Gate || other instanceof Membership)) {
            return SLOW;
        }
        while (true) {
            long current = (long) UNTIL.getVolatile(this);
            if (current == DEAD || current == BUSY) {
                return SLOW;
            }
            boolean live = current != ABSENT && nowMicros < current;
            long outcome = outcome(other, live, current, permits, nowMicros);
            long next;
            if (commits && Outcome.isAdmitted(outcome) && permits > 0) {
                next = nowMicros + ((Cooldown) other).periodMicros();
            } else {
                // Nothing commits; an expired deadline is dropped as the reference drops it on reading.
                next = live ? current : ABSENT;
            }
            if (next == current || UNTIL.compareAndSet(this, current, next)) {
                return outcome;
            }
        }
    }

    /** The reference outcome of {@code spec} on the state {@code [until]} (or absent when not {@code live}). */
    private static long outcome(LimitSpec spec, boolean live, long until, long permits, long nowMicros) {
        if (spec instanceof Membership m) {
            if (live == m.required()) {
                return Outcome.admitted(Long.MAX_VALUE);
            }
            if (m.required() || until == Long.MAX_VALUE) {
                return Outcome.NEVER;
            }
            return Outcome.rejected(until - nowMicros);
        }
        if (live) {
            return Outcome.rejected(until - nowMicros);
        }
        return spec instanceof Gate ? Outcome.admitted(Long.MAX_VALUE) : Outcome.admitted(permits == 0 ? 1 : 0);
    }

    @Override
    long[] enter(long nowMicros) {
        long current;
        do {
            current = (long) UNTIL.getVolatile(this);
        } while (!UNTIL.compareAndSet(this, current, BUSY));
        return current == ABSENT || current <= nowMicros ? null : new long[] {current};
    }

    @Override
    void exit(long[] state, LimitSpec committer, long nowMicros) {
        // A committed cooldown deadline lies after now (its ttl is positive), so it is never a sentinel.
        UNTIL.setVolatile(this, state == null || (committer != null && state[0] <= nowMicros) ? ABSENT : state[0]);
    }

    @Override
    long[] raw() {
        long current = (long) UNTIL.getVolatile(this);
        return current == ABSENT || current == DEAD ? null : new long[] {current};
    }

    @Override
    long rawExpiresAtMicros() {
        long current = (long) UNTIL.getVolatile(this);
        return current == ABSENT || current == DEAD ? 0 : current;
    }

    @Override
    void kill() {
        long current;
        do {
            current = (long) UNTIL.getVolatile(this);
        } while (!UNTIL.compareAndSet(this, current, DEAD));
    }

    @Override
    boolean isDead() {
        return (long) UNTIL.getVolatile(this) == DEAD;
    }

    /** The deadline of a gate for {@link MemoryStorage#raiseGate}: present state written by a gate, else MIN. */
    long gateDeadline() {
        long current = (long) UNTIL.getVolatile(this);
        return spec instanceof Gate && current != ABSENT && current != DEAD ? current : Long.MIN_VALUE;
    }

    @Override
    long lifetimeNanos(long currentNanos) {
        if (spec instanceof Cooldown c) {
            return saturatedAdd(microsToNanos(c.periodMicros()), CallerClock.SLACK_NANOS);
        }
        long current = (long) UNTIL.getVolatile(this);
        if (current == Long.MAX_VALUE) {
            return Long.MAX_VALUE;
        }
        return Math.max(0, microsToNanos(Math.max(0, current)) - currentNanos);
    }

    @Override
    boolean extendsOnRead() {
        return spec instanceof Cooldown;
    }
}
