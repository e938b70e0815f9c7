package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import org.junit.jupiter.api.Test;

class MembershipTest {
    private final ManualTicker clock = ManualTicker.create();
    private final long t0 = clock.epochMicros();
    private final long[] untilTenSeconds = Membership.member(t0 + 10_000_000);
    private final long[] forever = Membership.member(Long.MAX_VALUE);

    @Test
    void isMember_expiringMembership_holdsUntilJustBeforeItsExpiry() {
        assertThat(Membership.isMember(untilTenSeconds, t0 + 9_999_999)).isTrue();
        assertThat(Membership.isMember(untilTenSeconds, t0 + 10_000_000)).isFalse();
        assertThat(Membership.isMember(null, t0)).isFalse();
        assertThat(Membership.isMember(forever, Long.MAX_VALUE - 1)).isTrue();
    }

    @Test
    void mustBeAbsent_nonMember_isAdmitted() {
        assertThat(Membership.MUST_BE_ABSENT.evaluate(null, t0, 1)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void mustBeAbsent_expiringMember_isRejectedUntilTheMembershipEnds() {
        assertThat(Membership.MUST_BE_ABSENT.evaluate(untilTenSeconds, t0, 1)).isEqualTo(Outcome.rejected(10_000_000));
        assertThat(Membership.MUST_BE_ABSENT.evaluate(untilTenSeconds, t0 + 9_999_999, 1))
                .isEqualTo(Outcome.rejected(1));
        assertThat(Membership.MUST_BE_ABSENT.evaluate(untilTenSeconds, t0 + 10_000_000, 1))
                .isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void mustBeAbsent_aMembershipEndingPastLongMaxPlusNow_readOnAClockBefore1970_isNeverAdmitted() {
        // expiry - now overflows for a negative now: the wait was 1 us and the ttl 0. It saturates, as a gate's does.
        long before1970 = -3_600_000_000L;
        long[] far = Membership.member(Long.MAX_VALUE - 1);
        assertThat(Membership.MUST_BE_ABSENT.evaluate(far, before1970, 1)).isEqualTo(Outcome.NEVER);
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(far, before1970)).isEqualTo(Long.MAX_VALUE);
        // An expiry that fits is read exactly, before 1970 as after.
        long[] inAnHour = Membership.member(before1970 + 3_600_000_000L);
        assertThat(Membership.MUST_BE_ABSENT.evaluate(inAnHour, before1970, 1))
                .isEqualTo(Outcome.rejected(3_600_000_000L));
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(inAnHour, before1970)).isEqualTo(3_600_000_000L);
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(inAnHour, 0)).isZero();
    }

    @Test
    void mustBeAbsent_memberForGood_isNeverAdmitted() {
        assertThat(Membership.MUST_BE_ABSENT.evaluate(forever, t0, 1)).isEqualTo(Outcome.NEVER);
    }

    @Test
    void mustBePresent_member_isAdmitted() {
        assertThat(Membership.MUST_BE_PRESENT.evaluate(untilTenSeconds, t0, 1)).isEqualTo(Long.MAX_VALUE);
        assertThat(Membership.MUST_BE_PRESENT.evaluate(forever, t0, 1)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void mustBePresent_nonMemberOrExpiredMember_isNeverAdmitted() {
        assertThat(Membership.MUST_BE_PRESENT.evaluate(null, t0, 1)).isEqualTo(Outcome.NEVER);
        assertThat(Membership.MUST_BE_PRESENT.evaluate(untilTenSeconds, t0 + 10_000_000, 1))
                .isEqualTo(Outcome.NEVER);
    }

    @Test
    void commit_checkingMembership_neverChangesTheSet() {
        assertThat(Membership.MUST_BE_PRESENT.commit(untilTenSeconds, t0, 1)).containsExactly(t0 + 10_000_000);
        assertThat(Membership.MUST_BE_ABSENT.commit(null, t0, 1)).isNull();
    }

    @Test
    void ttl_expiringMembership_isUntilItsExpiry() {
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(untilTenSeconds, t0)).isEqualTo(10_000_000);
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(untilTenSeconds, t0 + 20_000_000))
                .isZero();
        assertThat(Membership.MUST_BE_ABSENT.ttlMicros(null, t0)).isZero();
    }

    @Test
    void ttl_membershipForGood_neverExpires() {
        assertThat(Membership.MUST_BE_PRESENT.ttlMicros(forever, t0)).isEqualTo(Long.MAX_VALUE);
        assertThat(Membership.MUST_BE_PRESENT.maxTtlMicros()).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void kind_namesWhetherMembershipIsRequired() {
        assertThat(Membership.MUST_BE_PRESENT.required()).isTrue();
        assertThat(Membership.MUST_BE_PRESENT.kind()).isEqualTo("member_required");
        assertThat(Membership.MUST_BE_ABSENT.required()).isFalse();
        assertThat(Membership.MUST_BE_ABSENT.kind()).isEqualTo("member_forbidden");
        assertThat(Membership.MUST_BE_ABSENT).hasToString("Membership[forbidden]");
    }
}
