package dev.guard.storage.memory;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A token bucket in GCRA form, so that {@link #tryAcquire} is one compare-and-set on one long and allocates nothing.
 *
 * <p>The reference state {@code [level, last]} (level in ticks) is held as the theoretical arrival time {@code tat
 * = last * ticksPerMicro + capacityTicks - level}, in ticks, and {@code last}. The reference freezes the level while
 * the clock is before {@code last}, so the level at {@code now} is {@code capacityTicks - (tat - e * ticksPerMicro)}
 * with {@code e = max(now, last)}; the state expires (equals absent) once {@code tat <= now * ticksPerMicro}, that
 * is at {@code ceil(tat / ticksPerMicro)}, which is exactly the reference's {@code now + ttl} after a commit.
 *
 * <p>{@code tat} is the linearization point: every commit is a compare-and-set on it. {@code last} is published
 * after the compare-and-set, so a reader racing a commit may see an older {@code last}; every value ever written to
 * it is at most the true {@code last} of every later state, so such a reader sees the bucket refilled up to its own
 * {@code now} instead of up to the newer {@code last}: never more permissive, and exact whenever calls do not
 * overlap (which the differential test checks). {@code tat} itself is always exact.
 *
 * <p>Only buckets with {@code ticksPerMicro <= 1021} get this holder, and it serves times in [0, 2^53): then {@code
 * now * ticksPerMicro + 2 * capacityTicks} stays below 2^63. Other buckets and times use {@link ArrayHolder}.
 */
final class BucketHolder extends Holder {
    /** The largest ticks per microsecond whose GCRA arithmetic cannot overflow for times below 2^53. */
    static final long MAX_TICKS_PER_MICRO = 1021;

    private static final VarHandle TAT;
    private static final VarHandle LAST;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            TAT = lookup.findVarHandle(BucketHolder.class, "tat", long.class);
            LAST = lookup.findVarHandle(BucketHolder.class, "last", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final TokenBucket spec;

    /** The theoretical arrival time in ticks, or a sentinel; accessed through {@link #TAT}. */
    private volatile long tat = ABSENT;

    /** A lower bound of the reference's {@code last} (exact between calls); accessed through {@link #LAST}. */
    private long last;

    BucketHolder(TokenBucket spec) {
        this.spec = spec;
    }

    /** Whether {@code spec} may use this representation at all. */
    static boolean eligible(TokenBucket spec) {
        return spec.ticksPerMicro() <= MAX_TICKS_PER_MICRO;
    }

    @Override
    LimitSpec writer() {
        return spec;
    }

    @Override
    boolean accepts(LimitSpec other, long nowMicros) {
        return (other == spec || spec.equals(other)) && nowMicros >= 0 && nowMicros < FAST_TIME_LIMIT;
    }

    @Override
    long tryAcquire(LimitSpec other, long permits, long nowMicros) {
        if ((other != spec && !spec.equals(other)) || nowMicros < 0 || nowMicros >= FAST_TIME_LIMIT) {
            return SLOW;
        }
        TokenBucket b = spec;
        long rate = b.ticksPerMicro();
        long capacityTicks = b.capacityTicks();
        boolean never = permits > b.capacity();
        long need = never ? 0 : permits * b.ticksPerToken();
        long nowTicks = nowMicros * rate;
        while (true) {
            // last before tat: a last published by a commit is then never newer than the tat read after it.
            long lastSeen = (long) LAST.getAcquire(this);
            long current = (long) TAT.getVolatile(this);
            if (current == DEAD || current == BUSY) {
                return SLOW;
            }
            boolean present = current != ABSENT && current > nowTicks;
            long e = present ? Math.max(nowMicros, lastSeen) : nowMicros;
            long level = present ? capacityTicks - (current - e * rate) : capacityTicks;
            if (never || level < need) {
                // Rejected: nothing commits, but an expired state is dropped as the reference drops it on reading.
                if (present || current == ABSENT || TAT.compareAndSet(this, current, ABSENT)) {
                    return never ? Outcome.NEVER : Outcome.rejected(ceilDiv(need - level, rate));
                }
                continue;
            }
            long outcome = Outcome.admitted((level - need) / b.ticksPerToken());
            if (need > 0) {
                long next = (present ? current : nowTicks) + need;
                if (TAT.compareAndSet(this, current, next)) {
                    LAST.setRelease(this, e);
                    return outcome;
                }
            } else if (!present) {
                // A look at an absent or expired bucket: the reference keeps (or makes) it absent.
                if (current == ABSENT || TAT.compareAndSet(this, current, ABSENT)) {
                    return outcome;
                }
            } else if (level == capacityTicks) {
                // Full at a last ahead of now: the reference's commit of zero leaves ttl 0, so the state goes.
                if (TAT.compareAndSet(this, current, ABSENT)) {
                    return outcome;
                }
            } else if (nowMicros <= lastSeen || LAST.compareAndSet(this, lastSeen, nowMicros)) {
                // A look moves last forward like the reference's commit of zero permits. Compare-and-set, not a
                // plain write: a commit that published a newer last in between must not be overwritten.
                return outcome;
            }
        }
    }

    @Override
    long[] enter(long nowMicros) {
        long current;
        do {
            current = (long) TAT.getVolatile(this);
        } while (!TAT.compareAndSet(this, current, BUSY));
        if (current == ABSENT || ceilDiv(current, spec.ticksPerMicro()) <= nowMicros) {
            return null;
        }
        long lastSeen = (long) LAST.getAcquire(this);
        return toReference(current, lastSeen);
    }

    @Override
    void exit(long[] state, LimitSpec committer, long nowMicros) {
        if (state == null || (committer != null && spec.ttlMicros(state, nowMicros) <= 0)) {
            TAT.setVolatile(this, ABSENT);
            return;
        }
        LAST.setRelease(this, state[1]);
        TAT.setVolatile(this, state[1] * spec.ticksPerMicro() + spec.capacityTicks() - state[0]);
    }

    private long[] toReference(long current, long lastSeen) {
        return new long[] {spec.capacityTicks() - (current - lastSeen * spec.ticksPerMicro()), lastSeen};
    }

    @Override
    long[] raw() {
        long current = (long) TAT.getVolatile(this);
        return current == ABSENT || current == DEAD ? null : toReference(current, (long) LAST.getAcquire(this));
    }

    @Override
    long rawExpiresAtMicros() {
        long current = (long) TAT.getVolatile(this);
        return current == ABSENT || current == DEAD ? 0 : ceilDiv(current, spec.ticksPerMicro());
    }

    @Override
    void kill() {
        long current;
        do {
            current = (long) TAT.getVolatile(this);
        } while (!TAT.compareAndSet(this, current, DEAD));
    }

    @Override
    boolean isDead() {
        return (long) TAT.getVolatile(this) == DEAD;
    }

    @Override
    long lifetimeNanos(long currentNanos) {
        return saturatedAdd(microsToNanos(spec.maxTtlMicros()), CallerClock.SLACK_NANOS);
    }

    static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }
}
