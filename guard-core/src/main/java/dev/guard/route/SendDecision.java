package dev.guard.route;

import dev.guard.spi.GuardStorageException;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * The pool's answer to {@link SenderPool#acquire}: a value, never an exception.
 *
 * <ul>
 *   <li>{@link Granted}: send through {@link Granted#sender()} now, then report what happened on it;
 *   <li>{@link Delayed}: no sender can take the message before {@link Delayed#until()}; schedule it then instead of
 *       blocking a thread (nothing was consumed);
 *   <li>{@link Rejected}: no sender will take it without a change (none carries its tags, its pinned sender is
 *       blocked, its recipient blocked a sender of the pool, the storage is down); nothing was consumed.
 * </ul>
 *
 * <pre>{@code
 * SendDecision d = pool.acquire(OutboundMessage.to(chatId));
 * if (d instanceof SendDecision.Granted g) {
 *     // Send through g.sender(); then report g.delivered(latency), g.retryAfter(retryAfter) or g.failed(cause).
 * } else if (d instanceof SendDecision.Delayed later) {
 *     // Rounded up: toMillis() alone would cut 1.9 ms to 1 ms and retry too early.
 *     scheduler.schedule(task, later.retryAfter().plusNanos(999_999).toMillis(), TimeUnit.MILLISECONDS);
 * }
 * }</pre>
 */
public sealed interface SendDecision permits SendDecision.Granted, SendDecision.Delayed, SendDecision.Rejected {

    /** Why a message was delayed or rejected. */
    enum Reason {
        /** The pool has no sender at all. */
        NO_SENDERS,
        /** No active sender may carry the message's tags (or none is warm enough for them). */
        NO_ELIGIBLE_SENDER,
        /**
         * The message is pinned to a sender that is blocked, retired, not allowed to carry its tags or not yet warm
         * enough for them; the detail says which.
         */
        PINNED_SENDER_UNAVAILABLE,
        /** Every eligible sender is at a limit or behind a gate. */
        SENDERS_BUSY,
        /** The recipient chat is at its limit or behind a gate; another sender would not help. */
        CHAT_LIMIT,
        /**
         * The chat's recipient blocked a sender of the pool ({@link SenderPool#recipientBlocked}): no sender writes to
         * it until {@link SenderPool#recipientUnblocked}.
         */
        RECIPIENT_BLOCKED,
        /** The pool's global limit is reached. */
        GLOBAL_LIMIT,
        /** A limit can never admit the message (it asks for more than a limit's capacity). */
        NEVER,
        /** The storage failed; nothing is known to have been consumed. */
        STORAGE_UNAVAILABLE
    }

    /** Whether a sender was granted. */
    boolean granted();

    /**
     * A sender took the message: send it through {@link #sender()} now. Thread-safe; the feedback methods may be
     * called from any thread, once per outcome of the send: the pool counts every call, so an outcome reported twice
     * counts twice (report again only a report that threw, as {@link #recipientBlocked} says).
     */
    final class Granted implements SendDecision {
        private final SenderPool pool;
        private final String sender;
        private final String chat;
        private final long atMicros;
        private final long remaining;

        Granted(SenderPool pool, String sender, String chat, long atMicros, long remaining) {
            this.pool = pool;
            this.sender = sender;
            this.chat = chat;
            this.atMicros = atMicros;
            this.remaining = remaining;
        }

        @Override
        public boolean granted() {
            return true;
        }

        /** The sender to send through. */
        public String sender() {
            return sender;
        }

        /** The recipient chat. */
        public String chat() {
            return chat;
        }

        /** When the permit was granted, by the pool's ticker. */
        public Instant at() {
            return SenderPool.instant(atMicros);
        }

        /** The fewest permits left across the limits that admitted this one (sender, chat and global). */
        public long remaining() {
            return remaining;
        }

        /**
         * The platform accepted the message after {@code latency}: {@link SenderPool#delivered}.
         *
         * @throws IllegalArgumentException if {@code latency} is null or negative
         */
        public void delivered(Duration latency) {
            pool.delivered(sender, latency);
        }

        /**
         * The platform pushed back on the sender ({@code 429} with {@code retry_after}): {@link
         * SenderPool#retryAfter(String, Duration)}. Send the message again after a new {@link SenderPool#acquire}. It
         * counts against a warming sender's quality ({@link SenderPool.Builder#maxWarmUpPushbackRate}).
         *
         * @throws IllegalArgumentException if {@code retryAfter} is null, negative or 2^53 microseconds or longer
         * @throws GuardStorageException if the storage fails to record the gate (it then holds in this process only)
         */
        public void retryAfter(Duration retryAfter) {
            pool.retryAfter(sender, retryAfter);
        }

        /**
         * The platform pushed back because of this chat (a busy group, too many messages to one user): gates the
         * sender and the chat, {@link SenderPool#retryAfter(String, String, Duration)}. A busy chat is no mark
         * against a warming sender's quality, as a pushback on the sender is: that method says why.
         *
         * @throws IllegalArgumentException if {@code retryAfter} is null, negative or 2^53 microseconds or longer
         * @throws GuardStorageException if the storage fails to record a gate: the sender's then holds in this
         *     process at least, the chat's possibly nowhere
         */
        public void retryAfterInChat(Duration retryAfter) {
            pool.retryAfter(sender, chat, retryAfter);
        }

        /** The send failed for another reason: {@link SenderPool#failed}. */
        public void failed(String cause) {
            pool.failed(sender, cause);
        }

        /**
         * The platform blocked the sender: {@link SenderPool#blocked}.
         *
         * @throws GuardStorageException if the storage fails to record the block (it then holds in this process
         *     only, for as long as {@link SenderPool#blocked} says)
         */
        public void blocked() {
            pool.blocked(sender);
        }

        /**
         * The recipient blocked the sender (Telegram's "bot was blocked by the user"): {@link
         * SenderPool#recipientBlocked} for this sender and chat, so that no sender of the pool writes to the chat
         * until {@link SenderPool#recipientUnblocked}.
         *
         * @throws GuardStorageException if the storage fails: nothing was recorded, counted or braked; report it again
         */
        public void recipientBlocked() {
            pool.recipientBlocked(sender, chat);
        }

        @Override
        public String toString() {
            return "Granted[sender=" + sender + ", chat=" + chat + ", at=" + at() + ", remaining=" + remaining + "]";
        }
    }

    /**
     * No sender can take the message before {@link #until()}; nothing was consumed. An estimate from the limits'
     * retry-after values: another process may take the capacity first, so acquire again then. The wait is never
     * shorter than a millisecond, even when a limit frees up sooner or the pool ran out of attempts while senders it
     * has not tried may be free, so that a caller that waits it out does not spin; it is not always a whole number
     * of milliseconds, so round it up, not down, for a scheduler that counts in them.
     *
     * @param until the earliest time a sender may take the message
     * @param retryAfter how long from the decision until then
     * @param reason what holds it back ({@link Reason#SENDERS_BUSY}, {@link Reason#CHAT_LIMIT} or {@link
     *     Reason#GLOBAL_LIMIT})
     */
    record Delayed(Instant until, Duration retryAfter, Reason reason) implements SendDecision {
        /** Creates the decision. */
        public Delayed {
            Objects.requireNonNull(until, "until must not be null");
            Objects.requireNonNull(retryAfter, "retryAfter must not be null");
            Objects.requireNonNull(reason, "reason must not be null");
        }

        @Override
        public boolean granted() {
            return false;
        }
    }

    /**
     * No sender will take the message without a change; nothing was consumed.
     *
     * @param reason why
     * @param detail a human-readable explanation naming the sender, tag or failure
     */
    record Rejected(Reason reason, String detail) implements SendDecision {
        /** Creates the decision. */
        public Rejected {
            Objects.requireNonNull(reason, "reason must not be null");
            Objects.requireNonNull(detail, "detail must not be null");
        }

        @Override
        public boolean granted() {
            return false;
        }
    }
}
