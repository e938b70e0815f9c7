package dev.guard.limit;

/**
 * An immutable description of one limit (token bucket, sliding window, ...) together with its reference semantics.
 *
 * <p>The reference semantics are pure functions over a state encoded as a {@code long[]} ({@code null} means
 * absent, which is also what every state turns into after its {@link #ttlMicros ttl}):
 *
 * <ul>
 *   <li>{@link #evaluate} answers whether {@code permits} would be admitted at {@code now}, without changing
 *       anything, as an {@link Outcome};
 *   <li>{@link #commit} returns the state after those permits were admitted (the caller commits only admitted
 *       steps, and only when every step of a batch admits: all-or-nothing);
 *   <li>{@link #ttlMicros} says how long until a state equals absent, so backends can expire it exactly then.
 * </ul>
 *
 * <p>The in-memory backend runs these functions; the Redis and JDBC backends run equivalents where the state
 * lives, and the storage contract suite demands identical decisions. All arithmetic is on integers whose
 * magnitude stays below 2<sup>53</sup>, so that a Lua (double) implementation is exact too. Time is in
 * microseconds since the epoch and is always passed in; a clock that goes backwards by up to a day ({@link
 * #MAX_LEAD_MICROS}) never grants extra permits. So the durations that configure a limit are whole numbers of
 * microseconds: a limit refuses one with a finer part, which it would otherwise cut off.
 *
 * <p>A key keeps its state when the limit at it changes (a filter whose parameters or kind changed under the same
 * name, in a deploy): a state of the size the new limit reads is read by it; a state of another size (a counter with
 * other sub-buckets, a deadline read as a bucket) reads as absent, and so does one dated more than {@link
 * #MAX_LEAD_MICROS} after now (a minute window's index read by an hour window, whose window would begin thousands of
 * years ahead and never reset; a deadline that never ends read as a log's timestamp; or state that a clock more than
 * a day ahead wrote). Every backend does the same, with two differences on Redis, whose stored text says which limit
 * wrote it only for a deadline (a gate's, a cooldown's or a membership's carries a mark of its kind, so that it ends at
 * its time whoever reads it, and a gate merges only with a gate's): a state that a bucket, a window, a log or a counter
 * wrote whose ttl ended less than the expiry margin ago (a second by default) is still read by the new limit, by the
 * new limit's own measure of what in it is still live, where the others read it as absent; and a bucket, a window, a
 * log or a counter whose read finds such a state of its own size but over by its own measure drops it, although the
 * writer's measure may still hold it (a ten-second window reading an hour window's state), where the others keep it.
 * A gate raised on Redis also merges with one number without a mark (a deadline kept from a version before the mark, a
 * log's one timestamp): see {@code RedisStorage.raiseGate}.
 */
public sealed interface LimitSpec
        permits TokenBucket,
                FixedWindow,
                SlidingWindowLog,
                SlidingWindowCounter,
                Cooldown,
                DuplicateWindow,
                Gate,
                Membership {

    /** The largest magnitude that stays exact in IEEE-754 doubles (Lua numbers): 2^53. */
    long EXACT_LIMIT = 1L << 53;

    /**
     * How far after a caller's {@code nowMicros} the time that a state carries (a window's index, a timestamp, a
     * bucket's last update) may lie: one day. State dated later was written by another limit under the same key (a
     * window that was shorter before a deploy lengthened it, a deadline that never ends read as a timestamp) or by a
     * clock more than a day ahead, and reads as absent, as state of another shape does. Deadlines (cooldowns, gates,
     * memberships) are not dated: they may lie any time ahead.
     */
    long MAX_LEAD_MICROS = 86_400_000_000L;

    /** A short stable name of this kind, used by backends to pick the matching script or SQL. */
    String kind();

    /** Evaluates {@code permits} against {@code state} at {@code nowMicros} without changing anything. */
    long evaluate(long[] state, long nowMicros, long permits);

    /**
     * Returns the state after admitting {@code permits} at {@code nowMicros}. May return {@code state} itself,
     * changed in place, or a new array; callers must use the returned value. A backend calls it for no {@link Gate}
     * or {@link Membership} step: those only check (see {@link dev.guard.spi.Storage}), and storing what theirs returns
     * would drop or re-date another limit's state at the key.
     */
    long[] commit(long[] state, long nowMicros, long permits);

    /**
     * Microseconds from {@code nowMicros} until {@code state} equals absent; zero when it already does and
     * {@link Long#MAX_VALUE} when it never expires on its own.
     */
    long ttlMicros(long[] state, long nowMicros);

    /**
     * An upper bound of {@link #ttlMicros} over every state that {@link #commit} can produce, as long as the clock
     * never went backwards. A state last committed at a time later than {@code nowMicros} (a clock that went backwards,
     * processes with skewed clocks) is kept that much longer: its ttl is at most {@code maxTtlMicros()} plus how far
     * that commit's time is ahead of {@code nowMicros}.
     */
    long maxTtlMicros();
}
