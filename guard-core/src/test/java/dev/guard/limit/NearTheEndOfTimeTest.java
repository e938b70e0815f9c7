package dev.guard.limit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.params.provider.Arguments.arguments;

import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Limits stepped 30 seconds before the end of the long range of microseconds (the year 294,247), a time only a
 * broken or hand-made clock gives: a deadline, a window or an expiry that passes that end must not wrap around and
 * free the key a microsecond later.
 */
class NearTheEndOfTimeTest {
    private static final long NEAR_END = Long.MAX_VALUE - 30_000_000L;

    /** Each limit with the permits of one step (a duplicate window's is the item, a content fingerprint). */
    static Stream<Arguments> limits() {
        return Stream.of(
                arguments(new Cooldown(Duration.ofMinutes(1)), 1L),
                arguments(new SlidingWindowLog(1, Duration.ofMinutes(1)), 1L),
                arguments(new DuplicateWindow(Duration.ofMinutes(1), 4), 5L),
                arguments(new FixedWindow(1, Duration.ofMinutes(1)), 1L),
                arguments(TokenBucket.of(1, Duration.ofMinutes(1)), 1L));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("limits")
    void aStepCommittedNearTheEnd_stillHoldsAMicrosecondLater(LimitSpec limit, long permits) {
        long[] state = limit.commit(null, NEAR_END, permits);

        assertThat(Outcome.isAdmitted(limit.evaluate(state, NEAR_END + 1, permits)))
                .isFalse();
        assertThat(limit.ttlMicros(state, NEAR_END))
                .as("the state outlives the step")
                .isPositive();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("limits")
    void theReferenceStorage_keepsAStateWhoseExpiryPassesTheEnd(LimitSpec limit, long permits) {
        ReferenceStorage storage = ReferenceStorage.create();
        StateKey key = new StateKey("limit", "alice");

        assertThat(Outcome.isAdmitted(storage.acquire(key, limit, permits, NEAR_END)))
                .isTrue();
        assertThat(Outcome.isAdmitted(storage.acquire(key, limit, permits, NEAR_END + 1)))
                .as("a microsecond later the state is still there")
                .isFalse();
    }
}
