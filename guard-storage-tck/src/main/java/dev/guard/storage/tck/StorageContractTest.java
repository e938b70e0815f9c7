package dev.guard.storage.tck;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The storage contract suite: every {@link Storage} backend's test extends this class and supplies {@link #open()}.
 * The suite proves the semantics of every limit kind against hand-computed values, all-or-nothing batches, a race
 * that must admit exactly the limit, a differential test against {@link dev.guard.spi.ReferenceStorage}, expiry,
 * {@code forget}, records, keys of any content and argument checks.
 *
 * <pre>{@code
 * class MyStorageTest extends StorageContractTest {
 *     @Override
 *     protected Storage open() {
 *         return MyStorage.connect(...);
 *     }
 * }
 * }</pre>
 *
 * <p>Every test works under a fresh random scope prefix and random subjects, so tests that share one real server
 * (or run at the same time) never see each other's keys and nothing needs cleaning up. Time is explicit: each test
 * passes {@code nowMicros} from a {@link ManualTicker}, so a backend must not read a clock of its own for these
 * decisions.
 */
public abstract class StorageContractTest {
    private final List<Storage> opened = new ArrayList<>();
    private final String prefix = "tck-" + UUID.randomUUID() + "/";

    /** The storage under test, opened before each test by {@link #open()}. */
    protected Storage storage;

    /** The test's clock, at 2026-01-01T00:00:00Z when a test starts; tests move it. */
    protected ManualTicker ticker;

    /**
     * Opens a client over the backend under test. Called once before each test, and again by tests that need several
     * clients sharing one backend: all of them must see the same state. The suite closes every storage it opened.
     */
    protected abstract Storage open();

    /** How many threads the race runs; backends over a network may want fewer. */
    protected int raceThreads() {
        return 8;
    }

    /** How many clients (from {@link #open()}) the race's threads share, round-robin. */
    protected int raceClients() {
        return 2;
    }

    /** How many requests each thread of the race makes. */
    protected int raceRequestsPerThread() {
        return 200;
    }

    /** How many random seeds the differential test runs. */
    protected int differentialSeeds() {
        return 6;
    }

    /** How many batches each seed of the differential test evaluates. */
    protected int differentialBatches() {
        return 1_500;
    }

    @BeforeEach
    final void openStorage() {
        ticker = ManualTicker.create();
        storage = openClient();
    }

    @AfterEach
    final void closeStorages() {
        RuntimeException failure = null;
        for (Storage s : opened) {
            try {
                s.close();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        opened.clear();
        if (failure != null) {
            throw failure;
        }
    }

    /** Opens one more client over the same backend; the suite closes it after the test. */
    protected final Storage openClient() {
        Storage s = open();
        assertThat(s).as("open()").isNotNull();
        opened.add(s);
        return s;
    }

    /** A key in this test's private namespace: scope {@code name} under the test's prefix, a random subject. */
    protected final StateKey key(String name) {
        return new StateKey(prefix + name, "user-" + UUID.randomUUID());
    }

    /** A key in this test's private namespace with the given subject (which should be unique to the test). */
    protected final StateKey key(String name, String subject) {
        return new StateKey(prefix + name, subject);
    }

    /** The current time of {@link #ticker}. */
    protected final long now() {
        return ticker.epochMicros();
    }

    private long acquire(StateKey key, LimitSpec spec, long permits) {
        return storage.acquire(key, spec, permits, now());
    }

    private BatchResult evaluate(Step... steps) {
        return storage.evaluate(Batch.of(steps), now());
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Token bucket

    @Test
    void tokenBucket_newKey_admitsBurstUpToCapacityThenRejectsWithRetryAfter() {
        // 3 tokens, one token per second: a token costs 1_000_000 ticks, one tick per microsecond.
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(2));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(1));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(1_000_000));

        ticker.advance(Duration.ofMillis(400));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(600_000));

