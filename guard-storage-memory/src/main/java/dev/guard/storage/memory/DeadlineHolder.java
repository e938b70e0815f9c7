package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import dev.guard.limit.Cooldown;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;

/**
 * State that is one deadline, {@code [untilMicros]}: a cooldown, a gate, or a set membership. All three read it the
 * same way (live while {@code now < until}, which is also when the reference expires it), so any of them is
 * answered with one read and, for a cooldown, one compare-and-set: of the holder's word while it is its subject's only
 * key, of its group's otherwise (a gate's or set's read of a live or absent deadline in a group needs none).
 *
 * <p>A cooldown changes its deadline in place, so the cache keeps the holder for two periods after each extension.
 * Gates and memberships change only through {@link MemoryStorage#raiseGate} and {@link MemoryStorage#addMember},
 * which replace the holder inside the cache's atomic update: the cache keeps them until their absolute deadline.
 */
final class DeadlineHolder extends Holder {
    private final LimitSpec spec;

    /**
     * The deadline this holder was made with. A gate's or membership's word only ever goes from it to {@link #ABSENT}
     * (or to {@link #BUSY} while a caller owns the holder, and {@link #DEAD}), so the cache's lifetime is read here:
     * read from the word, an owned holder would have asked for none and been evicted before its deadline.
     */
    private final long deadline;

    /**
     * A holder of {@code until} written by {@code spec} (a {@link Cooldown}, {@link Gate#INSTANCE} or a {@link
     * Membership}); {@code until} must be {@link #ABSENT} or {@linkplain #holds held}.
     */
    DeadlineHolder(String scope, LimitSpec spec, long until, long clockMicros) {
        super(scope, until);
        this.spec = spec;
        this.deadline = until;
        made(clockMicros);
    }

    @Override
    Holder copy() {
        return new DeadlineHolder(scope, spec, deadline, 0);
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
        return spec instanceof Cooldown && (other == spec || spec.equals(other)) && fastTime(nowMicros);
    }

    private static boolean readsDeadline(LimitSpec spec) {
        return spec instanceof Gate || spec instanceof Membership;
    }

    @Override
    long tryAcquire(LimitSpec other, long permits, long nowMicros) {
        if (!readsDeadline(other) && !accepts(other, nowMicros)) {
            return SLOW;
        }
        while (true) {
            long word = word();
            if (word == DEAD || word == BUSY) {
                return SLOW;
            }
            long outcome = peek(word, other, permits, nowMicros);
            long next = Outcome.isAdmitted(outcome) && !readsDeadline(other)
                    ? commit(word, other, permits, nowMicros)
                    : settle(word, nowMicros);
            if (next == word || casWord(word, next)) {
                return outcome;
            }
        }
    }

    private static boolean live(long word, long nowMicros) {
        return word != ABSENT && nowMicros < word;
    }

    /** The reference outcome of a cooldown, gate or membership on {@code [word]}; any spec of those kinds reads it. */
    @Override
    long peek(long word, LimitSpec other, long permits, long nowMicros) {
        boolean live = live(word, nowMicros);
        if (other instanceof Membership m) {
            if (live == m.required()) {
                return Outcome.admitted(Long.MAX_VALUE);
            }
            if (m.required() || word == Long.MAX_VALUE) {
                return Outcome.NEVER;
            }
            return Outcome.rejected(Saturated.until(word, nowMicros));
        }
        if (other instanceof Gate || other instanceof Cooldown) {
            if (live) {
                return Outcome.rejected(Saturated.until(word, nowMicros));
            }
            return other instanceof Gate ? Outcome.admitted(Long.MAX_VALUE) : Outcome.admitted(permits == 0 ? 1 : 0);
        }
        // Another kind reading a deadline's key: the reference function itself.
        return other.evaluate(live ? new long[] {word} : null, nowMicros, permits);
    }

    @Override
    long commit(long word, LimitSpec other, long permits, long nowMicros) {
        // Only an admitted cooldown of this holder's spec commits, and it admits only when the deadline passed.
        return permits == 0 ? ABSENT : nowMicros + ((Cooldown) other).periodMicros();
    }

    @Override
    long settle(long word, long nowMicros) {
        return live(word, nowMicros) ? word : ABSENT;
    }

    @Override
    long[] raw(long word) {
        return word == ABSENT || word == DEAD || word == BUSY ? null : new long[] {word};
    }

    @Override
    long expiresAtMicros(long word) {
        return word;
    }

    /** The deadline of a gate for {@link MemoryStorage#raiseGate}: present state written by a gate, else MIN. */
    long gateDeadline(long word) {
        return spec instanceof Gate && word != ABSENT ? word : Long.MIN_VALUE;
    }

    @Override
    long intervalMicros() {
        return spec instanceof Cooldown c ? Saturated.plus(c.periodMicros(), CallerClock.SLACK_MICROS) : Long.MAX_VALUE;
    }

    @Override
    long stateLifetimeNanos(long currentNanos, long intervals) {
        if (spec instanceof Cooldown) {
            return Saturated.times(microsToNanos(intervalMicros()), intervals);
        }
        if (deadline == Long.MAX_VALUE) {
            return Long.MAX_VALUE;
        }
        return Math.max(0, microsToNanos(cacheExpiryMicros(deadline)) - currentNanos);
    }
}
