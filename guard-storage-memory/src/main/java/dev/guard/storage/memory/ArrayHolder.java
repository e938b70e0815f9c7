package dev.guard.storage.memory;

import dev.guard.internal.Saturated;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.SlidingWindowLog;

/**
 * State in the reference's own form, a {@code long[]} and its expiry, changed only by its owner through the reference
 * functions themselves: fixed and sliding windows, token buckets whose arithmetic could overflow the GCRA encoding,
 * and any key whose state was written by one kind of limit and is then used by another (which the reference allows,
 * and which this holder reproduces exactly).
 *
 * <p>Its state word is only a lock, 0 when free; the state fields are read and written only by the thread that owns
 * the holder, the word's compare-and-set and release publishing them. {@code horizonMicros} bounds how
 * long after the cache's clock a state committed here can live; a step whose spec could outlive it converts the key
 * to a new holder first, so that the cache's expiry, computed from the horizon, can never drop live state.
 *
 * <p>A holder converted from a {@link RecordHolder} (a limit step that may commit at a record's key) keeps the record
 * until a limit commits here, as the reference drops it only then: meanwhile the key still reads as that record
 * (no limit state), never expires, and is never pruned. The commit drops it, and the committing caller then renews
 * the subject's expiry ({@link #outlived}), which the record had made endless.
 */
final class ArrayHolder extends Holder {
    private final long horizonMicros;
    private LimitSpec writer;
    private long[] state;
    private volatile long expiresAt;

    /** The expiry for which the cache last renewed this holder beyond its interval; see {@link #outlived}. */
    private long renewedFor = Long.MIN_VALUE;

    /** The record of the key until a limit commits here, else null; written only by the owner. */
    private volatile RecordHolder record;

    /** Whether a commit dropped {@link #record} and the cache has not been told yet; see {@link #outlived}. */
    private boolean recordDropped;

    /** A holder of {@code state}; its state word is only a lock (0 when free). */
    ArrayHolder(
            String scope, LimitSpec writer, long horizonMicros, long[] state, long expiresAtMicros, long clockMicros) {
        this(scope, writer, horizonMicros, state, expiresAtMicros, clockMicros, null);
    }

    /** A holder of {@code state} that keeps {@code record} (null: none) until a limit commits here. */
    ArrayHolder(
            String scope,
            LimitSpec writer,
            long horizonMicros,
            long[] state,
            long expiresAtMicros,
            long clockMicros,
            RecordHolder record) {
        super(scope, 0);
        this.record = record;
        this.writer = writer;
        this.horizonMicros = horizonMicros;
        this.state = state;
        this.expiresAt = state == null ? Long.MIN_VALUE : expiresAtMicros;
        made(clockMicros);
    }

    @Override
    Holder copy() {
        ArrayHolder copy = new ArrayHolder(scope, writer, horizonMicros, state, expiresAt, 0, record);
        copy.renewedFor = renewedFor;
        copy.recordDropped = recordDropped;
        return copy;
    }

    /** The horizon a spec needs: its largest ttl after the newest time seen. */
    static long horizonOf(LimitSpec spec) {
        return spec.maxTtlMicros();
    }

    @Override
    LimitSpec writer() {
        return writer;
    }

    @Override
    boolean accepts(LimitSpec spec, long nowMicros) {
        return horizonOf(spec) <= horizonMicros;
    }

    private long[] live(long nowMicros) {
        return state != null && expiresAt <= nowMicros ? null : state;
    }

    @Override
    long peek(long word, LimitSpec spec, long permits, long nowMicros) {
        return spec.evaluate(live(nowMicros), nowMicros, permits);
    }

    @Override
    long commit(long word, LimitSpec spec, long permits, long nowMicros) {
        if (record != null) {
            // The reference's store() replaces the key's entry, record and all.
            record = null;
            recordDropped = true;
        }
        // Exactly ReferenceStorage's store(): a state whose ttl is over is absent.
        long[] live = live(nowMicros);
        if (live == null && state != null && spec == writer && logOfTimes(spec)) {
            // The spec's own log, all of it expired: its commit finds no live entry in it, as in no state, and
            // writes the new log into the same array when the length fits (a user who writes less often than the
            // window: one new array per message otherwise).
            live = state;
        }
        long[] next = spec.commit(live, nowMicros, permits);
        // Reference fields are written only when they change: mostly they do not (the same spec, a state changed in
        // place), and a store into a long-lived holder costs the collector's write barrier.
        if (writer != spec) {
            writer = spec;
        }
        long ttl = next == null ? 0 : spec.ttlMicros(next, nowMicros);
        if (ttl <= 0) {
            state = null;
            expiresAt = Long.MIN_VALUE;
        } else {
            if (state != next) {
                state = next;
            }
            expiresAt = Saturated.plus(nowMicros, ttl); // near the end of time, never past it
        }
        return 0;
    }

    /**
     * Whether {@code spec} keeps a log ordered by time whose commit reads the entries that left its window as gone
     * (sliding log, duplicate window): on a state of its own whose ttl is over it commits as on no state.
     */
    private static boolean logOfTimes(LimitSpec spec) {
        return spec instanceof DuplicateWindow || spec instanceof SlidingWindowLog;
    }

    @Override
    long settle(long word, long nowMicros) {
        if (live(nowMicros) == null) {
            state = null;
            expiresAt = Long.MIN_VALUE;
        }
        return 0;
    }

    @Override
    RecordHolder record() {
        return record;
    }

    @Override
    long[] raw(long word) {
        return state;
    }

    @Override
    long expiresAtMicros(long word) {
        return expiresAt;
    }

    /**
     * Whether the state now lives longer than the holder's interval covers from {@code clockMicros} and the cache
     * has not been told yet (then it is, by the caller, at once): a spec's commit on state that another spec wrote
     * (a fixed window of half-second windows read as one of whole seconds) can give it a ttl beyond the spec's
     * longest. Also once after a commit dropped the {@linkplain #record record}, for which the cache kept the
     * holder for ever: the caller that committed asks next, and the renewal then sets a finite lifetime. Racy by
     * design: a race only renews once more.
     */
    boolean outlived(long clockMicros) {
        if (recordDropped) {
            recordDropped = false;
            return true;
        }
        long expiry = expiresAt;
        if (expiry <= Saturated.plus(clockMicros, intervalMicros()) || expiry == renewedFor) {
            return false;
        }
        renewedFor = expiry;
        return true;
    }

    /** The deadline of a gate for {@link MemoryStorage#raiseGate}: present state written by a gate, else MIN. */
    long gateDeadline() {
        return writer instanceof Gate && state != null ? state[0] : Long.MIN_VALUE;
    }

    @Override
    long intervalMicros() {
        return Saturated.plus(horizonMicros, CallerClock.SLACK_MICROS);
    }

    @Override
    long prunableFromMicros(long word) {
        return record != null ? Long.MAX_VALUE : super.prunableFromMicros(word);
    }

    @Override
    long stateLifetimeNanos(long currentNanos, long intervals) {
        long expiry = expiresAt;
        if (expiry == Long.MAX_VALUE || record != null) {
            return Long.MAX_VALUE;
        }
        // A state committed before the next renewal lives at most an interval after its commit, which the intervals
        // cover; one that lives longer (written by another spec, see outlived) is kept until its expiry.
        long untilExpiry = microsToNanos(cacheExpiryMicros(expiry)) - currentNanos;
        return Math.max(untilExpiry, Saturated.times(microsToNanos(intervalMicros()), intervals));
    }
}
