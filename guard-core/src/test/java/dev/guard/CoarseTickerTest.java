package dev.guard;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The cached clock driven by hand: manual time sources, and this test in the place of the ticking thread. */
class CoarseTickerTest {
    private static final long START_NANOS = 7_000_000_000L;
    /** 2026-01-01T00:00:00Z. */
    private static final long START_MILLIS = 1_767_225_600_000L;

    private static final long START_MICROS = START_MILLIS * 1_000L;
    private static final long MS = 1_000_000L;
    private static final long IDLE = CoarseTicker.IDLE_NANOS;

    private final AtomicLong nanos = new AtomicLong(START_NANOS);
    /** How far the wall clock was set, in milliseconds; otherwise it follows nanoTime at millisecond granularity. */
    private final AtomicLong wallStep = new AtomicLong();

    private final AtomicInteger wakes = new AtomicInteger();
    private CoarseTicker ticker;

    @BeforeEach
    void setUp() {
        PreciseTicker source =
                new PreciseTicker(nanos::get, () -> START_MILLIS + (nanos.get() - START_NANOS) / MS + wallStep.get());
        ticker = new CoarseTicker(source, wakes::incrementAndGet);
    }

    private void elapse(long deltaNanos) {
        nanos.addAndGet(deltaNanos);
    }

