package dev.guard.storage.jdbc;

import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;

/** How a step travels to PostgreSQL's evaluate function: five numbers, as postgresql.sql documents. */
final class SpecCodes {
    static final int STRIDE = 5;

    private SpecCodes() {}

    /** Writes {@code [kind, permits, p1, p2, p3]} of one step into {@code out} at {@code at}. */
    static void encode(LimitSpec spec, long permits, long[] out, int at) {
        long kind;
        long p1 = 0;
        long p2 = 0;
        long p3 = 0;
        if (spec instanceof TokenBucket b) {
            kind = 1;
            p1 = b.capacity();
            p2 = b.ticksPerMicro();
            p3 = b.ticksPerToken();
        } else if (spec instanceof FixedWindow w) {
            kind = 2;
            p1 = w.limit();
            p2 = w.windowMicros();
        } else if (spec instanceof SlidingWindowLog w) {
            kind = 3;
            p1 = w.limit();
            p2 = w.windowMicros();
        } else if (spec instanceof SlidingWindowCounter w) {
            kind = 4;
            p1 = w.limit();
            p2 = w.bucketMicros();
            p3 = w.buckets();
        } else if (spec instanceof Cooldown c) {
            kind = 5;
            p1 = c.periodMicros();
        } else if (spec instanceof DuplicateWindow w) {
            kind = 9; // the permits are the item, which JdbcStorage checked before encoding
            p1 = w.windowMicros();
            p2 = w.capacity();
        } else if (spec instanceof Gate) {
            kind = 6;
        } else if (spec instanceof Membership m) {
            kind = m.required() ? 8 : 7;
        } else {
            throw new IllegalArgumentException("spec " + spec + " is not a kind the jdbc storage knows");
        }
        out[at] = kind;
        out[at + 1] = permits;
        out[at + 2] = p1;
        out[at + 3] = p2;
        out[at + 4] = p3;
    }

    /** Whether the step's state changes when a batch commits; gates and memberships are checks only. */
    static boolean commits(LimitSpec spec) {
        return !(spec instanceof Gate) && !(spec instanceof Membership);
    }
}
