package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.VersionedRecord;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * On a real PostgreSQL ({@code GUARD_POSTGRES_URL}): decisions that share one call of the evaluate function (as the
 * storage sends the decisions that waited while other calls were in flight) are decided exactly as if each had been
 * sent alone, one after the other, in the call's order.
 */
class PostgresSharedCallServerTest {
    private static final long START = 1_700_000_000_000_000L;

    /** Specs that reach their limits under the time steps below; each key keeps one, some share a key's state. */
    private static final List<LimitSpec> CATALOG = List.of(
            new TokenBucket(3, 2, Duration.ofSeconds(1)),
            new TokenBucket(1, 1, Duration.ofMillis(50)),
            new FixedWindow(3, Duration.ofSeconds(1)),
            new SlidingWindowLog(3, Duration.ofSeconds(2)),
            new SlidingWindowCounter(4, Duration.ofSeconds(2), 4),
            new Cooldown(Duration.ofMillis(500)),
            new DuplicateWindow(Duration.ofMillis(800), 2));

    /** Steps that only read: a gate, and both kinds of membership. */
    private static final List<LimitSpec> READS =
            List.of(Gate.INSTANCE, Membership.MUST_BE_ABSENT, Membership.MUST_BE_PRESENT);

    private final String scope = "shared-call-" + UUID.randomUUID();

    @Test
    void sharedCall_sameKeyInSeveralDecisions_eachSeesTheOnesBefore() {
        try (JdbcStorage storage = TestDatabase.POSTGRES.builder().build()) {
            StateKey user = new StateKey(scope, "user");
            StateKey chat = new StateKey(scope, "chat");
            FixedWindow window = new FixedWindow(2, Duration.ofMinutes(1));
            TokenBucket bucket = new TokenBucket(10, 10, Duration.ofSeconds(1));
            Batch both = Batch.of(new Step(user, window, 1), new Step(chat, bucket, 1));
            List<long[]> outcomes = storage.evaluateTogether(
                    List.of(both, both, both, Batch.of(new Step(chat, bucket, 1))),
                    new long[] {START, START + 1, START + 2, START + 3});

            assertThat(outcomes.get(0)).containsExactly(Outcome.admitted(1), Outcome.admitted(9));
            assertThat(outcomes.get(1)).containsExactly(Outcome.admitted(0), Outcome.admitted(8));
            // The window is full: the third decision is rejected as a whole and leaves the bucket as it was.
            assertThat(Outcome.isAdmitted(outcomes.get(2)[0])).isFalse();
            assertThat(outcomes.get(2)[1]).isEqualTo(Outcome.admitted(7));
            assertThat(outcomes.get(3)).containsExactly(Outcome.admitted(7));
            // And what the call left is what the next call reads.
            assertThat(storage.acquire(chat, bucket, 1, START + 3)).isEqualTo(Outcome.admitted(6));
        }
    }

    @Test
    void sharedCall_onARowLockedElsewhere_failsAtItsLockTimeoutAndCommitsNothing() throws SQLException {
        // A quarter of this timeout is the shared call's lock timeout, well before the watchdog's cancel.
        try (JdbcStorage storage =
                TestDatabase.POSTGRES.builder().timeout(Duration.ofMillis(800)).build()) {
            StateKey hot = new StateKey(scope, "hot");
            StateKey cold = new StateKey(scope, "cold");
            FixedWindow window = new FixedWindow(5, Duration.ofMinutes(1));
            assertThat(storage.acquire(hot, window, 1, START)).isEqualTo(Outcome.admitted(4));
            assertThat(storage.acquire(cold, window, 1, START)).isEqualTo(Outcome.admitted(4));
            try (Connection other = TestDatabase.POSTGRES.lockingRowOf(hot)) {
                List<Batch> group = List.of(Batch.of(new Step(cold, window, 1)), Batch.of(new Step(hot, window, 1)));

                assertThatThrownBy(() -> storage.evaluateTogether(group, new long[] {START + 1, START + 1}))
                        .isInstanceOf(GuardStorageException.class)
                        .hasMessageContaining("sqlstate 55P03");
                other.rollback();
            }
            // The cold decision of the failed call was not committed.
            assertThat(storage.acquire(cold, window, 1, START + 2)).isEqualTo(Outcome.admitted(3));
        }
    }

