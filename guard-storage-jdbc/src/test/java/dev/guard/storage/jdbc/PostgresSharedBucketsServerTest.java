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
import java.util.function.IntFunction;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): decisions of token buckets alone, on keys that no two of their
 * steps share, that share a call (as the storage sends the decisions that waited while other calls were in flight) are
 * one plain {@code UPDATE} of their rows. Decisions of one bucket each are rows updated or not on its own, and what the
 * statement leaves (rejections, first touches, keys holding something else) goes to the evaluate function after it;
 * chains are all or nothing, the statement writing every row or none. Either way each decision is the reference's.
 */
class PostgresSharedBucketsServerTest {
    private static final long START = 1_700_000_000_000_000L;
    private static final TokenBucket BUCKET = new TokenBucket(5, 1, Duration.ofMinutes(1));

    private final String scope = "shared-buckets-" + UUID.randomUUID();
    private final CountingDataSource counting = new CountingDataSource(TestDatabase.POSTGRES.dataSource());

    private JdbcStorage storage() {
        return storage(Duration.ofSeconds(2)); // the default
    }

    /** A storage on the counting source and the test table, with {@code timeout}. */
    private JdbcStorage storage(Duration timeout) {
        TestDatabase.POSTGRES.builder(); // the schema
        return JdbcStorage.builder(counting)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .timeout(timeout)
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
        List<Batch> group = new ArrayList<>();
        for (int d = 0; d < 4; d++) {
            group.add(Batch.of(new Step(key("user-" + d), BUCKET, 1 + d % 2)));
        }
        decidedByOnePlainUpdate(group, "UPDATE ");
    }

    @Test
    void sharedCall_chainsOfBucketsOnRowsThatAdmit_isOnePlainUpdate() {
        List<Batch> group = new ArrayList<>();
        for (int d = 0; d < 3; d++) {
            group.add(Batch.of(
                    new Step(key("user-" + d), BUCKET, 1),
                    new Step(key("chat-" + d), BUCKET, 1),
                    new Step(key("tenant-" + d), new TokenBucket(50, 10, Duration.ofSeconds(1)), 1)));
        }
        decidedByOnePlainUpdate(group, "WITH u AS (UPDATE ");
    }

