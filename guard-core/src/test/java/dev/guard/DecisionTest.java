package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class DecisionTest {
    @Test
    void retryAfterSeconds_roundsUp_soThatAShortWaitNeverReadsAsZero() {
        assertThat(Decision.rejected("per-user", Reason.RATE_LIMITED, Duration.ofMillis(200))
                        .retryAfterSeconds())
                .isEqualTo(1);
        assertThat(Decision.rejected("per-user", Reason.RATE_LIMITED, Duration.ofSeconds(7))
                        .retryAfterSeconds())
                .isEqualTo(7);
        assertThat(Decision.rejected("per-user", Reason.RATE_LIMITED, Duration.ofSeconds(7, 1))
                        .retryAfterSeconds())
                .isEqualTo(8);
        assertThat(Decision.allowed(3).retryAfterSeconds()).isZero();
        assertThat(Decision.rejected("blocklist", Reason.BLOCKED, Decision.NEVER)
                        .retryAfterSeconds())
                .isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void retryAfterSeconds_ofTheLongestFiniteWaits_neverOverflowsToANegativeWait() {
        Duration longest = Duration.ofSeconds(Long.MAX_VALUE, 999_999_998);

        assertThat(Decision.rejected("paused", Reason.COOLDOWN, longest).retryAfterSeconds())
                .isEqualTo(Long.MAX_VALUE);
        assertThat(Decision.rejected("paused", Reason.COOLDOWN, Duration.ofSeconds(Long.MAX_VALUE, 1))
                        .retryAfterSeconds())
                .isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void negativeRemainingOrRetryAfter_isRefusedWithTheComponentAndItsValue() {
        assertThatThrownBy(() -> Decision.allowed(-5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("remaining must not be negative but was -5");
        assertThatThrownBy(() -> Decision.allowed(Long.MIN_VALUE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("remaining must not be negative but was " + Long.MIN_VALUE);
        assertThatThrownBy(() -> Decision.rejected("per-chat", Reason.THROTTLED, Duration.ofSeconds(-5)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("retryAfter must not be negative but was PT-5S");
        assertThatThrownBy(() -> Decision.rejected("per-chat", Reason.THROTTLED, Duration.ofNanos(-1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("retryAfter must not be negative but was PT-0.000000001S");
        assertThatThrownBy(() -> new Decision(true, "x", Reason.ALLOWED, Duration.ofSeconds(9), -1, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("remaining must not be negative but was -1");
        assertThatThrownBy(() -> Decision.rejected("per-chat", Reason.THROTTLED, null))
                .isInstanceOf(NullPointerException.class)
                .hasMessage("retryAfter must not be null");
    }

    @Test
    void componentsThatContradictEachOther_areRefusedWithTheComponentAndItsValue() {
        assertThatThrownBy(() -> Decision.rejected(null, Reason.THROTTLED, Duration.ofSeconds(5)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("filter must not be null with reason THROTTLED");
        assertThatThrownBy(() -> Decision.rejected("per-chat", Reason.ALLOWED, Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("reason ALLOWED contradicts allowed=false");
        assertThatThrownBy(() -> new Decision(true, "x", Reason.ALLOWED, Duration.ZERO, 1, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("filter must be null with reason ALLOWED but was \"x\"");
        assertThatThrownBy(() -> new Decision(true, null, Reason.ALLOWED, Duration.ofSeconds(9), 1, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("retryAfter must be zero when allowed but was PT9S");
        assertThatThrownBy(() -> new Decision(
                        true, "storage", Reason.STORAGE_UNAVAILABLE, Duration.ofSeconds(1), Long.MAX_VALUE, true))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("retryAfter must be zero when allowed but was PT1S");
        assertThatThrownBy(() -> new Decision(false, "per-user", Reason.RATE_LIMITED, Duration.ofSeconds(1), 3, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("remaining must be 0 when rejected but was 3");
        assertThatThrownBy(() -> new Decision(false, null, Reason.BLOCKED, Decision.NEVER, 0, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("filter must not be null with reason BLOCKED");
    }

    @Test
    void theDecisionsAGuardMakes_areAccepted() {
        assertThat(Decision.allowed(0).remaining()).isZero();
        assertThat(Decision.allowed(300).remaining()).isEqualTo(300);
        assertThat(Decision.allowed(Long.MAX_VALUE).remaining()).isEqualTo(Long.MAX_VALUE);
        assertThat(Decision.allowed(7).asDegraded())
                .isEqualTo(new Decision(true, null, Reason.ALLOWED, Duration.ZERO, 7, true));
        assertThat(Decision.rejected("peers", Reason.RATE_LIMITED, Duration.ZERO)
                        .retryAfterSeconds())
                .isZero();
        assertThat(Decision.rejected("tenant", Reason.MISSING_KEY, Decision.NEVER)
                        .retryable())
                .isFalse();
        // The failure policies': fail-open allows with the storage as its filter, fail-closed rejects.
        assertThat(new Decision(true, "storage", Reason.STORAGE_UNAVAILABLE, Duration.ZERO, Long.MAX_VALUE, true)
                        .allowed())
                .isTrue();
        assertThat(new Decision(false, "storage", Reason.STORAGE_UNAVAILABLE, Duration.ofSeconds(30), 0, true)
                        .retryAfterSeconds())
                .isEqualTo(30);
    }
}
