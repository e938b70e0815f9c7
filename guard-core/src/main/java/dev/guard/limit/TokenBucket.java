package dev.guard.limit;

import java.time.Duration;

/**
 * A token bucket: holds up to {@code capacity} tokens, refills {@code refillTokens} every {@code refillPeriod}
 * greedily (continuously, not in steps), and admits a request when it holds enough tokens. A new or expired
 * bucket is full, so bursts up to {@code capacity} pass at once.
 *
 * <p>Arithmetic is exact integer arithmetic: time is scaled into <em>ticks</em> so that one microsecond adds
 * {@link #ticksPerMicro()} ticks and one token costs {@link #ticksPerToken()} ticks (the rate reduced by its
 * greatest common divisor), so no rounding error ever accumulates. State: {@code [level, lastMicros]}, the level
 * in ticks. {@code capacity * ticksPerToken} must stay below 2<sup>53</sup>.
 *
 * <p>A bucket holds at most its capacity, whatever its state says: a level above it (another bucket's, under the
 * same key, with fewer ticks to a token: a deploy that raised the rate) reads as full. A full bucket is an absent one:
 * its ttl is 0, and a commit on it starts from now, even if its last update lies ahead (a clock ahead of this one).
 *
 * <p>The same semantics in GCRA form: a bucket with level {@code L} at time {@code t} has a theoretical arrival
 * time of {@code t * ticksPerMicro + capacityTicks - L} ticks.
 */
public final class TokenBucket implements LimitSpec {
    private final long capacity;
    private final long refillTokens;
    private final Duration refillPeriod;
    private final long ticksPerMicro;
    private final long ticksPerToken;
    private final long capacityTicks;

    /**
     * Creates a bucket with {@code capacity} tokens refilled at {@code refillTokens} per {@code refillPeriod}.
     *
     * @throws IllegalArgumentException if a value is not positive, {@code refillPeriod} is not a whole number of
     *     microseconds, or the bucket cannot be evaluated exactly
     */
    public TokenBucket(long capacity, long refillTokens, Duration refillPeriod) {
        this.capacity = Checks.positive("capacity", capacity);
        this.refillTokens = Checks.positive("refillTokens", refillTokens);
        long periodMicros = Checks.positiveMicros("refillPeriod", refillPeriod);
        this.refillPeriod = refillPeriod;
        long gcd = gcd(refillTokens, periodMicros);
        this.ticksPerMicro = refillTokens / gcd;
        this.ticksPerToken = periodMicros / gcd;
        if (ticksPerMicro >= EXACT_LIMIT) {
            throw new IllegalArgumentException("refillTokens " + refillTokens + " per " + refillPeriod
                    + " is 2^53 tokens per microsecond or more, which no storage evaluates exactly; lower the refill");
        }
        // Divide rather than multiply: the product can wrap past 2^63 into a negative long.
        if (capacity > (EXACT_LIMIT - 1) / ticksPerToken) {
            throw new IllegalArgumentException("capacity " + capacity + " with a refill of " + refillTokens + " per "
                    + refillPeriod + " needs more than 2^53 ticks; lower the capacity or use a shorter period");
        }
        this.capacityTicks = capacity * ticksPerToken;
    }

    /** The most tokens the bucket holds, and so the largest burst. */
    public long capacity() {
        return capacity;
    }

    /** Tokens added per {@link #refillPeriod()}. */
    public long refillTokens() {
        return refillTokens;
    }

    /** The period over which {@link #refillTokens()} are added. */
    public Duration refillPeriod() {
        return refillPeriod;
    }

    /** A bucket of {@code capacity} tokens that refills completely over {@code period}: {@code capacity/period}. */
    public static TokenBucket of(long capacity, Duration period) {
        return new TokenBucket(capacity, capacity, period);
    }

    /** Ticks added per microsecond: the refill rate's numerator after reduction. */
    public long ticksPerMicro() {
        return ticksPerMicro;
    }

    /** Ticks one token costs: the refill rate's denominator after reduction. */
    public long ticksPerToken() {
        return ticksPerToken;
    }

    /** The level of a full bucket in ticks. */
    public long capacityTicks() {
        return capacityTicks;
    }

    @Override
    public String kind() {
        return "token_bucket";
    }

    /**
     * {@code state} unless another limit wrote it: of another shape, or updated more than {@link
     * LimitSpec#MAX_LEAD_MICROS} after now. Such state reads as absent, a full bucket.
     */
    private static long[] undated(long[] state, long nowMicros) {
        state = Checks.shaped(state, 2);
        return state != null && Checks.dated(state[1], nowMicros) ? null : state;
    }

    /**
     * The level in ticks at {@code nowMicros}: refilled since the last update, capped at capacity. A level above
     * capacity (another bucket's, with fewer ticks to a token, under the same key) is a full bucket too.
     *
     * <p>A full bucket is a new one, whatever its last update: its ttl is 0, and a commit on it starts from now rather
     * than from a last update that a clock ahead of this one wrote.
     */
    public long level(long[] state, long nowMicros) {
        state = undated(state, nowMicros);
        return state == null ? capacityTicks : refilled(state, nowMicros);
    }

    /** The level of a state of this shape at {@code nowMicros}, at most capacity. */
    private long refilled(long[] state, long nowMicros) {
        long cap = capacityTicks;
        long level = Math.min(state[0], cap);
        long elapsed = nowMicros - state[1];
        if (elapsed <= 0) {
            return level;
        }
        long rate = ticksPerMicro;
        // Compare before multiplying so that a long idle gap cannot overflow.
        return elapsed >= ceilDiv(cap - level, rate) ? cap : level + elapsed * rate;
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = undated(state, nowMicros);
        Checks.permits(permits);
        if (permits > capacity) {
            return Outcome.NEVER;
        }
        long perToken = ticksPerToken;
        long level = state == null ? capacityTicks : refilled(state, nowMicros);
        long need = permits * perToken;
        if (level >= need) {
            return Outcome.admitted((level - need) / perToken);
        }
        // A clock that went backwards leaves lastMicros ahead of now, and refill resumes only from there (a bucket
        // that is not full, as one that rejects is not).
        long ahead = state == null ? 0 : Math.max(0, state[1] - nowMicros);
        return Outcome.rejected(ahead + ceilDiv(need - level, ticksPerMicro));
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = undated(state, nowMicros);
        long level = state == null ? capacityTicks : refilled(state, nowMicros);
        long left = level - permits * ticksPerToken;
        if (level == capacityTicks) {
            // Absent or full: a new bucket, starting now.
            return new long[] {left, nowMicros};
        }
        state[0] = left;
        state[1] = Math.max(state[1], nowMicros);
        return state;
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = undated(state, nowMicros);
        long level = state == null ? capacityTicks : refilled(state, nowMicros);
        if (level == capacityTicks) {
            return 0;
        }
        // A clock that went backwards leaves lastMicros ahead of now: keep the state until then too.
        return Math.max(0, state[1] - nowMicros) + ceilDiv(capacityTicks - level, ticksPerMicro);
    }

    @Override
    public long maxTtlMicros() {
        return ceilDiv(capacityTicks, ticksPerMicro);
    }

    static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }

    static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenBucket b
                && b.capacity == capacity
                && b.ticksPerMicro == ticksPerMicro
                && b.ticksPerToken == ticksPerToken;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(capacity) * 31 * 31 + Long.hashCode(ticksPerMicro) * 31 + Long.hashCode(ticksPerToken);
    }

    @Override
    public String toString() {
        return "TokenBucket[capacity=" + capacity + ", refill=" + refillTokens + "/" + refillPeriod + "]";
    }
}
