package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.ManualTicker;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.StateKey;
import java.time.Duration;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;

/** The builder's checks, null arguments, and what close does. */
class MemoryStorageArgumentsTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    private final MemoryStorage storage = MemoryStorage.create();
    private final StateKey key = new StateKey("limit", "user-1");
    private final TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));

    @Test
    void builder_negativeInitialCapacity_isRejectedWithMessage() {
        assertThatThrownBy(() -> MemoryStorage.builder().initialCapacity(-1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("initialCapacity must not be negative but was -1");
    }

    @Test
    void builder_nullExecutor_isRejectedWithMessage() {
        assertThatThrownBy(() -> MemoryStorage.builder().executor(null))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("executor must not be null");
    }

    @Test
    void builder_settings_buildAWorkingStorage() {
        MemoryStorage built = MemoryStorage.builder()
                .initialCapacity(0)
                .executor(Runnable::run)
                .build();

        assertThat(built.acquire(key, bucket, 1, T0)).isEqualTo(Outcome.admitted(1));
    }

    private static void assertNullRejected(ThrowingCallable call, String message) {
        assertThatThrownBy(call).isInstanceOf(NullPointerException.class).hasMessage(message);
    }

    @Test
    void nullArguments_areRejectedWithMessages() {
        assertNullRejected(() -> storage.acquire(null, bucket, 1, T0), "key must not be null");
        assertNullRejected(() -> storage.acquire(key, null, 1, T0), "spec must not be null");
        assertNullRejected(() -> storage.evaluate(null, T0), "batch must not be null");
        assertNullRejected(() -> storage.raiseGate(null, T0, T0), "key must not be null");
        assertNullRejected(() -> storage.addMember(null, T0, T0), "key must not be null");
        assertNullRejected(() -> storage.removeMember(null), "key must not be null");
        assertNullRejected(() -> storage.isMember(null, T0), "key must not be null");
        assertNullRejected(() -> storage.getRecord(null), "key must not be null");
        assertNullRejected(() -> storage.putRecord(null, new byte[0], 0), "key must not be null");
        assertNullRejected(() -> storage.putRecord(key, null, 0), "value must not be null");
        assertNullRejected(() -> storage.forget(null), "subject must not be null");
        assertThat(storage.estimatedSize()).isZero();
    }

    @Test
    void close_dropsStateAndLeavesStorageUsable() {
        storage.acquire(key, bucket, 2, T0);
        storage.putRecord(new StateKey("record", "user-1"), new byte[] {1}, 0);

        storage.close();
        storage.close();

        assertThat(storage.estimatedSize()).isZero();
        assertThat(storage.acquire(key, bucket, 2, T0)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void health_reportsUpWithSubjectCount() {
        storage.acquire(key, bucket, 1, T0);

        assertThat(storage.health().up()).isTrue();
        assertThat(storage.health().detail()).isEqualTo("memory, 1 subjects");
    }
}
