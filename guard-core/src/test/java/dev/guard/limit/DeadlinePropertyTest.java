package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.LongRange;
import net.jqwik.api.constraints.Size;

/** Invariants of the kinds whose state is a deadline set from outside: {@link Gate} and {@link Membership}. */
class DeadlinePropertyTest {
    private static final long START = Histories.START_MICROS;

    @Property(tries = 200)
    void gate_raisesInAnyOrder_endAtTheLatestDeadline(
            @ForAll @Size(min = 1, max = 20) List<@LongRange(min = -1_000_000, max = 1_000_000) Long> deadlines) {
        long[] state = null;
        for (long d : deadlines) {
            state = Gate.INSTANCE.raise(state, START + d);
        }
        long latest = deadlines.stream().mapToLong(Long::longValue).max().orElseThrow();
        assertThat(state).containsExactly(START + latest);
    }

    @Property(tries = 300)
    void gate_anyDeadline_rejectsExactlyUntilItAndThenEqualsAbsent(
            @ForAll @LongRange(min = -1_000_000, max = 1_000_000) long deadline,
            @ForAll @LongRange(min = -1_000_000, max = 1_000_000) long now,
            @ForAll @LongRange(min = 0, max = 3) long permits) {
        assertDeadlineSemantics(Gate.INSTANCE, Gate.INSTANCE.raise(null, START + deadline), START + now, permits);
    }

    @Property(tries = 300)
    void membership_anyExpiry_rejectsExactlyUntilItAndThenEqualsAbsent(
            @ForAll @LongRange(min = -1_000_000, max = 1_000_000) long expiry,
            @ForAll @LongRange(min = -1_000_000, max = 1_000_000) long now,
            @ForAll @LongRange(min = 0, max = 3) long permits) {
        long[] member = Membership.member(START + expiry);
        assertDeadlineSemantics(Membership.MUST_BE_ABSENT, member, START + now, permits);
        long[] before = member.clone();
        long required = Membership.MUST_BE_PRESENT.evaluate(member, START + now, permits);
        assertThat(member).isEqualTo(before);
        assertThat(required).isEqualTo(now < expiry ? Long.MAX_VALUE : Outcome.NEVER);
        long ttl = Membership.MUST_BE_PRESENT.ttlMicros(member, START + now);
        assertThat(Membership.MUST_BE_PRESENT.evaluate(member, START + now + ttl, permits))
                .isEqualTo(Membership.MUST_BE_PRESENT.evaluate(null, START + now + ttl, permits));
    }

    private static void assertDeadlineSemantics(LimitSpec spec, long[] state, long now, long permits) {
        long[] before = state.clone();
        long outcome = spec.evaluate(state, now, permits);
        assertThat(state).as("state after evaluate").isEqualTo(before);
        long ttl = spec.ttlMicros(state, now);
        assertThat(ttl).isEqualTo(Math.max(0, state[0] - now));
        if (!Outcome.isAdmitted(outcome)) {
            long retry = Outcome.retryAfterMicros(outcome);
            assertThat(retry).isEqualTo(ttl);
            assertThat(Outcome.isAdmitted(spec.evaluate(state, now + retry - 1, permits)))
                    .isFalse();
        }
        for (long later : new long[] {0, 1, 1_000_000}) {
            assertThat(spec.evaluate(state, now + ttl + later, permits))
                    .isEqualTo(spec.evaluate(null, now + ttl + later, permits));
        }
    }
}
