package dev.guard.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.Decision;
import dev.guard.Guard;
import dev.guard.KeyBy;
import dev.guard.ManualTicker;
import dev.guard.limit.LimitSpec;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.junit.jupiter.api.Test;

class BreakerTest {
    private static final long NOW = 1_700_000_000_000_000L;

    @Test
    void opensAfterTheThreshold_thenLetsOneProbeThrough_andClosesOnItsSuccess() {
        Breaker breaker = new Breaker(2, 1_000);

        breaker.failure(NOW);
        assertThat(breaker.allows(NOW)).isTrue();
        breaker.failure(NOW);

        assertThat(breaker.isOpen(NOW)).isTrue();
        assertThat(breaker.allows(NOW + 999)).isFalse();
        assertThat(breaker.allows(NOW + 1_000)).as("the probe").isTrue();
        assertThat(breaker.allows(NOW + 1_000)).as("one probe only").isFalse();
        breaker.success();
        assertThat(breaker.isOpen(NOW + 1_000)).isFalse();
        assertThat(breaker.allows(NOW + 1_000)).isTrue();
    }

    @Test
    void waitMicros_isTheTimeUntilTheNextCallMayTryTheStorage() {
        Breaker breaker = new Breaker(2, 1_000);
        breaker.failure(NOW);
        assertThat(breaker.waitMicros(NOW)).as("closed").isZero();

        breaker.failure(NOW);
        assertThat(breaker.waitMicros(NOW)).isEqualTo(1_000);
        assertThat(breaker.waitMicros(NOW + 400)).isEqualTo(600);
        assertThat(breaker.waitMicros(NOW + 999)).isEqualTo(1);
        assertThat(breaker.waitMicros(NOW + 1_000)).as("the probe is due").isZero();
        assertThat(breaker.waitMicros(NOW - 2_001))
                .as("a clock set back past the pause")
                .isZero();
        assertThat(breaker.waitMicros(NOW - 500)).as("a clock a little behind").isEqualTo(1_500);
        // Asking lets no probe through.
        assertThat(breaker.allows(NOW + 1_000)).as("the probe").isTrue();
        assertThat(breaker.waitMicros(NOW + 1_000)).as("the probe under way").isEqualTo(1_000);
    }

    @Test
    void waitMicros_ofABreakerOpenUntilTheEndOfTime_readOnAClockBefore1970_saturates() {
        Breaker breaker = new Breaker(1, Long.MAX_VALUE);
        breaker.failure(NOW);
        assertThat(breaker.waitMicros(NOW)).isEqualTo(Long.MAX_VALUE - NOW);
        assertThat(breaker.waitMicros(-3_600_000_000L)).isEqualTo(Long.MAX_VALUE);
    }

    @Test
    void aFailureReportedLate_byACallThatBeganBeforeTheProbe_letsNoSecondProbeThrough() {
        Breaker breaker = new Breaker(1, 1_000);
        // Two calls go out while the breaker is closed; the first fails and opens it.
        assertThat(breaker.allows(NOW)).isTrue();
        assertThat(breaker.allows(NOW)).isTrue();
        breaker.failure(NOW);
        assertThat(breaker.allows(NOW + 1_000)).as("the probe").isTrue();

        // The second call fails while the probe is under way, reported at the time it began (as Guard reports).
        breaker.failure(NOW);

        assertThat(breaker.allows(NOW + 1_000)).as("a second probe at once").isFalse();
        assertThat(breaker.allows(NOW + 1_999)).isFalse();
        assertThat(breaker.isOpen(NOW + 1_999)).isTrue();
        assertThat(breaker.allows(NOW + 2_000))
                .as("the next probe, an open period after the first")
                .isTrue();
    }

    @Test
    void guard_callsInFlightThatFailAfterTheProbeWentOut_sendNoFurtherCallsToTheStorage() {
        PendingStorage storage = new PendingStorage();
        ManualTicker ticker = ManualTicker.create();
        Guard<Long> guard = Guard.<Long>builder()
                .storage(storage)
                .ticker(ticker)
                .userId(user -> user)
                .throttle("per-user", KeyBy.USER, 5, Duration.ofMinutes(1))
                .breaker(1, Duration.ofSeconds(1))
                .build();
        // Two messages wait on a storage that has stopped answering; the first times out and opens the breaker.
        guard.checkAsync(1L);
        guard.checkAsync(2L);
        storage.fail(0);
        ticker.advance(Duration.ofSeconds(1));
        guard.checkAsync(3L);
        assertThat(storage.calls).as("the probe").hasSize(3);

        // The second times out while the probe waits.
        storage.fail(1);
        Decision fourth = guard.checkAsync(4L).toCompletableFuture().getNow(null);

        assertThat(storage.calls).as("no second probe while the first waits").hasSize(3);
        assertThat(fourth).as("decided at once, without the storage").isNotNull();
        assertThat(fourth.degraded()).isTrue();
    }