    /**
     * Decides each decision of {@code group} alone first (its rows then exist), then all of them as one shared call:
     * each the reference's, and the call one statement that starts with {@code statementStart}, not the function.
     */
    private void decidedByOnePlainUpdate(List<Batch> group, String statementStart) {
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            long[] nows = new long[group.size()];
            for (int d = 0; d < group.size(); d++) {
                Batch decision = group.get(d);
                assertThat(BatchResult.of(storage.evaluateTogether(List.of(decision), new long[] {START})
                                .get(0)))
                        .isEqualTo(reference.evaluate(decision, START));
                nows[d] = START + 1_000 * d;
            }
            counting.reset();

            together(storage, reference, group, nows);

            assertThat(counting.executions.get()).isEqualTo(1);
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .startsWith(statementStart)
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
     * Decides {@code cold} and {@code hot} (one token each, at {@code now}) as one shared call while another transaction
     * holds {@code hot}'s row: the call must fail at the shared lock timeout (55P03); answers the statements it
     * prepared.
     */
    private List<String> sharedCallWhileHotIsLocked(JdbcStorage storage, StateKey cold, StateKey hot, long now)
            throws SQLException {
        try (Connection other = TestDatabase.POSTGRES.lockingRowOf(hot)) {
            counting.reset();
            List<Batch> group = List.of(Batch.of(new Step(cold, BUCKET, 1)), Batch.of(new Step(hot, BUCKET, 1)));

            assertThatThrownBy(() -> storage.evaluateTogether(group, new long[] {now, now}))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageContaining("sqlstate 55P03");
            List<String> statements = List.copyOf(counting.preparedStatements);
            other.rollback();
            return statements;
        }
    }

    /**
     * The UPDATE waits for a row locked elsewhere a quarter of its time at most, as the function does for a shared call,
     * then fails having committed nothing (its decisions then go again alone, only the one that needs the row waiting
     * for it), rather than holding every decision of the call until the deadline.
     */
    @Test
    void sharedCall_onARowLockedElsewhere_failsAtItsLockTimeoutAndCommitsNothing() throws SQLException {
        // A quarter of this timeout is the shared call's lock timeout, well before the watchdog's cancel.
        try (JdbcStorage storage = storage(Duration.ofMillis(800))) {
            StateKey hot = key("hot");
            StateKey cold = key("cold");
            assertThat(storage.acquire(hot, BUCKET, 1, START)).isEqualTo(Outcome.admitted(4));
            assertThat(storage.acquire(cold, BUCKET, 1, START)).isEqualTo(Outcome.admitted(4));
            assertThat(sharedCallWhileHotIsLocked(storage, cold, hot, START))
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .startsWith("UPDATE ");
            // The cold decision of the failed call was not committed.
            assertThat(storage.acquire(cold, BUCKET, 1, START)).isEqualTo(Outcome.admitted(3));
        }
    }

    /**
     * What the UPDATE of a shared call leaves to the function is still part of a shared call, even when it is one
     * decision: the function waits for its row, locked elsewhere, a quarter of the call's time at most, rather than
     * holding the decisions that the UPDATE admitted (and committed) until the deadline. The UPDATE does not wait for
     * the row: its bucket rejects in the statement's snapshot.
     */
    @Test
    void sharedCall_oneDecisionLeftToTheFunctionOnARowLockedElsewhere_failsAtTheSharedLockTimeout()
            throws SQLException {
        // A quarter of this timeout is the shared call's lock timeout, well before the watchdog's cancel.
        try (JdbcStorage storage = storage(Duration.ofMillis(800))) {
            StateKey hot = key("hot");
            StateKey cold = key("cold");
            assertThat(storage.acquire(hot, BUCKET, 5, START)).isEqualTo(Outcome.admitted(0));
            assertThat(storage.acquire(cold, BUCKET, 1, START)).isEqualTo(Outcome.admitted(4));
            List<String> statements = sharedCallWhileHotIsLocked(storage, cold, hot, START + 1);
            assertThat(statements).hasSize(2);
            assertThat(statements.get(0)).startsWith("UPDATE ");
            assertThat(statements.get(1)).contains("_evaluate(");
            // The UPDATE committed the cold decision; the function, which failed, committed nothing.
            assertThat(storage.acquire(cold, BUCKET, 1, START + 2)).isEqualTo(Outcome.admitted(2));
            assertThat(Outcome.isAdmitted(storage.acquire(hot, BUCKET, 1, START + 2)))
                    .isFalse();
        }
    }

    @Test
    void sharedCalls_randomGroupsOfOneBucketEach_decideAsTheReferenceDoesOneAfterTheOther() {
        assertThat(randomCalls(20261206L, 8, 2, 6, 1))
                .as("calls that sent a plain UPDATE")
                .isGreaterThan(100);
    }

    @Test
    void sharedCalls_randomGroupsOfBucketChains_decideAsTheReferenceDoesOneAfterTheOther() {
        assertThat(randomCalls(20261207L, 12, 1, 4, 3))
                .as("calls that sent a plain UPDATE")
                .isGreaterThan(30);
    }

    /**
     * 300 shared calls of {@code minDecisions} to {@code maxDecisions} decisions of one to {@code maxSteps} token
     * buckets over {@code keyCount} keys, mostly each on keys of its own, now and then one sharing the first decision's
     * key (the function then decides all), and now and then a gate, a member or a record landing on a key; times mostly
     * forward. Each decision is compared with the reference's, one after the other; answers how many calls sent a
     * plain UPDATE.
     */
    private int randomCalls(long seed, int keyCount, int minDecisions, int maxDecisions, int maxSteps) {
        Random random = new Random(seed);
        List<TokenBucket> buckets = List.of(
                BUCKET, new TokenBucket(2, 1, Duration.ofMillis(200)), new TokenBucket(8, 4, Duration.ofSeconds(1)));
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            List<StateKey> keys = new ArrayList<>();
            for (int k = 0; k < keyCount; k++) {
                keys.add(key("k" + k));
            }
            long now = START;
            int updates = 0;
            for (int call = 0; call < 300; call++) {
                PostgresSharedCallServerTest.landNowAndThen(random, 20, storage, reference, keys, now, call);
                List<StateKey> shuffled = new ArrayList<>(keys);
                Collections.shuffle(shuffled, random);
                int decisions = minDecisions + random.nextInt(maxDecisions - minDecisions + 1);
                List<Batch> batches = new ArrayList<>();
                long[] nows = new long[decisions];
                int next = 0;
                for (int d = 0; d < decisions; d++) {
                    now = PostgresSharedCallServerTest.movedOn(random, now);
                    nows[d] = now;
                    int length = 1 + random.nextInt(maxSteps);
                    List<Step> steps = new ArrayList<>();
                    for (int i = 0; i < length; i++) {
                        StateKey k = random.nextInt(15) == 0 && d > 0 && i == 0
                                ? batches.get(0).steps().get(0).key()
                                : shuffled.get(next++);
                        // Mostly the key's own bucket, sometimes another (a filter changed: state of another shape).
                        TokenBucket bucket =
                                buckets.get(random.nextInt(8) == 0 ? random.nextInt(3) : keys.indexOf(k) % 3);
                        steps.add(new Step(k, bucket, 1 + random.nextInt((int) bucket.capacity())));
                    }
                    batches.add(Batch.of(steps.toArray(new Step[0])));
                }
                counting.reset();
                together(storage, reference, batches, nows);
                updates += counting.preparedStatements.stream()
                                .anyMatch(sql -> sql.contains("UPDATE ") && !sql.contains("_evaluate("))
                        ? 1
                        : 0;
            }
            return updates;
        }
    }

