package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): decisions of one token bucket each, on distinct keys, that share
 * a call (as the storage sends the decisions that waited while other calls were in flight) are one plain {@code
 * UPDATE} of their rows, each row updated or not on its own; what it leaves (rejections, first touches, keys holding
 * something else) goes to the evaluate function after it. Either way each decision is the reference's.
 */
class PostgresLoneBucketsServerTest {
    private static final long START = 1_700_000_000_000_000L;
    private static final TokenBucket BUCKET = new TokenBucket(5, 1, Duration.ofMinutes(1));

    private final String scope = "lone-buckets-" + UUID.randomUUID();
    private final CountingDataSource counting = new CountingDataSource(TestDatabase.POSTGRES.dataSource());

    private JdbcStorage storage() {
        TestDatabase.POSTGRES.builder(); // the schema
        return JdbcStorage.builder(counting)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .build();
    }

    private StateKey key(String name) {
        return new StateKey(scope, name);
    }

    /** Decides {@code batches} as one shared call, and each through the reference one after the other; compares. */
    private static void together(JdbcStorage storage, ReferenceStorage reference, List<Batch> batches, long[] nows) {
        List<long[]> together = storage.evaluateTogether(batches, nows);
        for (int d = 0; d < batches.size(); d++) {
            assertThat(BatchResult.of(together.get(d)))
                    .as("decision %s of %s: %s at %s", d, batches.size(), batches.get(d), nows[d])
                    .isEqualTo(reference.evaluate(batches.get(d), nows[d]));
        }
    }

