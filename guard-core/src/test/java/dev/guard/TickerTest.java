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
        String past = " (the clock, at 2026-01-01T00:00:00Z, would pass +294247-01-10T04:00:54.775807Z,"
                + " Long.MAX_VALUE microseconds from the epoch)";

        // Each step fits a long on its own; the sum would wrap to a time before 1970.
        assertThatThrownBy(() -> ticker.advanceMicros(Long.MAX_VALUE))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("delta is too long: " + Long.MAX_VALUE + past);
        Duration nearlyAllOfALong = Duration.ofSeconds(Long.MAX_VALUE / 1_000_000L);
        assertThatThrownBy(() -> ticker.advance(nearlyAllOfALong))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duration is too long: " + nearlyAllOfALong + past);
        // These do not fit a long of microseconds at all.
        Duration longest = Duration.ofSeconds(Long.MAX_VALUE);
        assertThatThrownBy(() -> ticker.advance(longest))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duration is too long: " + longest + past);
        Duration eons = Duration.ofDays(365L * 300_000);
        assertThatThrownBy(() -> ticker.advance(eons))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("duration is too long: PT2628000000H" + past);
        assertThat(ticker.epochMicros()).isEqualTo(start);

        ticker.advanceMicros(Long.MAX_VALUE - start);
        assertThat(ticker.epochMicros()).as("up to the last microsecond").isEqualTo(Long.MAX_VALUE);
        assertThatThrownBy(() -> ticker.advanceMicros(1)).isInstanceOf(IllegalArgumentException.class);
        ticker.advance(Duration.ofNanos(999)); // below a microsecond: kept, the clock stays
        assertThatThrownBy(() -> ticker.advance(Duration.ofNanos(1)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("duration is too long: PT0.000000001S (the clock, at "
                        + "+294247-01-10T04:00:54.775807Z, would pass");
        assertThat(ticker.epochMicros()).isEqualTo(Long.MAX_VALUE);

        // A refused step keeps none of its nanoseconds either: the 999 carried here still make a microsecond with 1.
        ManualTicker carrying = ManualTicker.at(Instant.parse("2026-01-01T00:00:00.000000999Z"));
        assertThatThrownBy(() -> carrying.advance(Duration.ofSeconds(Long.MAX_VALUE, 500)))
                .isInstanceOf(IllegalArgumentException.class);
        carrying.advance(Duration.ofNanos(1));
        assertThat(carrying.epochMicros()).isEqualTo(start + 1);
    }

    @Test
    void manual_anInstantOutsideTheMicrosecondsOfALong_isRefusedAndLeavesTheClockWhereItWas() {
        String range = " must be between Long.MIN_VALUE and Long.MAX_VALUE microseconds from the epoch"
                + " (-290308-12-21T19:59:05.224192Z to +294247-01-10T04:00:54.775807Z) but was ";

        assertThatThrownBy(() -> ManualTicker.at(Instant.MAX))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("instant" + range + Instant.MAX);
        assertThatThrownBy(() -> ManualTicker.at(Instant.MIN))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("instant" + range + Instant.MIN);
        ManualTicker ticker = ManualTicker.create();
        long start = ticker.epochMicros();
        Instant pastTheEnd = Instant.parse("+294247-01-10T04:00:54.775808Z");
        assertThatThrownBy(() -> ticker.set(pastTheEnd))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("instant" + range + pastTheEnd);
        assertThat(ticker.epochMicros()).isEqualTo(start);
        assertThatThrownBy(() -> ticker.set(null)).hasMessage("instant must not be null");
    }

    @Test
    void manual_readsTheFirstAndLastMicrosecondsOfALong() {
        Instant first = Instant.parse("-290308-12-21T19:59:05.224192Z");
        Instant last = Instant.parse("+294247-01-10T04:00:54.775807999Z");

        assertThat(ManualTicker.at(first).epochMicros()).isEqualTo(Long.MIN_VALUE);
        assertThat(ManualTicker.at(first).now()).isEqualTo(first);
        assertThat(ManualTicker.at(first.plusNanos(1_999)).epochMicros()).isEqualTo(Long.MIN_VALUE + 1);
        assertThat(ManualTicker.at(last).epochMicros()).isEqualTo(Long.MAX_VALUE);
        assertThat(ManualTicker.create()
                        .set(Instant.parse("1969-12-31T23:59:59.999999Z"))
                        .epochMicros())
                .isEqualTo(-1);
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
