package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): a decision's timeout counts from the moment it is asked for, also
 * when it first waits for an executor's thread ({@link JdbcStorage#evaluateAsync}), so that its stage ends within the
 * timeout however late the task starts. The deadlines are read off a clock moved by hand.
 */
class PostgresDecisionDeadlineServerTest {
    private static final long START = 1_700_000_000_000_000L;
    private static final Duration TIMEOUT = Duration.ofSeconds(2);

    private final String scope = "deadline-" + UUID.randomUUID();

    @Test
    void evaluateAsync_taskStartingOnlyOnceTheTimeoutHasPassed_failsUnsent_itsDeadlineCountingFromTheCall() {
        TestDatabase.POSTGRES.builder(); // the schema
        CountingDataSource counting = new CountingDataSource(TestDatabase.POSTGRES.dataSource());
        AtomicLong late = new AtomicLong();
        List<Runnable> queued = new ArrayList<>();
        List<Runnable> timers = new ArrayList<>();
        // The timer that gives up an unstarted task is late (its thread busy), and never runs here.
        try (JdbcStorage storage = queued(
                JdbcStorage.builder(counting).table(TestDatabase.TABLE).sweepInterval(Duration.ZERO),
                queued,
                timers,
                late)) {
            CompletableFuture<BatchResult> stage = oneToken(storage);
            // The executor starts the task once the whole timeout has passed since the call.
            late.addAndGet(TIMEOUT.toNanos());
            counting.reset();

            queued.forEach(Runnable::run);

            assertThat(stage).isCompletedExceptionally();
            assertThatThrownBy(stage::join)
                    .cause()
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessage("jdbc evaluate failed: timed out waiting for a call");
            assertThat(counting.total())
                    .as("statements and transaction control sent")
                    .isZero();
            assertThat(timers).hasSize(1);
            // Nothing was consumed.
            assertThat(storage.acquire(keyOf(scope), BUCKET, 1, START)).isEqualTo(Outcome.admitted(0));
        }
    }

    /** A task that starts with time left decides, and the timer then changes nothing. */
    @Test
    void evaluateAsync_taskStartingWithTimeLeft_decides() {
        AtomicLong late = new AtomicLong();
        List<Runnable> queued = new ArrayList<>();
        List<Runnable> timers = new ArrayList<>();
        try (JdbcStorage storage = queued(TestDatabase.POSTGRES.builder(), queued, timers, late)) {
            CompletableFuture<BatchResult> stage = oneToken(storage);
            late.addAndGet(TIMEOUT.toNanos() / 4);

            queued.forEach(Runnable::run);
            timers.forEach(Runnable::run);

            assertThat(stage.join()).isEqualTo(BatchResult.of(Outcome.admitted(0)));
        }
    }

    private static final TokenBucket BUCKET = new TokenBucket(1, 1, Duration.ofHours(1));

    private static StateKey keyOf(String scope) {
        return new StateKey(scope, "user");
    }

    /**
     * A storage from {@code b} whose executor queues its tasks in {@code queued}, whose give-up timers queue in {@code
     * timers}, and whose deadlines are counted on a clock {@code late} ahead of {@link System#nanoTime()}.
     */
    private static JdbcStorage queued(
            JdbcStorage.Builder b, List<Runnable> queued, List<Runnable> timers, AtomicLong late) {
        return b.timeout(TIMEOUT)
                .executor(queued::add)
                .delay(nanos -> timers::add)
                .nanoClock(() -> System.nanoTime() + late.get())
                .build();
    }

    /** The stage of an asynchronous decision for one token of {@link #BUCKET} at this test's key. */
    private CompletableFuture<BatchResult> oneToken(JdbcStorage storage) {
        return storage.evaluateAsync(Batch.of(new Step(keyOf(scope), BUCKET, 1)), START)
                .toCompletableFuture();
    }
}
