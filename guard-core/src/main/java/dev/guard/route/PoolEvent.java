package dev.guard.route;

import java.time.Instant;
import java.util.Objects;

/**
 * Something that happened to a sender or to the pool, handed to {@link PoolListener}s.
 *
 * @param type what happened
 * @param sender the sender's id, or empty for pool-wide events
 * @param at when, by the pool's ticker
 * @param detail a short human-readable explanation (a stage, a deadline, a cause)
 */
public record PoolEvent(Type type, String sender, Instant at, String detail) {

    /** The kinds of events. */
    public enum Type {
        /** The platform blocked a sender; it takes no more traffic. */
        SENDER_BLOCKED,
        /** A sender's status was set by an operator (bulk or single change). */
        STATUS_CHANGED,
        /** A sender got a gate from a platform's pushback ({@code retry_after}). */
        COOLING_STARTED,
        /**
         * A sender's gate passed; it takes traffic again. Told when the pool next routes a message or syncs after the
         * gate passed (at the latest before the sender takes its next message through this pool), not at the deadline
         * itself: the detail names the deadline.
         */
        COOLING_ENDED,
        /** A warming sender moved to its next stage: a larger allowance. */
        WARM_UP_ADVANCED,
        /**
         * A warming sender's stage ended but its failure, block or pushback rate was too high: it stays another stage.
         */
        WARM_UP_HELD,
        /** A warming sender went back a stage after a block. */
        WARM_UP_STEPPED_BACK,
        /** A sender failing much more than the others was taken out of routing for a while. */
        SENDER_EJECTED,
        /** No sender could take a message; the pool answered delayed or rejected. Sent once per episode. */
        POOL_EXHAUSTED,
        /** A sender took a message again after the pool was exhausted. */
        POOL_RECOVERED,
        /**
         * A recipient blocked a sender of a pool that ran at full speed: every sender's per-second limit is braked
         * until the pool goes long enough without recipient blocks ({@link SenderPool.Builder#recipientBlockBrake}).
         * Sent once per episode, naming the sender that was blocked; the detail gives the brake's factor.
         */
        POOL_BRAKED,
        /** The pool's brake recovered fully: full speed again. Sent once per episode, after {@link #POOL_BRAKED}. */
        POOL_BRAKE_RELEASED
    }

    /** Creates an event. */
    public PoolEvent {
        Objects.requireNonNull(type, "type must not be null");
        Objects.requireNonNull(sender, "sender must not be null");
        Objects.requireNonNull(at, "at must not be null");
        Objects.requireNonNull(detail, "detail must not be null");
    }
}