    @Test
    void sharedCall_oneBucketEachOnRowsThatAdmit_isOnePlainUpdate() {
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            List<Batch> group = new ArrayList<>();
            long[] nows = new long[4];
            for (int d = 0; d < 4; d++) {
                StateKey key = key("user-" + d);
                assertThat(storage.acquire(key, BUCKET, 1, START)).isEqualTo(reference.acquire(key, BUCKET, 1, START));
                group.add(Batch.of(new Step(key, BUCKET, 1 + d % 2)));
                nows[d] = START + 1_000 * d;
            }
            counting.reset();

            together(storage, reference, group, nows);

            assertThat(counting.executions.get()).isEqualTo(1);
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .startsWith("UPDATE ")
                    .doesNotContain("_evaluate(");
        }
    }

    @Test
    void sharedCall_rejectionsFirstTouchesAndOtherState_goToTheFunctionAfterTheUpdate() {
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            StateKey admits = key("admits");
            StateKey empty = key("empty");
            StateKey fresh = key("fresh");
            StateKey member = key("member");
            assertThat(storage.acquire(admits, BUCKET, 1, START))
                    .isEqualTo(reference.acquire(admits, BUCKET, 1, START));
            assertThat(storage.acquire(empty, BUCKET, 5, START)).isEqualTo(reference.acquire(empty, BUCKET, 5, START));
            storage.addMember(member, START + 60_000_000, START);
            reference.addMember(member, START + 60_000_000, START);
            counting.reset();

            List<Batch> group = List.of(
                    Batch.of(new Step(admits, BUCKET, 1)),
                    Batch.of(new Step(empty, BUCKET, 1)),
                    Batch.of(new Step(fresh, BUCKET, 2)),
                    Batch.of(new Step(member, BUCKET, 1)));
            long[] nows = {START + 10, START + 10, START + 10, START + 10};
            together(storage, reference, group, nows);

            assertThat(counting.preparedStatements).hasSize(2);
            assertThat(counting.preparedStatements.get(0)).startsWith("UPDATE ");
            assertThat(counting.preparedStatements.get(1)).contains("_evaluate(");
            // What the UPDATE left stayed as it was: the empty bucket still rejects, the member is still one.
            assertThat(Outcome.isAdmitted(storage.acquire(empty, BUCKET, 1, START + 20)))
                    .isFalse();
            assertThat(storage.acquire(member, Membership.MUST_BE_PRESENT, 1, START + 20))
                    .isEqualTo(reference.acquire(member, Membership.MUST_BE_PRESENT, 1, START + 20));
        }
    }

    /**
     * The UPDATE waits for a row locked elsewhere a quarter of its time at most, as the function does for a shared call,
     * then fails having committed nothing (its decisions then go again alone, only the one that needs the row waiting
     * for it), rather than holding every decision of the call until the deadline.
     */
    @Test
    void sharedCall_onARowLockedElsewhere_failsAtItsLockTimeoutAndCommitsNothing() throws SQLException {
        TestDatabase.POSTGRES.builder(); // the schema
        try (JdbcStorage storage = JdbcStorage.builder(counting)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .timeout(Duration.ofMillis(800))
                .build()) {
            StateKey hot = key("hot");
            StateKey cold = key("cold");
            assertThat(storage.acquire(hot, BUCKET, 1, START)).isEqualTo(Outcome.admitted(4));
            assertThat(storage.acquire(cold, BUCKET, 1, START)).isEqualTo(Outcome.admitted(4));
            try (Connection other = PostgresSharedCallServerTest.lockingRowOf(hot)) {
                counting.reset();
                List<Batch> group = List.of(Batch.of(new Step(cold, BUCKET, 1)), Batch.of(new Step(hot, BUCKET, 1)));

                assertThatThrownBy(() -> storage.evaluateTogether(group, new long[] {START, START}))
                        .isInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("sqlstate 55P03");
                assertThat(counting.preparedStatements)
                        .singleElement(InstanceOfAssertFactories.STRING)
                        .startsWith("UPDATE ");
                other.rollback();
            }
            // The cold decision of the failed call was not committed.
            assertThat(storage.acquire(cold, BUCKET, 1, START)).isEqualTo(Outcome.admitted(3));
        }
    }

    @Test
    void sharedCalls_randomGroupsOfOneBucketEach_decideAsTheReferenceDoesOneAfterTheOther() {
        Random random = new Random(20261206L);
        List<TokenBucket> buckets = List.of(
                BUCKET, new TokenBucket(2, 1, Duration.ofMillis(200)), new TokenBucket(8, 4, Duration.ofSeconds(1)));
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            List<StateKey> keys = new ArrayList<>();
            for (int k = 0; k < 8; k++) {
                keys.add(key("k" + k));
            }
            long now = START;
            int updates = 0;
            for (int call = 0; call < 300; call++) {
                PostgresSharedCallServerTest.landNowAndThen(random, 20, storage, reference, keys, now, call);
                // Two to six decisions, on distinct keys but now and then one twice (then the function decides all).
                List<StateKey> shuffled = new ArrayList<>(keys);
                Collections.shuffle(shuffled, random);
                int decisions = 2 + random.nextInt(5);
                List<Batch> batches = new ArrayList<>();
                long[] nows = new long[decisions];
                for (int d = 0; d < decisions; d++) {
                    now = PostgresSharedCallServerTest.movedOn(random, now);
                    nows[d] = now;
                    StateKey k = random.nextInt(15) == 0 && d > 0
                            ? batches.get(0).steps().get(0).key()
                            : shuffled.get(d);
                    // Mostly the key's own bucket, sometimes another one (a filter changed: state of another shape).
                    TokenBucket bucket = buckets.get(random.nextInt(8) == 0 ? random.nextInt(3) : keys.indexOf(k) % 3);
                    batches.add(Batch.of(new Step(k, bucket, 1 + random.nextInt((int) bucket.capacity()))));
                }
                counting.reset();
                together(storage, reference, batches, nows);
                updates += counting.preparedStatements.stream().anyMatch(sql -> sql.startsWith("UPDATE ")) ? 1 : 0;
            }
            assertThat(updates).as("calls that sent the plain UPDATE").isGreaterThan(100);
        }
    }

    /**
     * Eight threads, each deciding one bucket at a time on six keys, calls shared two at a time: each key admits exactly
     * its capacity, however the shared UPDATEs and the function's calls met on its row.
     */
    @Test
    void eightThreads_oneBucketEachOnSixKeys_admitExactlyEachCapacity() throws Exception {
        TokenBucket bucket = new TokenBucket(40, 1, Duration.ofDays(1));
        ExecutorService threads = Executors.newFixedThreadPool(8);
        try (JdbcStorage storage = storage()) {
            List<Callable<int[]>> work = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                work.add(() -> {
                    int[] admitted = new int[6];
                    for (int i = 0; i < 60; i++) {
                        int k = (thread + i) % 6;
                        if (Outcome.isAdmitted(storage.acquire(key("hot-" + k), bucket, 1, START))) {
                            admitted[k]++;
                        }
                    }
                    return admitted;
                });
            }
            int[] total = new int[6];
            for (Future<int[]> f : threads.invokeAll(work)) {
                int[] admitted = f.get(60, TimeUnit.SECONDS);
                for (int k = 0; k < 6; k++) {
                    total[k] += admitted[k];
                }
            }
            assertThat(total).containsOnly(40);
        } finally {
            threads.shutdownNow();
        }
    }
}