    /**
     * Eight threads, each deciding one bucket at a time on six keys, calls shared two at a time: each key admits exactly
     * its capacity, however the shared UPDATEs and the function's calls met on its row.
     */
    @Test
    void eightThreads_oneBucketEachOnSixKeys_admitExactlyEachCapacity() throws Exception {
        TokenBucket bucket = new TokenBucket(40, 1, Duration.ofDays(1));
        try (JdbcStorage storage = storage()) {
            int[] total = new int[6];
            for (int[] admitted : onEightThreads(thread -> {
                int[] byKey = new int[6];
                for (int i = 0; i < 60; i++) {
                    int k = (thread + i) % 6;
                    if (Outcome.isAdmitted(storage.acquire(key("hot-" + k), bucket, 1, START))) {
                        byKey[k]++;
                    }
                }
                return byKey;
            })) {
                for (int k = 0; k < 6; k++) {
                    total[k] += admitted[k];
                }
            }
            assertThat(total).containsOnly(40);
        }
    }

    /** What each of eight threads running {@code work} (given the thread's number) answered, in the threads' order. */
    private static List<int[]> onEightThreads(IntFunction<int[]> work) throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(8);
        try {
            List<Callable<int[]>> tasks = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int thread = t;
                tasks.add(() -> work.apply(thread));
            }
            List<int[]> answers = new ArrayList<>();
            for (Future<int[]> f : threads.invokeAll(tasks)) {
                answers.add(f.get(60, TimeUnit.SECONDS));
            }
            return answers;
        } finally {
            threads.shutdownNow();
        }
    }

    /**
     * A chain that one of its buckets rejects rolls the whole statement back, and the function decides the call; then,
     * until the rejection's retry-after, a call with that key goes to the function at once.
     */
    @Test
    void sharedCall_aChainThatABucketRejects_theFunctionDecidesAndTheKeyGoesThereAtOnceAfter() {
        try (JdbcStorage storage = storage();
                ReferenceStorage reference = ReferenceStorage.create()) {
            StateKey scarce = key("scarce");
            TokenBucket one = new TokenBucket(1, 1, Duration.ofMinutes(1));
            List<Batch> first = List.of(
                    Batch.of(new Step(key("a"), BUCKET, 1), new Step(key("b"), BUCKET, 1)),
                    Batch.of(new Step(key("c"), BUCKET, 1), new Step(scarce, one, 1)));
            long[] nows = {START, START};
            together(storage, reference, first, nows);
            counting.reset();

            // Every row exists now; the scarce bucket is empty.
            together(storage, reference, first, new long[] {START + 1, START + 1});
            assertThat(counting.preparedStatements).hasSize(2);
            assertThat(counting.preparedStatements.get(0)).startsWith("WITH u AS (UPDATE ");
            assertThat(counting.preparedStatements.get(1)).contains("_evaluate(");
            counting.reset();

            together(storage, reference, first, new long[] {START + 2, START + 2});
            assertThat(counting.preparedStatements)
                    .singleElement(InstanceOfAssertFactories.STRING)
                    .contains("_evaluate(");
        }
    }

    /**
     * Eight threads deciding chains of three buckets (their own user, one of four chats, the one tenant), calls shared
     * two at a time: the tenant admits exactly its capacity, and a rejected chain takes nothing from its user or chat.
     */
    @Test
    void eightThreads_chainsSharingATenant_admitExactlyItsCapacityAndTakeNothingOnRejection() throws Exception {
        TokenBucket tenant = new TokenBucket(100, 1, Duration.ofDays(1));
        TokenBucket ample = new TokenBucket(1_000, 1, Duration.ofDays(1));
        try (JdbcStorage storage = storage()) {
            // Admitted chains by thread (its user) and chat.
            List<int[]> results = onEightThreads(thread -> {
                int[] byChat = new int[4];
                for (int i = 0; i < 30; i++) {
                    int chat = (thread + i) % 4;
                    Batch chain = Batch.of(
                            new Step(key("user-" + thread), ample, 1),
                            new Step(key("chat-" + chat), ample, 1),
                            new Step(key("tenant"), tenant, 1));
                    if (storage.evaluate(chain, START).admitted()) {
                        byChat[chat]++;
                    }
                }
                return byChat;
            });
            int[] byChat = new int[4];
            int total = 0;
            for (int t = 0; t < 8; t++) {
                int byUser = 0;
                for (int chat = 0; chat < 4; chat++) {
                    byChat[chat] += results.get(t)[chat];
                    byUser += results.get(t)[chat];
                }
                total += byUser;
                // What is left of the user's bucket: what its admitted chains took, nothing more.
                assertThat(storage.acquire(key("user-" + t), ample, 1, START))
                        .isEqualTo(Outcome.admitted(1_000 - byUser - 1));
            }
            assertThat(total).isEqualTo(100);
            for (int chat = 0; chat < 4; chat++) {
                assertThat(storage.acquire(key("chat-" + chat), ample, 1, START))
                        .isEqualTo(Outcome.admitted(1_000 - byChat[chat] - 1));
            }
        }
    }
}
