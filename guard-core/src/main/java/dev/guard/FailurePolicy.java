package dev.guard;

import dev.guard.spi.Storage;
import java.util.Objects;

/**
 * What a {@link Guard} decides when its storage fails, times out, or its breaker is open. The handler never sees the
 * storage's exception: the decision says what happened ({@link Reason#STORAGE_UNAVAILABLE}, {@link
 * Decision#degraded()}).
 *
 * <ul>
 *   <li>{@link #failOpen()}: allow (the default: a rate limiter that is down should not take the bot down);
 *   <li>{@link #failClosed()}: reject, retryable once the breaker lets a call try the storage again;
 *   <li>{@link #fallbackTo(Storage)}: decide on a local storage (typically a {@code MemoryStorage}), so limits
 *       still hold per process while the shared storage is away.
 * </ul>
 */
public final class FailurePolicy {
    enum Kind {
        OPEN,
        CLOSED,
        FALLBACK
    }

    private static final FailurePolicy OPEN = new FailurePolicy(Kind.OPEN, null);
    private static final FailurePolicy CLOSED = new FailurePolicy(Kind.CLOSED, null);

    private final Kind kind;
    private final Storage fallback;

    private FailurePolicy(Kind kind, Storage fallback) {
        this.kind = kind;
        this.fallback = fallback;
    }

    /** Allow messages while the storage is unavailable. */
    public static FailurePolicy failOpen() {
        return OPEN;
    }

    /**
     * Reject messages while the storage is unavailable. A rejection's {@link Decision#retryAfter()} is the time, on the
     * guard's clock, until its breaker next lets a call try the storage: what is left of the breaker's pause while it
     * is open, zero while it is closed (the next message tries the storage), {@link Decision#NEVER} when the pause
     * never ends.
     */
    public static FailurePolicy failClosed() {
        return CLOSED;
    }

    /**
     * Decide on {@code fallback} while the storage is unavailable; if the fallback fails too, allow. The blocklist
     * and the registrations are not checked there (their members live in the storage that is unavailable): they let
     * every user pass until it is back, while the limits hold per process. While the storage works, the fallback gets
     * one call per reject notice the storage lets through, to keep the notice's window (see {@link
     * Guard.Builder#rejectNotice}).
     *
     * @throws NullPointerException if {@code fallback} is null
     */
    public static FailurePolicy fallbackTo(Storage fallback) {
        return new FailurePolicy(Kind.FALLBACK, Objects.requireNonNull(fallback, "fallback must not be null"));
    }

    Kind kind() {
        return kind;
    }

    Storage fallback() {
        return fallback;
    }

    @Override
    public String toString() {
        return switch (kind) {
            case OPEN -> "failOpen";
            case CLOSED -> "failClosed";
            case FALLBACK -> "fallbackTo(" + fallback.getClass().getSimpleName() + ")";
        };
    }
}
