package dev.guard.spi;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import java.util.Arrays;
import java.util.Objects;

/**
 * A reusable, mutable {@link Batch} with room for its results: the steps of one decision and, once {@link
 * Storage#evaluateInPlace} has run, one {@link Outcome} per step. Where a {@link Batch}, its steps, keys and {@link
 * BatchResult} are new objects for every decision, a buffer is filled again for each one, so that a storage that
 * overrides {@link Storage#evaluateInPlace} (the memory storage does) evaluates a decision without allocating them.
 *
 * <p><b>Ownership.</b> The caller owns the buffer and uses it from one thread at a time: not thread-safe. It is
 * reused across calls: {@link #clear()} starts the next batch, and the results of the last evaluation are valid only
 * until then. A storage reads the steps and writes the outcomes during {@link Storage#evaluateInPlace} and keeps no
 * reference to the buffer afterwards. A caller that may be re-entered during a decision (a listener that checks
 * another message on the same thread) needs a second buffer for the inner decision.
 *
 * <p>The same rules as a {@link Batch}: keys are distinct within a batch, and a batch that is evaluated is not empty.
 */
public final class BatchBuffer {
    private String[] scopes;
    private String[] subjects;
    private LimitSpec[] specs;
    private long[] permits;
    private long[] outcomes;
    private int size;
    /** A bit per scope in the buffer, by its hash code: see {@link #add(String, String, LimitSpec, long)}. */
    private long scopeBits;
    /** What a storage keeps with the buffer: see {@link #attachment()}. */
    private Object attachment;

    /** An empty buffer with room for {@code capacity} steps; it grows when more are added. */
    public BatchBuffer(int capacity) {
        if (capacity < 0) {
            throw new IllegalArgumentException("capacity must not be negative but was " + capacity);
        }
        scopes = new String[capacity];
        subjects = new String[capacity];
        specs = new LimitSpec[capacity];
        permits = new long[capacity];
        outcomes = new long[capacity];
    }

    /**
     * Empties the buffer for the next batch; the previous steps and results are gone. Keeps the room it has, and the
     * last steps' scopes and specs until steps added later overwrite them: a buffer filled again with the same scopes
     * and specs (a guard's chain, message after message) writes only the subjects, and a store of a reference into a
     * long-lived array costs the garbage collector's write barrier. The subjects are dropped. A scope built for one
     * message (one that names a chat or a tenant, say) therefore stays reachable from the buffer until overwritten:
     * at most the buffer's capacity of them.
     */
    public void clear() {
        Arrays.fill(subjects, 0, size, null);
        size = 0;
        scopeBits = 0;
    }

    /**
     * The working state that a storage keeps with this buffer ({@link #attach}), or null: since a buffer is used from
     * one thread at a time, a storage may keep its working arrays for a decision here rather than look up its own per
     * thread on every decision. {@link #clear()} keeps it. Another storage may have evaluated the buffer since: a
     * storage checks what it finds, and attaches its own if it is not.
     */
    public Object attachment() {
        return attachment;
    }

    /**
     * Keeps {@code attachment} (null: nothing) with this buffer for the storage that evaluates it; see {@link
     * #attachment()}. It must not refer to the buffer's steps or outcomes beyond a decision.
     */
    public void attach(Object attachment) {
        this.attachment = attachment;
    }

    /**
     * Adds a step: take {@code permits} from {@code spec} at the key {@code scope, subject} (as a {@link StateKey}).
     *
     * @throws IllegalArgumentException if the scope is null or empty, {@code permits} is negative, or the key is
     *     already in the batch
     * @throws NullPointerException if {@code subject} or {@code spec} is null
     */
    public void add(String scope, String subject, LimitSpec spec, long permits) {
        if (scope == null) {
            throw new IllegalArgumentException("scope must not be empty but was null");
        }
        // The steps of a chain differ by scope, whose hash codes the strings cache (a storage hashes them anyway): a
        // bit per scope hash, and a pairwise comparison, as Batch does, only for a scope whose bit is already set.
        int scopeHash = scope.hashCode();
        // Only an empty text or a rare other one hashes to 0: the text itself (another object) is read only then.
        if (scopeHash == 0 && scope.isEmpty()) {
            throw new IllegalArgumentException("scope must not be empty but was ''");
        }
        Objects.requireNonNull(subject, "subject must not be null");
        Objects.requireNonNull(spec, "spec must not be null");
        if (permits < 0) {
            throw new IllegalArgumentException("permits must not be negative but was " + permits);
        }
        long bit = 1L << (scopeHash ^ (scopeHash >>> 6));
        if ((scopeBits & bit) != 0) {
            for (int i = 0; i < size; i++) {
                if (scopes[i].hashCode() == scopeHash && scopes[i].equals(scope) && subjects[i].equals(subject)) {
                    throw new IllegalArgumentException(
                            "key " + new StateKey(scope, subject) + " appears twice in one batch");
                }
            }
        }
        scopeBits |= bit;
        if (size == scopes.length) {
            int grown = Math.max(4, size * 2);
            scopes = Arrays.copyOf(scopes, grown);
            subjects = Arrays.copyOf(subjects, grown);
            specs = Arrays.copyOf(specs, grown);
            this.permits = Arrays.copyOf(this.permits, grown);
            outcomes = Arrays.copyOf(outcomes, grown);
        }
        // Only what changed: see clear().
        if (scopes[size] != scope) {
            scopes[size] = scope;
        }
        if (subjects[size] != subject) {
            subjects[size] = subject;
        }
        if (specs[size] != spec) {
            specs[size] = spec;
        }
        this.permits[size] = permits;
        outcomes[size] = 0;
        size++;
    }

