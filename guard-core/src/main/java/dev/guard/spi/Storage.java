package dev.guard.spi;

import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Where Guard's state lives: what a backend implements. Implementations: memory (Caffeine), Redis (Lettuce), JDBC
 * (Jdbi); guard-storage-tck holds the contract suite that proves a backend, including a third party's.
 *
 * <p><b>Algorithm-aware, one round trip.</b> The backend receives the whole {@link Batch} of a decision and the
 * time, evaluates every step where the state lives with the reference semantics of each {@link LimitSpec}, and
 * answers once. It never exposes read-compute-compare-and-set to the caller.
 *
 * <p><b>Atomic and all-or-nothing.</b> Each step's outcome is computed against the state before the batch; the
 * batch is admitted only when every step admits, and then every step commits; otherwise nothing changes. Several
 * processes sharing one backend never admit more than a limit allows. {@link dev.guard.limit.Gate} and {@link
 * dev.guard.limit.Membership} steps are checks and commit nothing, even in an admitted batch: their state belongs to
 * {@link #raiseGate} and {@link #addMember}, and a key they check may hold another limit's state (after a deploy
 * changed a filter's kind) that they read as absent, which their {@code commit} would drop. A committed state whose
 * {@link LimitSpec#ttlMicros ttl} is zero (a look at a fresh key) is absent: it is not stored.
 *
 * <p><b>One state per key.</b> A limit's commit, {@link #raiseGate} and {@link #addMember} write the one state at a
 * key, replacing whatever another wrote there, and every limit reads what another wrote as {@link LimitSpec}
 * describes (a cooldown reads a gate's deadline as its own; a membership check reads a bucket's state as absent).
 * Records ({@link #putRecord}) are apart from it.
 *
 * <p><b>Time and expiry.</b> The caller passes {@code nowMicros} (microseconds since the epoch from an injected
 * clock). A backend never reads the wall clock to make a decision; a backend may offer to use its server's clock
 * instead, as an option: a deadline that a caller sets ({@link #raiseGate}, {@link #addMember}) then counts from the
 * {@code nowMicros} passed with it on the server's clock, and a deadline answered is on the caller's clock. Every
 * state expires when its {@link LimitSpec#ttlMicros ttl} runs out, never earlier (eviction must not grant extra
 * permits), so memory stays bounded by the active keys.
 *
 * <p><b>Failures.</b> Every method either answers or throws {@link GuardStorageException} within the backend's
 * timeout. Implementations are thread-safe.
 *
 * <p><b>Bad arguments</b> fail before anything changes, with a message that names the argument: a null one with a
 * {@link NullPointerException} ({@code key must not be null}; {@code batch}, {@code spec}, {@code value}, {@code
 * subject} likewise), a step that its limit refuses with an {@link IllegalArgumentException} that names the value (a
 * {@link dev.guard.limit.DuplicateWindow} item outside {@code [0, 2^53)}, negative permits given to {@link #acquire}).
 * A backend that evaluates every step with {@link LimitSpec#evaluate} before it commits any gets the latter for free.
 */
public interface Storage extends AutoCloseable {

    /**
     * Evaluates {@code batch} atomically at {@code nowMicros}: one round trip for a remote backend.
     *
     * @throws IllegalArgumentException if a step's limit refuses its permits (see the class Javadoc); nothing changed
     * @throws GuardStorageException if the backend fails or times out; nothing was consumed then or it is unknown
     */
    BatchResult evaluate(Batch batch, long nowMicros);

    /**
     * Evaluates the steps in {@code buffer} atomically at {@code nowMicros}, as {@link #evaluate}, and writes each
     * step's {@link Outcome} into the buffer ({@link BatchBuffer#outcome}); answers whether the batch was admitted.
     * The buffer belongs to the caller and to the calling thread: the storage reads it and writes its outcomes during
     * the call only, and keeps no reference to it. The results are valid until the caller reuses the buffer.
     *
     * <p>The default builds a {@link Batch} and calls {@link #evaluate}; a backend whose evaluation is cheap (in
     * memory) overrides it to evaluate without the batch's and result's objects.
     *
     * @throws IllegalArgumentException if {@code buffer} is empty
     * @throws GuardStorageException as {@link #evaluate}; the buffer's outcomes are then undefined
     */
    default boolean evaluateInPlace(BatchBuffer buffer, long nowMicros) {
        BatchResult result = evaluate(buffer.toBatch(), nowMicros);
        buffer.setOutcomes(result);
        return result.admitted();
    }

    /**
     * {@link #evaluate} without blocking the caller. The default completes at once with {@link #evaluate}; remote
     * backends override it. The stage fails with {@link GuardStorageException} where {@link #evaluate} throws.
     */
    default CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
        try {
            return CompletableFuture.completedFuture(evaluate(batch, nowMicros));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Evaluates one step: {@link #evaluate} for a one-step batch, answering an {@link Outcome} value so that the
     * common single-limit path allocates nothing. Backends should override the default, which allocates.
     *
     * @throws IllegalArgumentException if {@code permits} is negative (the message names them) or the limit refuses
     *     them, as {@link #evaluate}; an override checks this itself, since it builds no {@link Step}
     * @throws GuardStorageException if the backend fails
     */
    default long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        return evaluate(Batch.of(new Step(key, spec, permits)), nowMicros).outcome(0);
    }

    /**
     * Raises the {@link dev.guard.limit.Gate} at {@code key} to {@code untilMicros}, merging by maximum with the gate's
     * deadline in force (one after {@code nowMicros}), and returns the deadline now in force: {@code untilMicros}
     * itself when it is the later one or the gate was open. The state expires at that deadline. Another limit's state
     * at the key (a cooldown's deadline or a membership, where a deploy changed the filter's kind) merges with nothing:
     * the gate replaces it.
     *
     * <p>{@code nowMicros} is the caller's time, used to turn the deadline into an expiry (a backend that expires keys
     * in relative time needs it); the deadline itself stays absolute. A deadline at or before {@code nowMicros} changes
     * nothing observable at a gate: a gate in force stays as it was, and an open gate stays open.
     *
     * @throws GuardStorageException if the backend fails
     */
    long raiseGate(StateKey key, long untilMicros, long nowMicros);

    /**
     * Adds {@code key.subject()} to the set {@code key.scope()} until {@code expiresAtMicros} ({@link
     * Long#MAX_VALUE}: for good), replacing an earlier expiry. {@link dev.guard.limit.Membership} steps read it.
     *
     * <p>{@code nowMicros} is the caller's time, used to turn the expiry into a backend's expiry (a backend that
     * expires keys in relative time needs it); the expiry itself stays absolute. An expiry at or before {@code
     * nowMicros} stores no membership: the subject is then not a member at {@code nowMicros}, whatever it was before.
     *
     * @throws GuardStorageException if the backend fails
     */
    void addMember(StateKey key, long expiresAtMicros, long nowMicros);

    /**
     * Removes {@code key.subject()} from the set {@code key.scope()}.
     *
     * @return whether an entry was removed; a membership that expired but was not yet swept may still count
     * @throws GuardStorageException if the backend fails
     */
    boolean removeMember(StateKey key);

    /**
     * Whether {@code key.subject()} is in the set {@code key.scope()} at {@code nowMicros}.
     *
     * @throws GuardStorageException if the backend fails
     */
    boolean isMember(StateKey key, long nowMicros);

    /**
     * The record at {@code key}, or empty.
     *
     * @throws GuardStorageException if the backend fails
     */
    Optional<VersionedRecord> getRecord(StateKey key);

    /**
     * Writes {@code value} at {@code key} if the record's version is still {@code expectedVersion} (0: the record must
     * not exist yet). Records never expire on their own.
     *
     * <p>A limit's state, a gate or a membership at {@code key} is no record: {@link #getRecord} answers empty there
     * and a first put expects version 0 (what becomes of that state is the backend's). Gate and membership checks of a
     * record's key leave the record; whether a limit that commits there keeps it is the backend's.
     *
     * @return the new version (the expected one plus one), or -1 when the version did not match and nothing changed
     * @throws IllegalArgumentException if {@code expectedVersion} is negative, with the message {@code expectedVersion
     *     must not be negative but was -1}; nothing changed
     * @throws GuardStorageException if the backend fails
     */
    long putRecord(StateKey key, byte[] value, long expectedVersion);

    /**
     * Removes every key whose subject is {@code subject}: limit and gate state, set memberships and records. Not a
     * hot-path operation: a backend may scan.
     *
     * @return how many keys were removed; state that expired but was not yet swept may count, a key that was only
     *     read (a look that stored nothing, a rejected step, a gate's or a set's check) never does
     * @throws GuardStorageException if the backend fails
     */
    long forget(String subject);

    /** Probes the backend; never throws. */
    StorageHealth health();

    /** Releases what the storage owns (connections it opened itself); not what the caller passed in. */
    @Override
    void close();
}
