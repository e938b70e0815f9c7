package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class TickerTest {
    @Test
    void precise_readsTheWallClockInMicroseconds() {
        long before = System.currentTimeMillis() * 1_000L;
        long micros = Ticker.precise().epochMicros();
        long after = System.currentTimeMillis() * 1_000L;

        // The offset is calibrated from currentTimeMillis, so it may trail by under a millisecond of granularity.
        assertThat(micros).isBetween(before - 2_000L, after + 2_000L);
    }

    @Test
    void system_readsTheWallClockNeverAheadAndNeverBackwards() {
        long before = System.currentTimeMillis() * 1_000L;
        long first = Ticker.system().epochMicros();
        long second = Ticker.system().epochMicros();
        long after = System.currentTimeMillis() * 1_000L;

        // Cached: behind by the ticking thread's lateness (a second bounds it unless the machine starves it).
        assertThat(first).isBetween(before - 1_000_000L, after + 2_000L);
        assertThat(second).isBetween(first, after + 2_000L);
    }

    @Test
    void manual_movesOnlyWhenTold() {
        ManualTicker ticker = ManualTicker.at(Instant.parse("2026-03-01T12:00:00Z"));
        long start = ticker.epochMicros();

        ticker.advance(Duration.ofMillis(1500)).advanceMicros(7);

        assertThat(ticker.epochMicros() - start).isEqualTo(1_500_007L);
        assertThat(ticker.now()).isEqualTo(Instant.parse("2026-03-01T12:00:01.500007Z"));
        ticker.set(Instant.parse("2026-03-01T11:00:00Z"));
        assertThat(ticker.epochMicros()).isEqualTo(start - 3_600_000_000L);
    }

    @Test
    void manual_stepsWithPartsOfAMicrosecond_addUpToTheirWholeDuration() {
        ManualTicker ticker = ManualTicker.at(Instant.parse("2026-03-01T12:00:00.000000600Z"));
        long start = ticker.epochMicros();

        for (int i = 0; i < 1_000; i++) {
            ticker.advance(Duration.ofNanos(1_500));
        }
        assertThat(ticker.epochMicros() - start).isEqualTo(1_500L);
        ticker.advance(Duration.ofNanos(399));
        assertThat(ticker.epochMicros() - start).isEqualTo(1_500L);
        ticker.advance(Duration.ofNanos(1)); // with the 600 ns the clock began with: a whole microsecond
        assertThat(ticker.epochMicros() - start).isEqualTo(1_501L);
        ticker.set(Instant.parse("2026-03-01T12:00:00.000000999Z")).advance(Duration.ofNanos(1));
        assertThat(ticker.epochMicros()).isEqualTo(start + 1);
    }

    @Test
    void manual_aStepPastTheEndOfTime_isRefusedAndLeavesTheClockWhereItWas() {
        ManualTicker ticker = ManualTicker.create();
        long start = ticker.epochMicros();

        // Each step fits a long on its own; the sum would wrap to a time before 1970.
        assertThatThrownBy(() -> ticker.advanceMicros(Long.MAX_VALUE)).isInstanceOf(ArithmeticException.class);
        assertThatThrownBy(() -> ticker.advance(Duration.ofSeconds(Long.MAX_VALUE / 1_000_000L)))
                .isInstanceOf(ArithmeticException.class);
        assertThat(ticker.epochMicros()).isEqualTo(start);

        ticker.advanceMicros(Long.MAX_VALUE - start);
        assertThat(ticker.epochMicros()).as("up to the last microsecond").isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void manual_rejectsNegativeSteps() {
        ManualTicker ticker = ManualTicker.create();
        assertThatThrownBy(() -> ticker.advance(Duration.ofSeconds(-1)))
                .hasMessage("duration must not be negative but was PT-1S");
        assertThatThrownBy(() -> ticker.advanceMicros(-1)).hasMessage("delta must not be negative but was -1");
        assertThatThrownBy(() -> ticker.advance(null)).hasMessage("duration must not be null");
    }
}