    /**
     * Adds {@code step}, as {@link #add(String, String, LimitSpec, long)}.
     *
     * @throws NullPointerException if {@code step} is null
     * @throws IllegalArgumentException if the step's key is already in the batch
     */
    public void add(Step step) {
        Objects.requireNonNull(step, "step must not be null");
        add(step.key().scope(), step.key().subject(), step.spec(), step.permits());
    }

    /** The number of steps. */
    public int size() {
        return size;
    }

    /** The scope of step {@code index}'s key. */
    public String scope(int index) {
        return scopes[checked(index)];
    }

    /** The subject of step {@code index}'s key. */
    public String subject(int index) {
        return subjects[checked(index)];
    }

    /** The key of step {@code index}, as a new {@link StateKey}. */
    public StateKey key(int index) {
        return new StateKey(scopes[checked(index)], subjects[index]);
    }

    /** The limit of step {@code index}. */
    public LimitSpec spec(int index) {
        return specs[checked(index)];
    }

    /** The permits step {@code index} takes. */
    public long permits(int index) {
        return permits[checked(index)];
    }

    /** The steps as an immutable {@link Batch}, for a storage that evaluates batches only. */
    public Batch toBatch() {
        Step[] steps = new Step[size];
        for (int i = 0; i < size; i++) {
            steps[i] = new Step(new StateKey(scopes[i], subjects[i]), specs[i], permits[i]);
        }
        return Batch.of(steps);
    }

    /** Sets the outcome of step {@code index}: what a storage does for every step during an evaluation. */
    public void setOutcome(int index, long outcome) {
        outcomes[checked(index)] = outcome;
    }

    /** Sets every step's outcome from {@code result}, whose size must be this buffer's. */
    public void setOutcomes(BatchResult result) {
        if (result.size() != size) {
            throw new IllegalArgumentException(
                    "result must have " + size + " outcomes but had " + result.size() + ": " + result);
        }
        for (int i = 0; i < size; i++) {
            outcomes[i] = result.outcome(i);
        }
    }

    /** The outcome of step {@code index} in the last evaluation, as an {@link Outcome} value. */
    public long outcome(int index) {
        return outcomes[checked(index)];
    }

    /** Whether every step admitted in the last evaluation, so that the batch consumed its permits. */
    public boolean admitted() {
        return firstRejected() < 0;
    }

    /** The index of the first rejecting step in chain order, or -1 when the last evaluation admitted the batch. */
    public int firstRejected() {
        return BatchResult.firstRejected(outcomes, size);
    }

    /** As {@link BatchResult#retryAfterMicros()}, for the last evaluation. */
    public long retryAfterMicros() {
        return BatchResult.retryAfterMicros(outcomes, size);
    }

    /** The outcomes of the last evaluation as a {@link BatchResult} (a copy). */
    public BatchResult toResult() {
        return BatchResult.of(Arrays.copyOf(outcomes, size));
    }

    private int checked(int index) {
        if (index < 0 || index >= size) {
            throw new IndexOutOfBoundsException("index must be in [0, " + size + ") but was " + index);
        }
        return index;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("BatchBuffer[");
        for (int i = 0; i < size; i++) {
            sb.append(i == 0 ? "" : ", ")
                    .append(new StateKey(scopes[i], subjects[i]))
                    .append(' ')
                    .append(specs[i])
                    .append(" x")
                    .append(permits[i]);
        }
        return sb.append(']').toString();
    }
}
