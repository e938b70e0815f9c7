package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;

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
}