    /**
     * A shared call that fails before its statement is sent has committed nothing, whatever the failure: here its
     * thread gets no connection, as HikariCP fails a thread that is interrupted while it waits for one. Its decisions
     * go again, each alone, rather than all failing with the misfortune of the thread that happened to run the call.
     */
    @Test
    void sharedCall_failingBeforeItsStatementIsSent_sendsItsDecisionsAgainAlone() throws Exception {
        TestDatabase.POSTGRES.builder(); // the schema
        AtomicBoolean armed = new AtomicBoolean();
        AtomicInteger leases = new AtomicInteger();
        CountDownLatch firstLeased = new CountDownLatch(1);
        CountDownLatch releaseFirst = new CountDownLatch(1);
        // The first call's connection comes only once the test releases it; the second call gets none.
        WrappingDataSource pool = new WrappingDataSource(TestDatabase.POSTGRES.dataSource()) {
            @Override
            Connection wrap(Connection connection) throws SQLException {
                if (!armed.get()) {
                    return connection;
                }
                int lease = leases.incrementAndGet();
                if (lease == 1) {
                    firstLeased.countDown();
                    try {
                        assertThat(releaseFirst.await(30, TimeUnit.SECONDS)).isTrue();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                } else if (lease == 2) {
                    connection.close();
                    throw new SQLException("HikariPool-1 - Interrupted during connection acquisition");
                }
                return connection;
            }
        };
        ExecutorService threads = Executors.newFixedThreadPool(3);
        try (JdbcStorage storage = JdbcStorage.builder(pool)
                .table(TestDatabase.TABLE)
                .sweepInterval(Duration.ZERO)
                .timeout(Duration.ofSeconds(30))
                .concurrentCalls(1)
                .build()) {
            armed.set(true);
            FixedWindow window = new FixedWindow(5, Duration.ofMinutes(1));
            Future<Long> first = threads.submit(
                    () -> storage.acquire(new StateKey(scope, "first"), new Cooldown(Duration.ofMinutes(1)), 1, START));
            assertThat(firstLeased.await(30, TimeUnit.SECONDS)).isTrue();
            List<Future<Long>> shared = new ArrayList<>();
            for (String user : List.of("second", "third")) {
                shared.add(threads.submit(() -> storage.acquire(new StateKey(scope, user), window, 1, START)));
                int waiting = shared.size();
                while (storage.waitingDecisions() < waiting) {
                    Thread.onSpinWait();
                }
            }
            releaseFirst.countDown();

            assertThat(first.get(30, TimeUnit.SECONDS)).isEqualTo(Outcome.admitted(0));
            for (Future<Long> decision : shared) {
                assertThat(decision.get(30, TimeUnit.SECONDS)).isEqualTo(Outcome.admitted(4));
            }
            // The first call, the shared one that got no connection, then each of its decisions alone.
            assertThat(leases.get()).isEqualTo(4);
        } finally {
            threads.shutdownNow();
        }
    }

    @Test
    void sharedCalls_randomGroups_decideAsTheReferenceDoesOneAfterTheOther() {
        Random random = new Random(20261205L);
        try (JdbcStorage storage = TestDatabase.POSTGRES.builder().build();
                ReferenceStorage reference = ReferenceStorage.create()) {
            List<StateKey> keys = new ArrayList<>();
            List<LimitSpec> specs = new ArrayList<>();
            for (int k = 0; k < 6; k++) {
                keys.add(new StateKey(scope, "k" + k));
                specs.add(CATALOG.get(random.nextInt(CATALOG.size())));
            }
            long now = START;
            for (int call = 0; call < 300; call++) {
                landNowAndThen(random, 16, storage, reference, keys, now, call);
                int decisions = 1 + random.nextInt(6);
                List<Batch> batches = new ArrayList<>();
                long[] nows = new long[decisions];
                for (int d = 0; d < decisions; d++) {
                    now = movedOn(random, now);
                    nows[d] = now;
                    batches.add(randomBatch(random, keys, specs));
                }
                List<long[]> together = storage.evaluateTogether(batches, nows);
                for (int d = 0; d < decisions; d++) {
                    BatchResult expected = reference.evaluate(batches.get(d), nows[d]);
                    assertThat(BatchResult.of(together.get(d)))
                            .as("call %s, decision %s of %s: %s at %s", call, d, decisions, batches.get(d), nows[d])
                            .isEqualTo(expected);
                }
            }
        }
    }

    /** {@code now} moved mostly forward, sometimes not, sometimes a little back (another process's clock). */
    static long movedOn(Random random, long now) {
        int move = random.nextInt(10);
        return now + (move < 6 ? random.nextInt(150_000) : move < 8 ? 0 : -random.nextInt(20_000));
    }

    /**
     * Now and then (two times in {@code oneIn}, and a record as often) a gate, a set member or a record lands on one of
     * {@code keys}, through both {@code storage} and {@code reference}, at {@code now}; the record's value is {@code
     * call}.
     */
    static void landNowAndThen(
            Random random,
            int oneIn,
            JdbcStorage storage,
            ReferenceStorage reference,
            List<StateKey> keys,
            long now,
            int call) {
        StateKey target = keys.get(random.nextInt(keys.size()));
        int op = random.nextInt(oneIn);
        if (op == 0) {
            long until = now + random.nextInt(400_000) - 100_000;
            assertThat(storage.raiseGate(target, until, now)).isEqualTo(reference.raiseGate(target, until, now));
        } else if (op == 1) {
            long expires = now + random.nextInt(400_000) - 100_000;
            storage.addMember(target, expires, now);
            reference.addMember(target, expires, now);
        } else if (op == 2) {
            byte[] value = {(byte) call};
            long stored = storage.putRecord(
                    target,
                    value,
                    storage.getRecord(target).map(VersionedRecord::version).orElse(0L));
            long expected = reference.putRecord(
                    target,
                    value,
                    reference.getRecord(target).map(VersionedRecord::version).orElse(0L));
            assertThat(stored).isEqualTo(expected);
        }
    }

    /**
     * One to three distinct keys, each mostly with its own spec, sometimes with another (a filter changed: state of
     * another shape) or a read (gate, membership).
     */
    private static Batch randomBatch(Random random, List<StateKey> keys, List<LimitSpec> specs) {
        List<Integer> picks = new ArrayList<>();
        for (int k = 0; k < keys.size(); k++) {
            picks.add(k);
        }
        Collections.shuffle(picks, random);
        int n = 1 + random.nextInt(3);
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int k = picks.get(i);
            int pick = random.nextInt(10);
            LimitSpec spec = pick < 7
                    ? specs.get(k)
                    : pick < 9 ? CATALOG.get(random.nextInt(CATALOG.size())) : READS.get(random.nextInt(READS.size()));
            long permits = spec instanceof DuplicateWindow ? 1 + random.nextInt(3) : random.nextInt(3);
            steps.add(new Step(keys.get(k), spec, permits));
        }
        return Batch.of(steps.toArray(new Step[0]));
    }
}
