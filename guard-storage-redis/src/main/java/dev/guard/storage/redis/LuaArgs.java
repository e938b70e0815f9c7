package dev.guard.storage.redis;

import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Step;
import java.nio.charset.StandardCharsets;

/**
 * The arguments and replies of the Lua functions: each step is five values (kind, permits, and the kind's parameters
 * a, b, c as {@code kinds.lua} documents them), and each outcome is an integer with three sentinels for what a Lua
 * number cannot hold exactly.
 */
final class LuaArgs {
    /** Arguments of {@code evaluate.lua} before its steps: now, the reply's form, the expiry margin. */
    static final int EVALUATE_HEADER = 3;

    /** Arguments of {@code refund.lua} before its steps: now, the expiry margin. */
    static final int REFUND_HEADER = 2;

    /** Arguments per step in {@code evaluate.lua}. */
    static final int PER_STEP = 5;

    /** Arguments per step in {@code refund.lua}: a step's five, then the text before and after the commit. */
    static final int PER_REFUND = PER_STEP + 2;

    /** 2^53: admitted with {@link Long#MAX_VALUE} remaining. */
    static final long UNLIMITED = 1L << 53;

    /** -2^53: {@link Outcome#NEVER}. */
    static final long NEVER = -UNLIMITED;

    /** -2^53-2: rejected by a gate raised to {@link Long#MAX_VALUE}; the wait is {@code Long.MAX_VALUE - now}. */
    static final long SHUT = -UNLIMITED - 2;

    static final byte[] EMPTY = new byte[0];
    static final byte[] ONE_OUTCOME = ascii("i");
    static final byte[] OUTCOMES = ascii("m");
    static final byte[] JOURNAL = ascii("j");
    static final byte[] MAX = ascii("max");
    static final byte[] ADD = ascii("add");
    static final byte[] IS = ascii("is");

    private static final byte[] ZERO = ascii("0");
    private static final byte[] TOKEN_BUCKET = ascii("t");
    private static final byte[] FIXED_WINDOW = ascii("f");
    private static final byte[] SLIDING_LOG = ascii("l");
    private static final byte[] SLIDING_COUNTER = ascii("c");
    private static final byte[] COOLDOWN = ascii("d");
    private static final byte[] GATE = ascii("g");
    private static final byte[] MUST_BE_ABSENT = ascii("a");
    private static final byte[] MUST_BE_PRESENT = ascii("p");

    private LuaArgs() {}

    static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    static byte[] number(long value) {
        return value == 0 ? ZERO : ascii(Long.toString(value));
    }

    /** A deadline: {@link Long#MAX_VALUE} (never) as {@code max}, others as decimal. */
    static byte[] deadline(long micros) {
        return micros == Long.MAX_VALUE ? MAX : number(micros);
    }

    /** Writes the five values of {@code step} into {@code args} from {@code at}. */
    static void put(byte[][] args, int at, Step step) {
        LimitSpec spec = step.spec();
        args[at + 1] = number(step.permits());
        byte[] a = ZERO;
        byte[] b = ZERO;
        byte[] c = ZERO;
        byte[] kind;
        if (spec instanceof TokenBucket t) {
            kind = TOKEN_BUCKET;
            a = number(t.ticksPerMicro());
            b = number(t.ticksPerToken());
            c = number(t.capacity());
        } else if (spec instanceof FixedWindow f) {
            kind = FIXED_WINDOW;
            a = number(f.limit());
            b = number(f.windowMicros());
        } else if (spec instanceof SlidingWindowLog l) {
            kind = SLIDING_LOG;
            a = number(l.limit());
            b = number(l.windowMicros());
        } else if (spec instanceof SlidingWindowCounter s) {
            kind = SLIDING_COUNTER;
            a = number(s.limit());
            b = number(s.buckets());
            c = number(s.bucketMicros());
        } else if (spec instanceof Cooldown d) {
            kind = COOLDOWN;
            a = number(d.periodMicros());
        } else if (spec instanceof Gate) {
            kind = GATE;
        } else if (spec instanceof Membership m) {
            kind = m.required() ? MUST_BE_PRESENT : MUST_BE_ABSENT;
        } else {
            // LimitSpec is sealed: a new kind must be taught to kinds.lua and here.
            throw new IllegalArgumentException("spec " + spec + " has no Redis script");
        }
        args[at] = kind;
        args[at + 2] = a;
        args[at + 3] = b;
        args[at + 4] = c;
    }

    /** Whether a step of {@code spec} writes its state when its batch is admitted (gates and sets only read). */
    static boolean commits(LimitSpec spec) {
        return !(spec instanceof Gate || spec instanceof Membership);
    }

    /** The {@link Outcome} that a script's reply stands for. */
    static long outcome(long reply, long nowMicros) {
        if (reply == UNLIMITED) {
            return Long.MAX_VALUE;
        }
        if (reply == NEVER) {
            return Outcome.NEVER;
        }
        if (reply == SHUT) {
            return Outcome.rejected(Long.MAX_VALUE - nowMicros);
        }
        return reply;
    }

    /** The deadline that {@code gate.lua} answers. */
    static long deadlineOf(long reply) {
        return reply == UNLIMITED ? Long.MAX_VALUE : reply;
    }
}
