package dev.guard.limit;

import dev.guard.internal.Saturated;

/**
 * A check against a named set (a blocklist, the registered users): the key is {@code (set name, member)} and the
 * state, when present, holds the member's expiry. {@link #MUST_BE_ABSENT} admits only non-members (a blocklist),
 * {@link #MUST_BE_PRESENT} admits only members (required registration). Checking never changes the set; members
 * are added and removed with {@link dev.guard.spi.Storage#addMember} and {@link dev.guard.spi.Storage#removeMember}.
 *
 * <p>State: {@code [expiresAtMicros]}, where {@link Long#MAX_VALUE} means the membership never expires.
 */
public final class Membership implements LimitSpec {
    /** Admits only keys that are not in the set. */
    public static final Membership MUST_BE_ABSENT = new Membership(false);

    /** Admits only keys that are in the set. */
    public static final Membership MUST_BE_PRESENT = new Membership(true);

    private final boolean required;

    private Membership(boolean required) {
        this.required = required;
    }

    /** Whether membership is required (registration) rather than forbidden (blocklist). */
    public boolean required() {
        return required;
    }

    @Override
    public String kind() {
        return required ? "member_required" : "member_forbidden";
    }

    /** Whether {@code state} is a membership that is still in force at {@code nowMicros}. */
    public static boolean isMember(long[] state, long nowMicros) {
        state = Checks.shaped(state, 1);
        return state != null && nowMicros < state[0];
    }

    @Override
    public long evaluate(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        Checks.permits(permits);
        boolean member = isMember(state, nowMicros);
        if (member == required) {
            return Outcome.admitted(Long.MAX_VALUE);
        }
        if (required) {
            return Outcome.NEVER;
        }
        return state[0] == Long.MAX_VALUE ? Outcome.NEVER : Outcome.rejected(Saturated.until(state[0], nowMicros));
    }

    @Override
    public long[] commit(long[] state, long nowMicros, long permits) {
        state = Checks.shaped(state, 1);
        return state;
    }

    /** The state of a member whose membership ends at {@code expiresAtMicros} ({@link Long#MAX_VALUE}: never). */
    public static long[] member(long expiresAtMicros) {
        return new long[] {expiresAtMicros};
    }

    @Override
    public long ttlMicros(long[] state, long nowMicros) {
        state = Checks.shaped(state, 1);
        if (state == null) {
            return 0;
        }
        if (state[0] == Long.MAX_VALUE) {
            return Long.MAX_VALUE;
        }
        return state[0] <= nowMicros ? 0 : Saturated.until(state[0], nowMicros);
    }

    @Override
    public long maxTtlMicros() {
        return Long.MAX_VALUE;
    }

    @Override
    public String toString() {
        return required ? "Membership[required]" : "Membership[forbidden]";
    }
}
