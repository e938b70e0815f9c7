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
 * is at {@code ceil(tat / ticksPerMicro)}, which is exactly the reference's {@code now + ttl} after a commit. A
 * commit at {@code e} moves {@code tat} to {@code max(tat, now * ticksPerMicro) + permits * ticksPerToken}.
 *
 * <p>{@code tat} is the linearization point: every commit is a compare-and-set on it. {@code last} is published
 * after it, so a reader racing a commit may see an older {@code last}; every value ever written to it is at most the
 * true {@code last} of every later state, so such a reader sees the bucket refilled up to its own {@code now}
 * instead of up to the newer {@code last}: never more permissive, and exact whenever calls do not overlap (which the
 * differential test checks). {@code tat} itself is always exact.
 *
 * <p>Only buckets with {@code ticksPerMicro <= 1021} get this holder, and its arithmetic runs for times in [0,
 * 2^53): then {@code now * ticksPerMicro + 2 * capacityTicks} stays below 2^63. Other buckets and times use {@link
 * ArrayHolder}.
 */
final class BucketHolder extends PackedHolder<TokenBucket> {
    /** The largest ticks per microsecond whose GCRA arithmetic cannot overflow for times below 2^53. */
    static final long MAX_TICKS_PER_MICRO = 1021;

    private static final VarHandle LAST;

