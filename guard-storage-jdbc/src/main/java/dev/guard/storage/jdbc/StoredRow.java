package dev.guard.storage.jdbc;

/**
 * One row of the state table as a decision sees it, locked.
 *
 * @param kind what the row holds: {@link #ABSENT}, {@link #LIMIT}, {@link #GATE}, {@link #MEMBER} or {@link #RECORD}
 * @param state a limit's state ({@link #LIMIT} rows only)
 * @param version a record's version ({@link #RECORD} rows only)
 * @param expiresAtMicros when the row becomes absent; a gate's deadline or a membership's end for those kinds
 */
record StoredRow(int kind, long[] state, long version, long expiresAtMicros) {
    /** A placeholder from a first touch, or state that expired or ran out its ttl. */
    static final int ABSENT = 0;
    /** A limit's state (token bucket, windows, cooldown, duplicate window). */
    static final int LIMIT = 1;
    /** A gate's deadline, held in expires_at. */
    static final int GATE = 2;
    /** A set membership, ending at expires_at. */
    static final int MEMBER = 3;
    /** A versioned record; never expires. */
    static final int RECORD = 4;

    /** Whether the row holds state (a limit, a gate or a membership), expired or not. */
    boolean hasState() {
        return kind == LIMIT || kind == GATE || kind == MEMBER;
    }

    /**
     * The state a limit step sees at {@code nowMicros}: null when absent or expired. Gates and memberships keep their
     * single number, the deadline, in expires_at.
     */
    long[] liveState(long nowMicros) {
        if (!hasState() || expiresAtMicros <= nowMicros) {
            return null;
        }
        return kind == LIMIT ? state : new long[] {expiresAtMicros};
    }

    /** Whether the row holds state that expired at {@code nowMicros}: it must read as absent from now on. */
    boolean expired(long nowMicros) {
        return hasState() && expiresAtMicros <= nowMicros;
    }
}
