package dev.guard.storage.redis;

import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
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
 * The arguments and replies of the Lua functions: each step is one argument, its text {@code "kind permits a b c"}
 * (the kind's one-letter code, then decimal numbers: the permits and the kind's parameters a, b, c as {@code
 * kinds.lua} documents them), and each outcome is an integer with three sentinels for what a Lua number cannot hold
 * exactly. One argument per step keeps a call's argument count, and the server's work to receive and convert it,
 * small; the server keeps the texts it has parsed, so the steps of a limit that repeats are not parsed again.
 */
final class LuaArgs {
    /** Arguments of {@code evaluate.lua} before its steps: now, the reply's form, the expiry margin. */
    static final int EVALUATE_HEADER = 3;

    /** Arguments of {@code refund.lua} before its steps: now, the expiry margin. */
    static final int REFUND_HEADER = 2;

    /** Arguments per step in {@code refund.lua}: the step's text, then the text before and after the commit. */
    static final int PER_REFUND = 3;

    /** 2^53: admitted with {@link Long#MAX_VALUE} remaining. */
    static final long UNLIMITED = 1L << 53;

    /**
     * -2^53-4: {@link Outcome#NEVER}. Not -2^53, which is the reply of a rejection whose wait is 2^53-1 microseconds
     * (a deadline of 2^53-1 read at time 0); a double holds -2^53-4 exactly.
     */
    static final long NEVER = -UNLIMITED - 4;

    /**
     * -2^53-2: rejected until {@link Long#MAX_VALUE} (a gate raised to it, a cooldown reading such a deadline); the
     * wait is {@code Long.MAX_VALUE - now}.
     */
    static final long SHUT = -UNLIMITED - 2;

    static final byte[] EMPTY = new byte[0];
    static final byte[] ONE_OUTCOME = ascii("i");
    static final byte[] OUTCOMES = ascii("m");
    static final byte[] JOURNAL = ascii("j");
    static final byte[] MAX = ascii("max");
    static final byte[] ADD = ascii("add");
    static final byte[] IS = ascii("is");

    private static final byte[] ZERO = ascii("0");

    private LuaArgs() {}

    static byte[] ascii(String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    /** {@code value} in decimal ASCII. */
    static byte[] number(long value) {
        if (value == 0) {
            return ZERO;
        }
        byte[] text = new byte[length(value)];
        write(text, text.length, value);
        return text;
    }

    /** A deadline: {@link Long#MAX_VALUE} (never) as {@code max}, others as decimal. */
    static byte[] deadline(long micros) {
        return micros == Long.MAX_VALUE ? MAX : number(micros);
    }

    /**
     * The text of {@code step}: its kind's code, then its permits and the kind's parameters a, b, c (0 where the kind
     * has none), separated by single spaces, in an array of exactly its length.
     */
    static byte[] step(Step step) {
        LimitSpec spec = step.spec();
        long p = step.permits();
        long a = 0;
        long b = 0;
        long c = 0;
        byte kind;
        if (spec instanceof TokenBucket t) {
            kind = 't';
            a = t.ticksPerMicro();
            b = t.ticksPerToken();
            c = t.capacity();
        } else if (spec instanceof FixedWindow f) {
            kind = 'f';
            a = f.limit();
            b = f.windowMicros();
        } else if (spec instanceof SlidingWindowLog l) {
            kind = 'l';
            a = l.limit();
            b = l.windowMicros();
        } else if (spec instanceof SlidingWindowCounter s) {
            kind = 'c';
            a = s.limit();
            b = s.buckets();
            c = s.bucketMicros();
        } else if (spec instanceof Cooldown d) {
            kind = 'd';
            a = d.periodMicros();
        } else if (spec instanceof DuplicateWindow w) {
            kind = 'w';
            a = w.capacity();
            b = w.windowMicros();
        } else if (spec instanceof Gate) {
            kind = 'g';
        } else if (spec instanceof Membership m) {
            kind = m.required() ? (byte) 'p' : (byte) 'a';
        } else {
            // LimitSpec is sealed: a new kind must be taught to kinds.lua and here.
            throw new IllegalArgumentException("spec " + spec + " has no Redis script");
        }
        int lp = length(p);
        int la = length(a);
        int lb = length(b);
        int lc = length(c);
        byte[] text = new byte[5 + lp + la + lb + lc];
        text[0] = kind;
        int end = 2 + lp;
        text[1] = ' ';
        write(text, end, p);
        text[end] = ' ';
        end += 1 + la;
        write(text, end, a);
        text[end] = ' ';
        end += 1 + lb;
        write(text, end, b);
        text[end] = ' ';
        end += 1 + lc;
        write(text, end, c);
        return text;
    }

    /** How many characters {@code value} takes in decimal, its minus sign included. */
    static int length(long value) {
        if (value < 0) {
            // Long.MIN_VALUE has no positive counterpart: its digits are Long.MAX_VALUE's, bar the last.
            return 1 + (value == Long.MIN_VALUE ? 19 : length(-value));
        }
        int digits = 1;
        for (long rest = value; rest >= 10; rest /= 10) {
            digits++;
        }
        return digits;
    }

    /** Writes {@code value} in decimal into {@code text}, its last digit just before {@code end}. */
    private static void write(byte[] text, int end, long value) {
        int at = end;
        // Negative digits, so that Long.MIN_VALUE needs no case of its own.
        long rest = value < 0 ? value : -value;
        do {
            text[--at] = (byte) ('0' - rest % 10);
            rest /= 10;
        } while (rest != 0);
        if (value < 0) {
            text[--at] = '-';
        }
    }

    /**
     * How far past now {@code kinds.lua} computes for {@code spec}, in micros: a deadline, a window's end or a ttl that
     * is now plus up to this much. Zero for kinds that never add to now: a token bucket works on elapsed time and the
     * level, gates and sets on deadlines that {@link RedisStorage} clamps.
     */
    static long reach(LimitSpec spec) {
        if (spec instanceof FixedWindow f) {
            return f.windowMicros();
        } else if (spec instanceof SlidingWindowLog l) {
            return l.windowMicros();
        } else if (spec instanceof SlidingWindowCounter s) {
            // A rejection waits and a state lives until the bucket after the counted span begins.
            return s.maxTtlMicros();
        } else if (spec instanceof Cooldown d) {
            return d.periodMicros();
        } else if (spec instanceof DuplicateWindow w) {
            return w.windowMicros();
        }
        return 0;
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