    static {
        try {
            LAST = MethodHandles.lookup().findVarHandle(BucketHolder.class, "last", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** A lower bound of the reference's {@code last} (exact between calls); accessed through {@link #LAST}. */
    private long last;

    /** An absent bucket; its state word is the theoretical arrival time in ticks. */
    BucketHolder(String scope, TokenBucket spec, long clockMicros) {
        super(scope, spec);
        made(clockMicros);
    }

    @Override
    Holder copy() {
        BucketHolder copy = new BucketHolder(scope, spec, 0);
        copy.last = (long) LAST.getAcquire(this);
        return copy;
    }

    /** Whether {@code spec} may use this representation at all. */
    static boolean eligible(TokenBucket spec) {
        return spec.ticksPerMicro() <= MAX_TICKS_PER_MICRO;
    }

    // The reference semantics in GCRA form, for this holder's spec and a time in the fast range. A word that is
    // ABSENT or expired reads as a full bucket whose last update is now.

    private static boolean present(long word, long nowTicks) {
        return word != ABSENT && word > nowTicks;
    }

    /**
     * Whether a present state's last update lies more than {@link LimitSpec#MAX_LEAD_MICROS} after now: the
     * reference reads it as absent (a full bucket), and a commit replaces it.
     */
    private static boolean dated(long lastSeen, long nowMicros) {
        return lastSeen > nowMicros + LimitSpec.MAX_LEAD_MICROS;
    }

    /** Whether {@code word} is state that counts at now: present and not dated. */
    private static boolean counts(long word, long lastSeen, long nowMicros, long nowTicks) {
        return present(word, nowTicks) && !dated(lastSeen, nowMicros);
    }

    @Override
    long outcome(long word, long permits, long nowMicros) {
        return outcome(word, (long) LAST.getAcquire(this), permits, nowMicros);
    }

    private long outcome(long word, long lastSeen, long permits, long nowMicros) {
        if (permits > spec.capacity()) {
            return Outcome.NEVER;
        }
        long rate = spec.ticksPerMicro();
        long need = permits * spec.ticksPerToken();
        long level = level(word, lastSeen, nowMicros);
        if (level < need) {
            // Refill resumes only from last when the clock is behind it.
            long ahead = counts(word, lastSeen, nowMicros, nowMicros * rate) ? Math.max(0, lastSeen - nowMicros) : 0;
            return Outcome.rejected(ahead + ceilDiv(need - level, rate));
        }
        return Outcome.admitted(tokens(level - need, spec.ticksPerToken()));
    }

    /** Whole tokens in {@code ticks}: a 64-bit division only when a token is more than one tick. */
    private static long tokens(long ticks, long ticksPerToken) {
        return ticksPerToken == 1 ? ticks : ticks / ticksPerToken;
    }

    private long level(long word, long lastSeen, long nowMicros) {
        long rate = spec.ticksPerMicro();
        if (!counts(word, lastSeen, nowMicros, nowMicros * rate)) {
            return spec.capacityTicks();
        }
        return spec.capacityTicks() - (word - Math.max(nowMicros, lastSeen) * rate);
    }

    /** The word after an admitted step; {@code last} moves to {@code max(lastSeen, now)} unless the word is ABSENT. */
    private long next(long word, long lastSeen, long permits, long nowMicros) {
        long nowTicks = nowMicros * spec.ticksPerMicro();
        long need = permits * spec.ticksPerToken();
        if (!counts(word, lastSeen, nowMicros, nowTicks)) {
            return need == 0 ? ABSENT : nowTicks + need;
        }
        if (need == 0 && level(word, lastSeen, nowMicros) == spec.capacityTicks()) {
            // Full at a last ahead of now: the reference's commit leaves ttl 0, so the state goes.
            return ABSENT;
        }
        return word + need;
    }

    @Override
    long tryAcquire(LimitSpec other, long permits, long nowMicros) {
        if (!accepts(other, nowMicros)) {
            return SLOW;
        }
        TokenBucket bucket = spec;
        long rate = bucket.ticksPerMicro();
        long nowTicks = nowMicros * rate;
        long need = permits * bucket.ticksPerToken();
        // The common step first: a live bucket that holds the permits. Its word moves by need, its last to
        // max(now, last): a write that a clock reading the same value as the last call (a coarse clock, a burst)
        // can skip.
        boolean common = need > 0 && permits <= bucket.capacity();
        while (true) {
            // last before tat: a last published by a commit is then never newer than the tat read after it.
            long lastSeen = (long) LAST.getAcquire(this);
            long word = word();
            if (word == DEAD || word == BUSY) {
                return SLOW;
            }
            if (common && counts(word, lastSeen, nowMicros, nowTicks)) {
                long last = Math.max(nowMicros, lastSeen);
                long left = bucket.capacityTicks() - (word - last * rate) - need;
                if (left >= 0) {
                    if (!casWord(word, word + need)) {
                        continue;
                    }
                    if (last != lastSeen) {
                        LAST.setRelease(this, last);
                    }
                    return Outcome.admitted(tokens(left, bucket.ticksPerToken()));
                }
            }
            long outcome = outcome(word, lastSeen, permits, nowMicros);
            boolean present = counts(word, lastSeen, nowMicros, nowTicks);
            if (!Outcome.isAdmitted(outcome)) {
                // Nothing commits, but an expired state is dropped as the reference drops it on reading (a dated one
                // is not expired: it stays, as in the reference).
                if (word == ABSENT || present(word, nowTicks) || casWord(word, ABSENT)) {
                    return outcome;
                }
                continue;
            }
            long next = next(word, lastSeen, permits, nowMicros);
            if (next != word) {
                if (casWord(word, next)) {
                    if (next != ABSENT) {
                        LAST.setRelease(this, present ? Math.max(nowMicros, lastSeen) : nowMicros);
                    }
                    return outcome;
                }
            } else if (!present || nowMicros <= lastSeen || LAST.compareAndSet(this, lastSeen, nowMicros)) {
                // A look moves last forward like the reference's commit of zero permits. Compare-and-set, not a
                // plain write: a commit that published a newer last in between must not be overwritten.
                return outcome;
            }
        }
    }

    @Override
    long commit(long word, LimitSpec other, long permits, long nowMicros) {
        long lastSeen = (long) LAST.getAcquire(this);
        long next = next(word, lastSeen, permits, nowMicros);
        if (next != ABSENT) {
            LAST.setRelease(
                    this,
                    counts(word, lastSeen, nowMicros, nowMicros * spec.ticksPerMicro())
                            ? Math.max(nowMicros, lastSeen)
                            : nowMicros);
        }
        return next;
    }

    @Override
    long[] raw(long word) {
        if (word == ABSENT || word == DEAD || word == BUSY) {
            return null;
        }
        long lastSeen = (long) LAST.getAcquire(this);
        return new long[] {spec.capacityTicks() - (word - lastSeen * spec.ticksPerMicro()), lastSeen};
    }

    @Override
    long expiresAtMicros(long word) {
        return word == ABSENT ? Long.MIN_VALUE : ceilDiv(word, spec.ticksPerMicro());
    }

    @Override
    long intervalMicros() {
        // At least maxTtlMicros() = ceil(capacityTicks / ticksPerMicro) and at most twice it, without a division:
        // this runs on every use.
        long rate = spec.ticksPerMicro();
        long bound = ((spec.capacityTicks() - 1) >> (63 - Long.numberOfLeadingZeros(rate))) + 1;
        return bound + CallerClock.SLACK_MICROS;
    }

    static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }
}