        ticker.advance(Duration.ofMillis(600));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(1_000_000));
    }

    @Test
    void tokenBucket_fractionalRate_refillsWithoutRoundingDrift() {
        // 3 tokens per second: one token every 333_333 1/3 microseconds.
        TokenBucket bucket = new TokenBucket(10, 3, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 10)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_334));

        ticker.advanceMicros(1);
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_333));

        // After exactly one second three whole tokens are back, not two and not four.
        ticker.advanceMicros(999_999);
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));
        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.rejected(333_334));
    }

    @Test
    void tokenBucket_moreThanCapacity_isNeverAdmitted() {
        TokenBucket bucket = new TokenBucket(5, 5, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 6)).isEqualTo(Outcome.NEVER);
        // The rejection consumed nothing: the whole burst is still there.
        assertThat(acquire(k, bucket, 5)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void tokenBucket_zeroPermits_looksWithoutConsuming() {
        TokenBucket bucket = new TokenBucket(4, 1, Duration.ofSeconds(1));
        StateKey k = key("bucket");

        assertThat(acquire(k, bucket, 1)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 0)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 0)).isEqualTo(Outcome.admitted(3));
        assertThat(acquire(k, bucket, 3)).isEqualTo(Outcome.admitted(0));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // All-or-nothing

    @Test
    void evaluate_duplicateRejected_consumesNoTokenFromBucket() {
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofMinutes(1));
        Cooldown duplicate = new Cooldown(Duration.ofSeconds(10));
        StateKey bucketKey = key("bucket");
        StateKey textKey = key("duplicate");

        BatchResult first = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(first.admitted()).isTrue();
        assertThat(first).isEqualTo(BatchResult.of(Outcome.admitted(4), Outcome.admitted(0)));

        ticker.advance(Duration.ofSeconds(1));
        BatchResult copy = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(copy.admitted()).isFalse();
        assertThat(copy.firstRejected()).isEqualTo(1);
        // Each outcome is computed against the state before the batch; the bucket would have admitted.
        assertThat(copy).isEqualTo(BatchResult.of(Outcome.admitted(3), Outcome.rejected(9_000_000)));

        // The bucket still holds 4 tokens (plus 1/60 of a token refilled over that second, below one token).
        assertThat(acquire(bucketKey, bucket, 0)).isEqualTo(Outcome.admitted(4));
    }

    @Test
    void evaluate_bucketRejected_doesNotMarkDuplicateAsSeen() {
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofMinutes(1));
        Cooldown duplicate = new Cooldown(Duration.ofSeconds(10));
        StateKey bucketKey = key("bucket");

        assertThat(acquire(bucketKey, bucket, 1)).isEqualTo(Outcome.admitted(0));

        StateKey textKey = key("duplicate");
        BatchResult throttled = evaluate(new Step(bucketKey, bucket, 1), new Step(textKey, duplicate, 1));
        assertThat(throttled).isEqualTo(BatchResult.of(Outcome.rejected(60_000_000), Outcome.admitted(0)));
        assertThat(throttled.firstRejected()).isZero();

        // The text was not marked as seen: it passes on its own.
        assertThat(acquire(textKey, duplicate, 1)).isEqualTo(Outcome.admitted(0));
    }

    @Test
    void evaluate_allStepsAdmit_consumesInEveryStep() {
        TokenBucket perUser = new TokenBucket(3, 1, Duration.ofMinutes(1));
        TokenBucket global = new TokenBucket(10, 1, Duration.ofMinutes(1));
        StateKey userKey = key("user");
        StateKey globalKey = key("global", StateKey.GLOBAL);

        assertThat(evaluate(new Step(userKey, perUser, 2), new Step(globalKey, global, 2)))
                .isEqualTo(BatchResult.of(Outcome.admitted(1), Outcome.admitted(8)));
        assertThat(evaluate(new Step(userKey, perUser, 2), new Step(globalKey, global, 2)))
                .isEqualTo(BatchResult.of(Outcome.rejected(60_000_000), Outcome.admitted(6)));
        assertThat(acquire(globalKey, global, 0)).isEqualTo(Outcome.admitted(8));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Fast paths and health

    @Test
    void acquire_agreesWithOneStepEvaluate() {
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        StateKey viaAcquire = key("acquire");
        StateKey viaEvaluate = key("evaluate");
        for (int i = 0; i < 6; i++) {
            long a = acquire(viaAcquire, bucket, 1);
            long e = evaluate(new Step(viaEvaluate, bucket, 1)).outcome(0);
            assertThat(a).as("request %d", i).isEqualTo(e);
            ticker.advance(Duration.ofMillis(300));
        }
    }

    @Test
    void health_isUp() {
        assertThat(storage.health().up()).isTrue();
    }
}