    @Test
    void firstRead_computesTheTimeItselfAndWakesTheThread() {
        elapse(3 * MS + 456_000);

        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 3_456);
        assertThat(wakes).hasValue(1);
    }

    @Test
    void read_whenNoThreadCanStart_rethrowsAndLeavesTheClockStaleForTheNextRead() {
        PreciseTicker source =
                new PreciseTicker(nanos::get, () -> START_MILLIS + (nanos.get() - START_NANOS) / MS + wallStep.get());
        AtomicInteger attempts = new AtomicInteger();
        CoarseTicker failing = new CoarseTicker(source, () -> {
            if (attempts.incrementAndGet() == 1) {
                throw new OutOfMemoryError("unable to create native thread");
            }
        });

        assertThatThrownBy(failing::epochMicros).isInstanceOf(OutOfMemoryError.class);
        assertThat(failing.isStale()).isTrue();
        elapse(5 * MS);

        // Not frozen at the first value: the next read computes the time and starts a thread.
        assertThat(failing.epochMicros()).isEqualTo(START_MICROS + 5_000);
        assertThat(attempts).hasValue(2);
        assertThat(failing.isStale()).isFalse();
    }

    @Test
    void reads_betweenTicks_returnTheCachedValueWithoutWaking() {
        ticker.epochMicros();
        elapse(700_000);

        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS);
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS);
        assertThat(wakes).hasValue(1);
    }

    @Test
    void tick_publishesTheCurrentTime() {
        ticker.epochMicros();
        elapse(MS + 37_000);

        assertThat(ticker.tick()).isTrue();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 1_037);
        elapse(MS);
        assertThat(ticker.tick()).isTrue();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 2_037);
        assertThat(wakes).hasValue(1);
    }

    @Test
    void tick_onAStaleClock_publishesNothingAndAsksTheThreadToEnd() {
        elapse(5 * MS);

        assertThat(ticker.tick()).isFalse();
        assertThat(wakes).hasValue(0);
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 5_000);
    }

    @Test
    void tick_aSecondWithoutReads_stopsTheClock() {
        ticker.epochMicros();
        // The check at 1 s finds the first read and clears its mark; nothing reads in the second after it.
        for (int ms = 1; ms <= 1_999; ms++) {
            elapse(MS);
            assertThat(ticker.tick()).as("tick at %d ms", ms).isTrue();
        }
        elapse(MS);

        assertThat(ticker.tick()).isFalse();
        assertThat(ticker.tick()).isFalse();
        assertThat(wakes).hasValue(1);
    }

    @Test
    void tick_oneReadInTheSecond_keepsTheClockRunning() {
        ticker.epochMicros();
        elapse(IDLE);
        assertThat(ticker.tick()).isTrue();
        elapse(IDLE - MS);
        assertThat(ticker.tick()).isTrue();
        ticker.epochMicros();
        elapse(MS);

        assertThat(ticker.tick()).isTrue();
        elapse(IDLE);
        assertThat(ticker.tick()).isFalse();
    }

    @Test
    void staleRead_computesThePreciseTimePublishesItAndWakes() {
        ticker.epochMicros();
        elapse(IDLE);
        ticker.tick();
        elapse(IDLE);
        assertThat(ticker.tick()).isFalse();
        elapse(5 * IDLE + 123_000);

        long micros = ticker.epochMicros();

        assertThat(micros).isEqualTo(START_MICROS + 7_000_000);
        assertThat(wakes).hasValue(2);
        // Published: the next read takes it without computing or waking, and the woken thread ticks on from it.
        elapse(400_000);
        assertThat(ticker.epochMicros()).isEqualTo(micros);
        assertThat(wakes).hasValue(2);
        elapse(MS);
        assertThat(ticker.tick()).isTrue();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 7_001_400);
    }

    @Test
    void tick_wallClockSetBack_holdsTheValueUntilItCatchesUp() {
        ticker.epochMicros();
        elapse(2 * MS);
        ticker.tick();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 2_000);
        // The wall clock steps back 5 s; the next calibration, a second on, takes the new offset.
        wallStep.set(-5_000);
        elapse(IDLE);

        assertThat(ticker.tick()).isTrue();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 2_000);
        elapse(4 * MS);
        ticker.tick();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 2_000);
        // Caught up: 5.006 s after the start, less the 5 s step.
        elapse(4 * IDLE);
        ticker.tick();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 6_000);
    }

    @Test
    void staleRead_wallClockSetBack_neverGoesBehindTheLastPublishedTime() {
        ticker.epochMicros();
        elapse(IDLE);
        ticker.tick();
        elapse(IDLE);
        assertThat(ticker.tick()).isFalse();
        wallStep.set(-60_000);
        elapse(IDLE);

        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 1_000_000);
        assertThat(wakes).hasValue(2);
        elapse(MS);
        assertThat(ticker.tick()).isTrue();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 1_000_000);
    }

    @Test
    void stop_makesTheNextReadComputeTheTimeAndWakeANewThread() {
        ticker.epochMicros();
        elapse(3 * MS);
        ticker.tick();

        ticker.stop();
        elapse(2 * MS);

        assertThat(ticker.tick()).isFalse();
        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 5_000);
        assertThat(wakes).hasValue(2);
    }

    @Test
    void stop_wallClockSetBack_keepsTheLastPublishedTimeAsTheFloor() {
        ticker.epochMicros();
        elapse(3 * MS);
        ticker.tick();
        ticker.stop();
        wallStep.set(-60_000);
        elapse(IDLE);

        assertThat(ticker.epochMicros()).isEqualTo(START_MICROS + 3_000);
    }

    @Test
    void precise_followsNanoTimeAndRecalibratesEverySecond() {
        PreciseTicker precise =
                new PreciseTicker(nanos::get, () -> START_MILLIS + (nanos.get() - START_NANOS) / MS + wallStep.get());
        elapse(1_234_567);
        assertThat(precise.epochMicros()).isEqualTo(START_MICROS + 1_234);
        wallStep.set(-7);
        elapse(IDLE - 1_234_567 - 1);
        assertThat(precise.epochMicros()).isEqualTo(START_MICROS + 999_999);
        elapse(1);
        assertThat(precise.epochMicros()).isEqualTo(START_MICROS + 1_000_000 - 7_000);
    }

    /**
     * A thread held up between its nanoTime read and the wall clock's (a GC pause; the coarse clock's ticking thread
     * calibrates the shared precise clock) must not put the offset ahead by the pause, which the next calibration,
     * a second later, would take back: the clock would go backwards without any step of the wall clock.
     */
    @Test
    void precise_aThreadHeldUpWhileItCalibrates_doesNotMakeTheClockGoBackAtTheNextCalibration() {
        long startNanos = 7_000_000_000L;
        long startMillis = 1_767_225_600_000L;
        AtomicLong nanos = new AtomicLong(startNanos);
        AtomicBoolean pauseAtNextWallRead = new AtomicBoolean();
        long pauseNanos = 50_000_000L; // a 50 ms GC pause
        PreciseTicker ticker = new PreciseTicker(nanos::get, () -> {
            if (pauseAtNextWallRead.getAndSet(false)) {
                nanos.addAndGet(pauseNanos); // the thread was stopped for 50 ms right before reading the wall clock
            }
            // A wall clock that is never adjusted: it follows nanoTime exactly, in milliseconds.
            return startMillis + (nanos.get() - startNanos) / 1_000_000L;
        });

        nanos.addAndGet(1_000_000_000L); // the first calibration is a second old: the next read recalibrates
        pauseAtNextWallRead.set(true);
        ticker.epochMicros();
        nanos.addAndGet(949_000_000L); // 999 ms after the calibration's nanoTime (8 s), 1 ms before the next one
        long before = ticker.epochMicros(); // still on the calibration taken around the pause
        nanos.addAndGet(1_000_000L); // one more millisecond: recalibrates, without a pause this time
        long after = ticker.epochMicros();

        assertThat(after).as("read 1 ms after a read of %d", before).isGreaterThanOrEqualTo(before);
    }
}