    /** A storage whose asynchronous evaluations wait until the test fails them; nothing else is called. */
    private static final class PendingStorage implements Storage {
        final List<CompletableFuture<BatchResult>> calls = new ArrayList<>();

        void fail(int call) {
            calls.get(call).completeExceptionally(new GuardStorageException("test", "evaluate", "timed out", null));
        }

        @Override
        public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
            CompletableFuture<BatchResult> call = new CompletableFuture<>();
            calls.add(call);
            return call;
        }

        @Override
        public BatchResult evaluate(Batch batch, long nowMicros) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
            throw new UnsupportedOperationException();
        }

        @Override
        public boolean removeMember(StateKey key) {
            throw new UnsupportedOperationException();
        }

        @Override
        public boolean isMember(StateKey key, long nowMicros) {
            throw new UnsupportedOperationException();
        }

        @Override
        public Optional<VersionedRecord> getRecord(StateKey key) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long putRecord(StateKey key, byte[] value, long expectedVersion) {
            throw new UnsupportedOperationException();
        }

        @Override
        public long forget(String subject) {
            throw new UnsupportedOperationException();
        }

        @Override
        public StorageHealth health() {
            return StorageHealth.up(Duration.ZERO, "pending");
        }

        @Override
        public void close() {}
    }

    @Test
    void aClockSetBackByMoreThanTheOpenPeriod_letsTheProbeThrough_ratherThanRefusingUntilItCatchesUp() {
        Breaker breaker = new Breaker(1, 5_000_000);
        breaker.failure(NOW);
        long hourBack = NOW - 3_600_000_000L;

        assertThat(breaker.isOpen(hourBack)).isFalse();
        assertThat(breaker.allows(hourBack)).as("the probe").isTrue();
        assertThat(breaker.allows(hourBack)).as("one probe only").isFalse();
        assertThat(breaker.isOpen(hourBack + 1)).isTrue();
        assertThat(breaker.allows(hourBack + 5_000_000))
                .as("the next probe, on the clock set back")
                .isTrue();
    }

    @Test
    void aClockALittleBehind_asAThreadThatReadItBeforeAnotherReArmedTheBreaker_letsNoSecondProbeThrough() {
        Breaker breaker = new Breaker(1, 5_000_000);
        breaker.failure(NOW);
        assertThat(breaker.allows(NOW + 5_000_000)).as("the probe").isTrue();

        assertThat(breaker.allows(NOW + 1)).isFalse();
        assertThat(breaker.allows(NOW)).as("an open period behind the probe").isFalse();
        assertThat(breaker.isOpen(NOW)).isTrue();
    }

    @Test
    void aHugeOpenDuration_keepsTheBreakerOpen_ratherThanOverflowingIntoThePast() {
        Breaker breaker = new Breaker(1, Long.MAX_VALUE);

        breaker.failure(NOW);

        assertThat(breaker.isOpen(NOW)).isTrue();
        assertThat(breaker.allows(NOW)).isFalse();
        assertThat(breaker.allows(Long.MAX_VALUE - 1)).isFalse();
    }

    @Test
    void aProbeAtTheEndOfTime_doesNotOverflowEither() {
        Breaker breaker = new Breaker(1, 10);
        breaker.failure(Long.MAX_VALUE - 20);

        assertThat(breaker.allows(Long.MAX_VALUE - 5)).as("the probe").isTrue();
        assertThat(breaker.isOpen(Long.MAX_VALUE - 5)).isTrue();
        assertThat(breaker.allows(Long.MAX_VALUE - 1)).isFalse();
    }

    @Test
    void badArguments_nameTheValue() {
        assertThatThrownBy(() -> new Breaker(0, 1))
                .hasMessageContaining("threshold")
                .hasMessageContaining("0");
        assertThatThrownBy(() -> new Breaker(1, 0)).hasMessageContaining("0");
    }
}
