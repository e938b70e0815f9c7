package dev.guard.storage.jdbc;

import static org.assertj.core.api.Assertions.as;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.zaxxer.hikari.HikariDataSource;
import dev.guard.ManualTicker;
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
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import org.assertj.core.api.InstanceOfAssertFactories;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.slf4j.event.Level;

/**
 * What every database must show beyond the contract suite: identical decisions to the reference under random
 * operations of every kind, no deadlock on concurrent first touches, exact admission across storages and threads,
 * round trips per decision, keys of any content, timeouts, schema and sweeper. Extended once per database.
 */
abstract class JdbcStorageSuite {
    private final List<Storage> opened = new ArrayList<>();
    private final String prefix = "suite-" + UUID.randomUUID() + "/";
    private ManualTicker ticker;

    /** The database under test. */
    abstract TestDatabase database();

    /** Statements plus transaction control of one decision, admitted or not. */
    abstract int roundTripsPerDecision();

    /**
     * Round trips of a one-bucket decision that its cheapest statement cannot take alone: a first touch or a rejection.
     * The same as {@link #roundTripsPerDecision()} unless the dialect tries such a statement first.
     */
    int roundTripsPerBucketMiss() {
        return roundTripsPerDecision();
    }

    /** Options this test class sets on every storage it builds. */
    JdbcStorage.Builder configure(JdbcStorage.Builder builder) {
        return builder;
    }

    @BeforeEach
    final void start() {
        ticker = ManualTicker.create();
        database().dataSource();
    }

    @AfterEach
    final void closeStorages() {
        opened.forEach(Storage::close);
        opened.clear();
    }

    private JdbcStorage open() {
        return track(configure(database().builder()).build());
    }

    private JdbcStorage track(JdbcStorage storage) {
        opened.add(storage);
        return storage;
    }

    /**
     * A storage on the test table whose statements {@code counting} counts, from zero once it is built (building it
     * reads the schema's version).
     */
    private JdbcStorage countedBy(CountingDataSource counting) {
        JdbcStorage storage = track(configure(JdbcStorage.builder(counting)
                        .table(TestDatabase.TABLE)
                        .sweepInterval(Duration.ZERO)
                        .dialect(database().builder().build().dialect()))
                .build());
        counting.reset();
        return storage;
    }

    private StateKey key(String scope) {
        return new StateKey(prefix + scope, "user-" + UUID.randomUUID());
    }

    /** {@code n} new keys of {@code scope}, in the order of their key hashes (the primary key's order). */
    private List<StateKey> keysInHashOrder(String scope, int n) {
        List<StateKey> keys = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            keys.add(key(scope));
        }
        keys.sort((a, b) -> Arrays.compareUnsigned(KeyCodec.keyHash(a), KeyCodec.keyHash(b)));
        return keys;
    }

    private long now() {
        return ticker.epochMicros();
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Differential: random operations of every kind against ReferenceStorage

    @Test
    void differential_randomOperationsOfEveryKind_matchReferenceStorage() {
        JdbcStorage storage = open();
        for (int seed = 1; seed <= 3; seed++) {
            runDifferential(storage, seed, 250);
        }
    }

    private void runDifferential(JdbcStorage storage, long seed, int operations) {
        Random random = new Random(seed);
        ReferenceStorage reference = ReferenceStorage.create();
        String run = prefix + "diff-" + seed + "/";
        String[] subjects = {run + "alice", "bob \"quoted\"\n" + run, "\u0000\ud800 lone " + run};
        LimitSpec[] limits = {
            new TokenBucket(3, 2, Duration.ofSeconds(1)),
            new TokenBucket(10, 3, Duration.ofSeconds(1)),
            new FixedWindow(3, Duration.ofSeconds(2)),
            new SlidingWindowLog(4, Duration.ofSeconds(2)),
            new SlidingWindowCounter(5, Duration.ofSeconds(2), 4),
            new Cooldown(Duration.ofMillis(1500)),
            new DuplicateWindow(Duration.ofMillis(1500), 2),
        };
        List<StateKey> limitKeys = new ArrayList<>();
        List<LimitSpec> limitSpecs = new ArrayList<>();
        for (int s = 0; s < subjects.length; s++) {
            for (int l = 0; l < limits.length; l++) {
                limitKeys.add(new StateKey(run + "limit-" + l, subjects[s]));
                limitSpecs.add(limits[l]);
            }
        }
        StateKey[] gates = {new StateKey(run + "gate", subjects[0]), new StateKey(run + "gate", subjects[1])};
        StateKey[] members = {new StateKey(run + "set", subjects[0]), new StateKey(run + "set", subjects[2])};
        StateKey[] records = {new StateKey(run + "record", subjects[1]), new StateKey(run + "record", subjects[2])};
        long now = ticker.epochMicros();
        for (int op = 0; op < operations; op++) {
            int r = random.nextInt(100);
            now += random.nextInt(10) == 0 ? -random.nextInt(1_000_000) : random.nextInt(700_000);
            String context = "seed " + seed + " operation " + op + " at " + now;
            if (r < 60) {
                List<Step> steps = new ArrayList<>();
                List<Integer> picks = new ArrayList<>();
                for (int i = 0; i < limitKeys.size(); i++) {
                    picks.add(i);
                }
                Collections.shuffle(picks, random);
                int size = 1 + random.nextInt(4);
                for (int i = 0; i < size; i++) {
                    int k = picks.get(i);
                    // A duplicate window's permits are its item: now and then one at the top of its range.
                    long permits = limitSpecs.get(k) instanceof DuplicateWindow && random.nextInt(8) == 0
                            ? (1L << 53) - 1 - random.nextInt(2)
                            : random.nextInt(4);
                    steps.add(new Step(limitKeys.get(k), limitSpecs.get(k), permits));
                }
                if (random.nextInt(4) == 0) {
                    steps.add(new Step(gates[random.nextInt(2)], Gate.INSTANCE, 1));
                }
                if (random.nextInt(4) == 0) {
                    Membership m = random.nextBoolean() ? Membership.MUST_BE_ABSENT : Membership.MUST_BE_PRESENT;
                    steps.add(new Step(members[random.nextInt(2)], m, 1));
                }
                Collections.shuffle(steps, random);
                Batch batch = new Batch(steps);
                assertThat(storage.evaluate(batch, now))
                        .as(context + " " + batch)
                        .isEqualTo(reference.evaluate(batch, now));
            } else if (r < 66) {
                StateKey gate = gates[random.nextInt(2)];
                long until = now - 500_000 + random.nextInt(3_000_000);
                assertThat(storage.raiseGate(gate, until, now))
                        .as(context)
                        .isEqualTo(reference.raiseGate(gate, until, now));
            } else if (r < 72) {
                StateKey member = members[random.nextInt(2)];
                long until = random.nextInt(3) == 0 ? Long.MAX_VALUE : now + random.nextInt(3_000_000);
                storage.addMember(member, until, now);
                reference.addMember(member, until, now);
            } else if (r < 76) {
                StateKey member = members[random.nextInt(2)];
                assertThat(storage.removeMember(member)).as(context).isEqualTo(reference.removeMember(member));
            } else if (r < 84) {
                StateKey member = members[random.nextInt(2)];
                assertThat(storage.isMember(member, now)).as(context).isEqualTo(reference.isMember(member, now));
            } else if (r < 92) {
                StateKey record = records[random.nextInt(2)];
                long expected = reference
                        .getRecord(record)
                        .map(VersionedRecord::version)
                        .orElse(0L);
                if (random.nextInt(4) == 0) {
                    expected += 1 + random.nextInt(2);
                }
                byte[] value = new byte[random.nextInt(20)];
                random.nextBytes(value);
                assertThat(storage.putRecord(record, value, expected))
                        .as(context)
                        .isEqualTo(reference.putRecord(record, value, expected));
            } else if (r < 98) {
                StateKey record = records[random.nextInt(2)];
                assertThat(storage.getRecord(record)).as(context).isEqualTo(reference.getRecord(record));
            } else {
                String subject = subjects[random.nextInt(subjects.length)];
                assertThat(storage.forget(subject)).as(context).isEqualTo(reference.forget(subject));
            }
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // One token bucket: PostgreSQL decides it in one plain statement, with the evaluate function behind it

    @Test
    void tokenBucket_firstTouchRefillAndRejection_matchTheReferenceInOneDecisionEach() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        ReferenceStorage reference = ReferenceStorage.create();
        TokenBucket bucket = new TokenBucket(5, 2, Duration.ofSeconds(1));
        StateKey k = key("bucket");
        long[] permits = {3, 2, 1, 1, 5, 2, 2};
        long[] advanceMillis = {0, 0, 0, 300, 0, 1_000, 0};
        long[] expected = {
            Outcome.admitted(2),
            Outcome.admitted(0),
            Outcome.rejected(500_000),
            Outcome.rejected(200_000),
            Outcome.rejected(2_200_000),
            Outcome.admitted(0),
            Outcome.rejected(700_000)
        };
        for (int i = 0; i < permits.length; i++) {
            ticker.advance(Duration.ofMillis(advanceMillis[i]));
            counting.reset();
            long outcome = storage.acquire(k, bucket, permits[i], now());
            assertThat(outcome)
                    .as("step %d: %s", i, Outcome.toString(outcome))
                    .isEqualTo(expected[i])
                    .isEqualTo(reference.acquire(k, bucket, permits[i], now()));
            boolean firstTouchOrRejected = i == 0 || !Outcome.isAdmitted(outcome);
            assertThat(counting.total())
                    .as("step %d", i)
                    .isLessThanOrEqualTo(firstTouchOrRejected ? roundTripsPerBucketMiss() : roundTripsPerDecision());
        }
    }

    @Test
    void tokenBucket_stateAboveASmallerCapacity_matchesTheReference() {
        JdbcStorage storage = open();
        ReferenceStorage reference = ReferenceStorage.create();
        TokenBucket large = new TokenBucket(10, 1, Duration.ofHours(1));
        TokenBucket small = new TokenBucket(5, 1, Duration.ofHours(1));
        StateKey k = key("shrunk");
        assertThat(storage.acquire(k, large, 1, now())).isEqualTo(reference.acquire(k, large, 1, now()));
        // Nine tokens left against a capacity of five: the plain statement leaves this to the general path.
        for (int i = 0; i < 3; i++) {
            assertThat(storage.acquire(k, small, 1, now()))
                    .as("acquire %d", i)
                    .isEqualTo(reference.acquire(k, small, 1, now()));
        }
        ticker.advance(Duration.ofMinutes(1));
        assertThat(storage.acquire(k, small, 5, now())).isEqualTo(reference.acquire(k, small, 5, now()));
    }

    @Test
    void tokenBucket_gateUnderTheSameKey_matchesTheReference() {
        JdbcStorage storage = open();
        ReferenceStorage reference = ReferenceStorage.create();
        StateKey k = key("gate-then-bucket");
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofSeconds(1));
        assertThat(storage.raiseGate(k, now() + 1_000_000, now()))
                .isEqualTo(reference.raiseGate(k, now() + 1_000_000, now()));
        ticker.advance(Duration.ofSeconds(2));
        // The gate has passed: its expired row reads as absent, and the bucket starts full.
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(reference.acquire(k, bucket, 1, now()));
        assertThat(storage.acquire(k, bucket, 2, now())).isEqualTo(reference.acquire(k, bucket, 2, now()));
    }

    /**
     * Chains of token buckets on distinct keys, which PostgreSQL decides with one plain UPDATE of all their rows when
     * every row exists and every bucket admits, and with the evaluate function after it otherwise: each outcome as the
     * reference's, one decision's round trips once every key has a row, a rejected chain consuming nothing.
     */
    @Test
    void bucketChain_admissionsRejectionsAndFirstTouches_matchTheReference() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        ReferenceStorage reference = ReferenceStorage.create();
        Random random = new Random(7);
        StateKey[] keys = {key("chain-user"), key("chain-chat"), key("chain-tenant"), key("chain-late")};
        TokenBucket[] buckets = {
            new TokenBucket(4, 1, Duration.ofSeconds(1)),
            new TokenBucket(6, 3, Duration.ofSeconds(1)),
            new TokenBucket(9, 2, Duration.ofSeconds(1)),
            new TokenBucket(3, 1, Duration.ofMillis(700))
        };
        boolean[] touched = new boolean[keys.length];
        int fastAdmissions = 0;
        for (int i = 0; i < 400; i++) {
            ticker.advance(Duration.ofMillis(random.nextInt(4) * 150L));
            // Two or three steps in a random order; the fourth key joins only after a while (a later first touch).
            List<Integer> chosen = new ArrayList<>(List.of(0, 1, 2, 3));
            if (i < 100) {
                chosen.remove(Integer.valueOf(3));
            }
            Collections.shuffle(chosen, random);
            int n = 2 + random.nextInt(Math.min(2, chosen.size() - 1));
            Step[] steps = new Step[n];
            boolean allTouched = true;
            for (int s = 0; s < n; s++) {
                int k = chosen.get(s);
                allTouched &= touched[k];
                steps[s] = new Step(keys[k], buckets[k], 1 + random.nextInt(buckets[k].capacity() > 4 ? 3 : 2));
            }
            Batch batch = Batch.of(steps);
            counting.reset();
            var outcome = storage.evaluate(batch, now());
            assertThat(outcome).as("decision %d: %s", i, batch).isEqualTo(reference.evaluate(batch, now()));
            if (outcome.admitted() && allTouched) {
                assertThat(counting.total()).as("decision %d", i).isEqualTo(roundTripsPerDecision());
                fastAdmissions++;
            } else {
                assertThat(counting.total()).as("decision %d", i).isLessThanOrEqualTo(roundTripsPerBucketMiss());
            }
            // A rejected chain writes nothing, a first touch included.
            for (int s = 0; s < n && outcome.admitted(); s++) {
                touched[chosen.get(s)] = true;
            }
        }
        assertThat(fastAdmissions).as("admitted chains on existing rows").isGreaterThan(50);
        for (int k = 0; k < keys.length; k++) {
            assertThat(storage.acquire(keys[k], buckets[k], 0, now()))
                    .as("key %d", k)
                    .isEqualTo(reference.acquire(keys[k], buckets[k], 0, now()));
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Duplicate window: PostgreSQL's evaluate function checks a state's shape where it loads it

    @Test
    void duplicateWindow_stateOfAnotherShape_readsAsAbsentAsInTheReference() {
        JdbcStorage storage = open();
        ReferenceStorage reference = ReferenceStorage.create();
        StateKey k = key("reshaped");
        DuplicateWindow three = new DuplicateWindow(Duration.ofSeconds(10), 3);
        DuplicateWindow two = new DuplicateWindow(Duration.ofSeconds(10), 2);
        BiConsumer<LimitSpec, Long> acquire = (spec, permits) -> {
            ticker.advance(Duration.ofMillis(100));
            assertThat(storage.acquire(k, spec, permits, now()))
                    .as("%s with %d", spec, permits)
                    .isEqualTo(reference.acquire(k, spec, permits, now()));
        };
        acquire.accept(three, 1L);
        acquire.accept(three, 2L);
        acquire.accept(three, 3L);
        // Three pairs are more than a capacity of two: absent.
        acquire.accept(two, 1L);
        acquire.accept(two, 1L);
        acquire.accept(three, 2L);
        acquire.accept(three, 1L);
        // A sliding log reads the two pairs as four times and adds two: five, odd, absent to a window.
        acquire.accept(new SlidingWindowLog(5, Duration.ofSeconds(10)), 2L);
        acquire.accept(three, 1L);
        acquire.accept(two, 1L);
        // A cooldown's deadline is one number, and so is a gate's.
        acquire.accept(new Cooldown(Duration.ofSeconds(1)), 1L);
        acquire.accept(two, 1L);
        acquire.accept(two, 1L);
        assertThat(storage.raiseGate(k, now() + 1_000_000, now()))
                .isEqualTo(reference.raiseGate(k, now() + 1_000_000, now()));
        acquire.accept(two, 1L);
        acquire.accept(three, 1L);
    }

    @Test
    void duplicateWindow_itemOutOfRange_isRefusedBeforeAnyStatement() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        DuplicateWindow window = new DuplicateWindow(Duration.ofSeconds(10), 4);
        StateKey k = key("window");

        assertThatThrownBy(() -> storage.acquire(k, window, Long.MAX_VALUE, now()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(Long.MAX_VALUE));
        Batch batch = Batch.of(
                new Step(key("bucket"), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1),
                new Step(k, window, 1L << 53));
        assertThatThrownBy(() -> storage.evaluate(batch, now()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(Long.toString(1L << 53));
        assertThat(counting.total()).isZero();
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Concurrency

    @Test
    void firstTouch_tenThousandDistinctKeysFromEightThreads_admitsAllWithoutDeadlockOrError() throws Exception {
        JdbcStorage storage = open();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        int threads = 8;
        int batchesPerThread = 1_250;
        String scope = prefix + "first-touch";
        AtomicInteger admitted = new AtomicInteger();
        // Threads 2p and 2p+1 touch the same two fresh keys at once, in opposite chain orders: 10,000 distinct keys.
        runThreads(threads, t -> {
            for (int i = 0; i < batchesPerThread; i++) {
                StateKey a = new StateKey(scope, "p" + t / 2 + "-" + i + "-a");
                StateKey b = new StateKey(scope, "p" + t / 2 + "-" + i + "-b");
                Batch batch = t % 2 == 0
                        ? Batch.of(new Step(a, bucket, 1), new Step(b, bucket, 1))
                        : Batch.of(new Step(b, bucket, 1), new Step(a, bucket, 1));
                if (storage.evaluate(batch, now()).admitted()) {
                    admitted.incrementAndGet();
                }
            }
        });
        assertThat(admitted.get()).isEqualTo(threads * batchesPerThread);
    }

    @Test
    void hotKey_threeStoragesEightThreads_admitExactlyTheLimit() throws Exception {
        JdbcStorage[] storages = {open(), open(), open()};
        FixedWindow window = new FixedWindow(150, Duration.ofHours(1));
        TokenBucket global = new TokenBucket(1_000, 1, Duration.ofHours(1));
        StateKey hot = key("hot");
        StateKey globalKey = key("global");
        AtomicInteger admitted = new AtomicInteger();
        runThreads(8, t -> {
            JdbcStorage storage = storages[t % storages.length];
            for (int i = 0; i < 30; i++) {
                Batch batch = i % 2 == 0
                        ? Batch.of(new Step(hot, window, 1), new Step(globalKey, global, 1))
                        : Batch.of(new Step(globalKey, global, 1), new Step(hot, window, 1));
                if (storage.evaluate(batch, now()).admitted()) {
                    admitted.incrementAndGet();
                }
            }
        });
        assertThat(admitted.get()).isEqualTo(150);
        assertThat(storages[0].acquire(globalKey, global, 0, now())).isEqualTo(Outcome.admitted(1_000 - 150));
    }

    @Test
    void bucketChains_eightThreadsInShuffledOrders_admitExactlyTheScarcestCapacityAllOrNothing() throws Exception {
        JdbcStorage[] storages = {open(), open(), open()};
        StateKey[] keys = keysInHashOrder("shuffled", 3).toArray(new StateKey[0]);
        TokenBucket scarce = new TokenBucket(121, 1, Duration.ofHours(1));
        TokenBucket ample = new TokenBucket(10_000, 1, Duration.ofHours(1));
        TokenBucket[] buckets = {ample, scarce, ample};
        AtomicInteger admitted = new AtomicInteger();
        // Every row exists before the race, so that the chains go the plain UPDATE's way until the scarce bucket runs
        // dry, and then roll it back: each thread names the three keys in its own order.
        for (int k = 0; k < keys.length; k++) {
            assertThat(storages[0].acquire(keys[k], buckets[k], 1, now()))
                    .isEqualTo(Outcome.admitted(buckets[k].capacity() - 1));
        }
        runThreads(8, t -> {
            JdbcStorage storage = storages[t % storages.length];
            Random random = new Random(t);
            for (int i = 0; i < 40; i++) {
                List<Integer> order = new ArrayList<>(List.of(0, 1, 2));
                Collections.shuffle(order, random);
                Step[] steps = new Step[3];
                for (int s = 0; s < 3; s++) {
                    steps[s] = new Step(keys[order.get(s)], buckets[order.get(s)], 1);
                }
                if (storage.evaluate(Batch.of(steps), now()).admitted()) {
                    admitted.incrementAndGet();
                }
            }
        });
        assertThat(admitted.get()).isEqualTo(120);
        assertThat(storages[0].acquire(keys[0], ample, 0, now())).isEqualTo(Outcome.admitted(10_000 - 121));
        assertThat(storages[0].acquire(keys[2], ample, 0, now())).isEqualTo(Outcome.admitted(10_000 - 121));
    }

    @Test
    void oneBucket_concurrentFirstTouchesOfEachKey_admitExactlyTheCapacity() throws Exception {
        JdbcStorage[] storages = {open(), open(), open()};
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        int keys = 150;
        String scope = prefix + "bucket-race";
        AtomicInteger admitted = new AtomicInteger();
        // Eight threads walk the same fresh keys in step: each key's first touches race one another.
        runThreads(8, t -> {
            JdbcStorage storage = storages[t % storages.length];
            for (int i = 0; i < keys; i++) {
                if (Outcome.isAdmitted(storage.acquire(new StateKey(scope, "k" + i), bucket, 1, now()))) {
                    admitted.incrementAndGet();
                }
            }
        });
        assertThat(admitted.get()).isEqualTo(3 * keys);
        for (int i = 0; i < keys; i++) {
            assertThat(storages[0].acquire(new StateKey(scope, "k" + i), bucket, 0, now()))
                    .as("key %d", i)
                    .isEqualTo(Outcome.admitted(0));
        }
    }

    @Test
    void chain_concurrentFirstTouchesOfEachKey_admitExactlyTheCapacityAndConsumeNothingElseOnRejection()
            throws Exception {
        JdbcStorage[] storages = {open(), open(), open()};
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        TokenBucket own = new TokenBucket(1_000, 1, Duration.ofHours(1));
        int keys = 100;
        String scope = prefix + "chain-race";
        StateKey[] owners = new StateKey[8];
        Arrays.setAll(owners, t -> key("chain-race-owner-" + t));
        AtomicInteger[] admittedBy = new AtomicInteger[owners.length];
        Arrays.setAll(admittedBy, t -> new AtomicInteger());
        // Eight threads walk the same fresh keys in step, each key in a chain with a bucket of the thread's own: the
        // first touches of every shared key race one another inside chains (PostgreSQL's stored function).
        runThreads(owners.length, t -> {
            JdbcStorage storage = storages[t % storages.length];
            for (int i = 0; i < keys; i++) {
                Batch chain = Batch.of(new Step(new StateKey(scope, "k" + i), bucket, 1), new Step(owners[t], own, 1));
                if (storage.evaluate(chain, now()).admitted()) {
                    admittedBy[t].incrementAndGet();
                }
            }
        });
        assertThat(Arrays.stream(admittedBy).mapToInt(AtomicInteger::get).sum()).isEqualTo(3 * keys);
        for (int i = 0; i < keys; i++) {
            assertThat(storages[0].acquire(new StateKey(scope, "k" + i), bucket, 0, now()))
                    .as("key %d", i)
                    .isEqualTo(Outcome.admitted(0));
        }
        for (int t = 0; t < owners.length; t++) {
            assertThat(storages[0].acquire(owners[t], own, 0, now()))
                    .as("thread %d", t)
                    .isEqualTo(Outcome.admitted(1_000 - admittedBy[t].get()));
        }
    }

    @Test
    void bucketChain_eightThreadsOnOneHotBucket_admitExactlyItsCapacityAndConsumeNothingElseOnRejection()
            throws Exception {
        JdbcStorage[] storages = {open(), open(), open()};
        TokenBucket hotBucket = new TokenBucket(100, 1, Duration.ofHours(1));
        TokenBucket own = new TokenBucket(1_000, 1, Duration.ofHours(1));
        StateKey hot = key("hot-bucket");
        StateKey[] owners = new StateKey[8];
        for (int t = 0; t < owners.length; t++) {
            owners[t] = key("owner-" + t);
        }
        AtomicInteger[] admittedBy = new AtomicInteger[owners.length];
        Arrays.setAll(admittedBy, t -> new AtomicInteger());
        runThreads(owners.length, t -> {
            JdbcStorage storage = storages[t % storages.length];
            for (int i = 0; i < 30; i++) {
                Batch chain = i % 2 == 0
                        ? Batch.of(new Step(owners[t], own, 1), new Step(hot, hotBucket, 1))
                        : Batch.of(new Step(hot, hotBucket, 1), new Step(owners[t], own, 1));
                if (storage.evaluate(chain, now()).admitted()) {
                    admittedBy[t].incrementAndGet();
                }
            }
        });
        assertThat(Arrays.stream(admittedBy).mapToInt(AtomicInteger::get).sum()).isEqualTo(100);
        for (int t = 0; t < owners.length; t++) {
            assertThat(storages[0].acquire(owners[t], own, 0, now()))
                    .as("thread %d", t)
                    .isEqualTo(Outcome.admitted(1_000 - admittedBy[t].get()));
        }
    }

    @FunctionalInterface
    interface ThreadBody {
        void run(int thread) throws Exception;
    }

    private static void runThreads(int threads, ThreadBody body) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        CountDownLatch gate = new CountDownLatch(1);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                futures.add(pool.submit(() -> {
                    gate.await();
                    body.run(thread);
                    return null;
                }));
            }
            gate.countDown();
            for (Future<?> f : futures) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Round trips

    @Test
    void roundTrips_oneStepDecision_stayWithinThreeOnFirstTouchAndAfter() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
        StateKey k = key("trips");

        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(0));
        assertThat(counting.total()).as("first touch").isEqualTo(roundTripsPerBucketMiss());

        counting.reset();
        assertThat(Outcome.isAdmitted(storage.acquire(k, bucket, 1, now()))).isFalse();
        assertThat(counting.total()).as("rejected").isLessThanOrEqualTo(roundTripsPerBucketMiss());
    }

    @Test
    void roundTrips_oneBucketAdmittedOnAnExistingRow_oneDecisionWhetherLiveOrExpired() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        ReferenceStorage reference = ReferenceStorage.create();
        TokenBucket bucket = new TokenBucket(3, 1, Duration.ofHours(1));
        StateKey k = key("hot-path");
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(reference.acquire(k, bucket, 1, now()));

        counting.reset();
        assertThat(storage.acquire(k, bucket, 2, now()))
                .isEqualTo(reference.acquire(k, bucket, 2, now()))
                .isEqualTo(Outcome.admitted(0));
        assertThat(counting.total()).as("live row").isEqualTo(roundTripsPerDecision());

        // Full again after three hours: the row has expired and reads as a full bucket.
        ticker.advance(Duration.ofHours(4));
        counting.reset();
        assertThat(storage.acquire(k, bucket, 1, now()))
                .isEqualTo(reference.acquire(k, bucket, 1, now()))
                .isEqualTo(Outcome.admitted(2));
        assertThat(counting.total()).as("expired row").isEqualTo(roundTripsPerDecision());
    }

    @Test
    void roundTrips_fourStepChain_sameAsOneStep() {
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage = countedBy(counting);
        Batch chain = Batch.of(
                new Step(key("user"), new TokenBucket(5, 1, Duration.ofSeconds(1)), 1),
                new Step(key("chat"), new FixedWindow(20, Duration.ofMinutes(1)), 1),
                new Step(key("conversation"), new DuplicateWindow(Duration.ofSeconds(1), 32), 1),
                new Step(key("global"), new SlidingWindowCounter(100, Duration.ofSeconds(10), 10), 1));

        assertThat(storage.evaluate(chain, now()).admitted()).isTrue();
        assertThat(counting.total()).as("first touch").isEqualTo(roundTripsPerDecision());

        counting.reset();
        ticker.advance(Duration.ofSeconds(2));
        assertThat(storage.evaluate(chain, now()).admitted()).isTrue();
        assertThat(counting.total()).as("steady state").isEqualTo(roundTripsPerDecision());
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Keys, schema, sweeper, timeouts

    @Test
    void keys_anyContent_areDistinctAndForgettable() {
        JdbcStorage storage = open();
        String big = prefix + "\u00e9\ud83d\ude00".repeat(2_600) + "{}'\"\n\t ";
        String[] subjects = {
            "plain",
            "",
            "with space",
            "new\nline",
            "quote'\"",
            "{braces}",
            "\u0000nul",
            "\ud800",
            "\udc00",
            big,
            big + "x"
        };
        TokenBucket bucket = new TokenBucket(1, 1, Duration.ofHours(1));
        String scope = prefix + "any \u0000 scope\n" + big;
        for (String subject : subjects) {
            assertThat(storage.acquire(new StateKey(scope, subject), bucket, 1, now()))
                    .as("first request of %s", subject.length() > 20 ? subject.length() + " chars" : subject)
                    .isEqualTo(Outcome.admitted(0));
        }
        for (String subject : subjects) {
            assertThat(Outcome.isAdmitted(storage.acquire(new StateKey(scope, subject), bucket, 1, now())))
                    .isFalse();
        }
        assertThat(storage.forget(big)).isEqualTo(1);
        assertThat(storage.acquire(new StateKey(scope, big), bucket, 1, now())).isEqualTo(Outcome.admitted(0));
        assertThat(Outcome.isAdmitted(storage.acquire(new StateKey(scope, big + "x"), bucket, 1, now())))
                .isFalse();
    }

    @Test
    void createSchema_runTwice_isIdempotent() throws SQLException {
        JdbcStorage storage = open();
        storage.createSchema();
        storage.createSchema();
        assertCurrent(storage);
    }

    // -----------------------------------------------------------------------------------------------------------------
    // Schema version

    /** The table's comment that the DDL of this version writes. */
    private static final String CURRENT_MARKER = "Guard schema version " + JdbcStorage.SCHEMA_VERSION;

    /** The table of the schema version's tests, whose comment they change. */
    private static final String VERSION_TABLE = "guard_version_test";

    /**
     * A table whose schema predates schema versions (its comment records none: an upgrade of the jar that did not run
     * createSchema() or the DDL again) is down in health(), naming both versions and the fix. A storage built over it
     * still decides, and its first decision logs that once, at WARN; later ones log nothing. createSchema() records
     * the version, after which the storage is healthy and a storage built then logs nothing.
     */
    @Test
    void schemaVersion_noneRecorded_healthIsDownAndTheFirstDecisionWarnsOnceUntilCreateSchema() throws SQLException {
        String table = VERSION_TABLE;
        JdbcDialect dialect = current(table).dialect();
        setTableComment(dialect, table, null);
        int warned = schemaWarnings(table).size();
        JdbcStorage storage = versioned(table);
        String expected = dialect.label() + " table " + table + " has no schema version (a schema from before"
                + " versions), this Guard needs version " + JdbcStorage.SCHEMA_VERSION + ": run createSchema() or "
                + schemaFile(dialect) + " again";

        StorageHealth health = storage.health();
        assertThat(health.up()).as("health of a schema without a version").isFalse();
        assertThat(health.detail()).isEqualTo(expected);
        assertThat(schemaWarnings(table)).as("before any decision").hasSize(warned);

        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey k = key("version");
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(1));
        assertThat(schemaWarnings(table).subList(warned, schemaWarnings(table).size()))
                .singleElement(as(InstanceOfAssertFactories.STRING))
                .contains(expected);
        Batch chain = Batch.of(new Step(key("version"), bucket, 1), new Step(k, bucket, 1));
        assertThat(storage.evaluate(chain, now()).admitted()).isTrue();
        assertThat(Outcome.isAdmitted(storage.acquire(k, bucket, 1, now()))).isFalse();
        assertThat(schemaWarnings(table)).as("after later decisions").hasSize(warned + 1);

        storage.createSchema();
        assertCurrent(storage);
        assertThat(versioned(table).acquire(key("version"), bucket, 1, now())).isEqualTo(Outcome.admitted(1));
        assertThat(schemaWarnings(table))
                .as("a storage built over the current schema")
                .hasSize(warned + 1);
    }

    /**
     * A storage built over an old schema whose application then runs createSchema(), as the README shows, logs
     * nothing at its first decision: by then the schema is current.
     */
    @Test
    void schemaVersion_createSchemaAfterBuildingOverAnOldOne_noWarning() throws SQLException {
        String table = VERSION_TABLE;
        JdbcDialect dialect = current(table).dialect();
        setTableComment(dialect, table, "rate limits of the bot");
        int warned = schemaWarnings(table).size();
        JdbcStorage storage = versioned(table);
        assertThat(storage.health().up()).isFalse();

        storage.createSchema();

        assertThat(storage.acquire(key("version"), new Cooldown(Duration.ofSeconds(1)), 1, now()))
                .isEqualTo(Outcome.admitted(0));
        assertThat(schemaWarnings(table)).hasSize(warned);
        assertCurrent(storage);
    }

    /**
     * A schema that a later Guard installed (another process upgraded first) is no match either: health() says so,
     * and this version's createSchema() takes it back to this version.
     */
    @Test
    void schemaVersion_newerThanThisGuards_healthIsDownUntilCreateSchemaInstallsThisOne() throws SQLException {
        String table = VERSION_TABLE;
        JdbcDialect dialect = current(table).dialect();
        int newer = JdbcStorage.SCHEMA_VERSION + 1;
        setTableComment(dialect, table, "Guard schema version " + newer);
        JdbcStorage storage = versioned(table);

        assertThat(storage.health().up()).isFalse();
        assertThat(storage.health().detail())
                .isEqualTo(dialect.label() + " table " + table + " has schema version " + newer
                        + ", newer than the version " + JdbcStorage.SCHEMA_VERSION + " this Guard needs: upgrade"
                        + " Guard here too (this Guard's createSchema() or " + schemaFile(dialect)
                        + " would take the table back to version " + JdbcStorage.SCHEMA_VERSION + ")");

        storage.createSchema();
        assertCurrent(storage);
    }

    /**
     * createSchema() over a schema of this version leaves the table's comment alone: on MariaDB and MySQL the ALTER
     * TABLE that writes it would wait for every open transaction on the table, and hold up the decisions after it.
     * Over a schema without a version it writes the comment.
     */
    @Test
    void createSchema_overACurrentSchema_doesNotWriteTheVersionAgain() throws SQLException {
        String table = VERSION_TABLE;
        JdbcDialect dialect = current(table).dialect();
        CountingDataSource counting = new CountingDataSource(database().dataSource());
        JdbcStorage storage =
                track(configure(JdbcStorage.builder(counting).table(table).sweepInterval(Duration.ZERO))
                        .build());

        counting.reset();
        storage.createSchema();
        assertThat(counting.plainStatements)
                .as("createSchema() over a current schema")
                .isNotEmpty()
                .noneMatch(TableSql::recordsVersion);

        setTableComment(dialect, table, null);
        counting.reset();
        storage.createSchema();
        assertThat(counting.plainStatements)
                .as("createSchema() over a schema without a version")
                .filteredOn(TableSql::recordsVersion)
                .hasSize(1);
        assertCurrent(storage);
    }

    /**
     * createSchema() over a current schema, as a second bot process runs it at start-up while the first serves
     * traffic, waits for no lock on the table: a decision's write transaction that is still open (a row of the table
     * updated) does not hold it up. A statement that waited would also make the decisions after it queue behind it
     * (on PostgreSQL, CREATE INDEX IF NOT EXISTS takes a SHARE lock on the table before it finds the index). The
     * storage's connections wait for a lock 2 s at most, so that a wait fails the test rather than hanging it.
     */
    @Test
    void createSchema_overACurrentSchemaWhileAWriteTransactionIsOpen_waitsForNoLock() throws SQLException {
        String table = "guard_schema_lock_test";
        JdbcStorage decisions = track(configure(database().builder(table)).build());
        StateKey k = key("schema-lock");
        assertThat(decisions.acquire(k, new Cooldown(Duration.ofHours(1)), 1, now()))
                .isEqualTo(Outcome.admitted(0));
        try (HikariDataSource waitingBriefly = database().poolWaitingForLocksAtMost(2);
                JdbcStorage starting = configure(
                                JdbcStorage.builder(waitingBriefly).table(table).sweepInterval(Duration.ZERO))
                        .build();
                Connection holder = database().dataSource().getConnection()) {
            holder.setAutoCommit(false);
            try (PreparedStatement ps =
                    holder.prepareStatement("UPDATE " + table + " SET version = version WHERE key_hash = ?")) {
                ps.setBytes(1, KeyCodec.keyHash(k));
                assertThat(ps.executeUpdate()).isEqualTo(1);
            }
            try {
                starting.createSchema();
            } finally {
                holder.rollback();
                holder.setAutoCommit(true);
            }
            assertCurrent(starting);
        }
    }

    /** {@code storage}'s table records this version, and its health is up. */
    private void assertCurrent(JdbcStorage storage) throws SQLException {
        assertThat(tableComment(storage.dialect(), storage.table())).isEqualTo(CURRENT_MARKER);
        assertThat(storage.health().up()).as("health of %s", storage).isTrue();
        assertThat(storage.health().detail()).isEqualTo(storage.dialect().label() + " " + storage.table());
    }

    /** A storage on {@code table} whose schema createSchema() has just made current. */
    private JdbcStorage current(String table) {
        JdbcStorage storage = versioned(table);
        storage.createSchema();
        return storage;
    }

    /** A new storage on {@code table}, as configured by this test class. */
    private JdbcStorage versioned(String table) {
        return track(configure(JdbcStorage.builder(database().dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO))
                .build());
    }

    /** What JdbcStorage has logged at WARN about {@code table}'s schema version so far, oldest first. */
    private static List<String> schemaWarnings(String table) {
        return RecordingLogs.messages(JdbcStorage.class, Level.WARN, " table " + table + " has ");
    }

    private static String schemaFile(JdbcDialect dialect) {
        return dialect == JdbcDialect.POSTGRESQL
                ? "postgresql.sql"
                : dialect == JdbcDialect.H2 ? "h2.sql" : "mariadb.sql";
    }

    /** Sets the comment of {@code table} (created with its default name case), or removes it when null. */
    private void setTableComment(JdbcDialect dialect, String table, String comment) throws SQLException {
        String text = comment == null ? null : "'" + comment + "'";
        execute(
                switch (dialect) {
                    case POSTGRESQL, H2 ->
                        "COMMENT ON TABLE " + quoted(dialect, table) + " IS " + (text == null ? "NULL" : text);
                    case MARIADB, MYSQL ->
                        "ALTER TABLE " + quoted(dialect, table) + " COMMENT = " + (text == null ? "''" : text);
                });
    }

    /** The comment of {@code table} (created with its default name case), as the database answers it. */
    private String tableComment(JdbcDialect dialect, String table) throws SQLException {
        String query =
                switch (dialect) {
                    case POSTGRESQL ->
                        "SELECT obj_description(CAST('" + quoted(dialect, table) + "' AS regclass), 'pg_class')";
                    case MARIADB, MYSQL ->
                        "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                                + " AND TABLE_NAME = '" + table + "'";
                    case H2 ->
                        "SELECT REMARKS FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = CURRENT_SCHEMA"
                                + " AND TABLE_NAME = '" + table.toUpperCase(Locale.ROOT) + "'";
                };
        try (Connection c = database().dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(query)) {
            assertThat(rs.next()).as("the table %s exists", table).isTrue();
            String comment = rs.getString(1);
            if (!c.getAutoCommit()) {
                c.commit();
            }
            return comment;
        }
    }

    /**
     * Tables named by words that PostgreSQL, MariaDB or H2 reserve work: createSchema() creates each under that name
     * (twice: it is idempotent), and decisions, the stored function's included, records, members, forget and the
     * sweeper find it there. The state is in that table.
     */
    @Test
    void table_reservedWord_createsTheSchemaAndKeepsTheStateInThatTable() throws SQLException {
        for (String table : List.of("order", "user", "key")) {
            ManualTicker sweepClock = ManualTicker.create();
            sweepClock.set(ticker.now());
            JdbcStorage storage = track(configure(JdbcStorage.builder(database().dataSource())
                            .table(table)
                            .sweepInterval(Duration.ZERO)
                            .ticker(sweepClock)
                            .sweepGrace(Duration.ZERO))
                    .build());
            storage.createSchema();
            storage.createSchema();
            assertThat(storage.health().detail()).isEqualTo(storage.dialect().label() + " " + table);
            assertThat(storage.health().up()).as("health of %s", table).isTrue();
            String quoted = quoted(storage.dialect(), table);

            TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
            StateKey k = key("reserved-" + table);
            assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(1));
            Batch chain = Batch.of(new Step(key("reserved-" + table), bucket, 1), new Step(k, bucket, 1));
            assertThat(storage.evaluate(chain, now()).admitted()).isTrue();
            assertThat(Outcome.isAdmitted(storage.acquire(k, bucket, 1, now()))).isFalse();
            assertThat(rowCount(quoted, KeyCodec.keyHash(k)))
                    .as("%s holds the bucket", quoted)
                    .isEqualTo(1);

            StateKey record = key("reserved-record");
            assertThat(storage.putRecord(record, new byte[] {7}, 0)).isEqualTo(1);
            assertThat(storage.getRecord(record)).isEqualTo(Optional.of(new VersionedRecord(new byte[] {7}, 1)));
            StateKey member = key("reserved-member");
            storage.addMember(member, now() + 1_000_000, now());
            assertThat(storage.isMember(member, now())).isTrue();
            assertThat(rowCount(quoted, KeyCodec.keyHash(member))).isEqualTo(1);

            assertThat(storage.forget(k.subject())).isEqualTo(1);
            assertThat(rowCount(quoted, KeyCodec.keyHash(k))).isZero();
            sweepClock.advance(Duration.ofSeconds(2));
            assertThat(storage.sweep()).as("the expired membership").isPositive();
            assertThat(rowCount(quoted, KeyCodec.keyHash(member))).isZero();
        }
    }

    /**
     * A table that the shipped DDL created under another unreserved name, in mixed case and without quotes (the
     * README's way to use another name), is the table that a storage of that name uses: its statements fold the name
     * as the database folds an unquoted one.
     */
    @Test
    void table_createdByTheShippedDdlUnderAnotherName_isTheTableInUse() throws SQLException {
        String table = "Guard_Ddl_Test";
        JdbcStorage storage = track(configure(JdbcStorage.builder(database().dataSource())
                        .table(table)
                        .sweepInterval(Duration.ZERO))
                .build());
        String ddl = JdbcStorage.schemaDdl(storage.dialect()).replace("guard_state", table);
        try (Connection c = database().dataSource().getConnection();
                Statement s = c.createStatement()) {
            for (String statement : ddl.split("\n-- statement\n")) {
                s.execute(statement);
            }
            if (!c.getAutoCommit()) {
                c.commit();
            }
        }
        assertThat(storage.health().up()).isTrue();
        TokenBucket bucket = new TokenBucket(2, 1, Duration.ofHours(1));
        StateKey k = key("ddl");
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(1));
        Batch chain = Batch.of(new Step(key("ddl"), bucket, 1), new Step(k, bucket, 1));
        assertThat(storage.evaluate(chain, now()).admitted()).isTrue();
        assertThat(rowCount(table, KeyCodec.keyHash(k))).isEqualTo(1);
    }

    /** A table's name as a user quotes it in each dialect: folded as the database folds unquoted names. */
    private static String quoted(JdbcDialect dialect, String table) {
        return switch (dialect) {
            case POSTGRESQL -> '"' + table.toLowerCase(Locale.ROOT) + '"';
            case H2 -> '"' + table.toUpperCase(Locale.ROOT) + '"';
            case MARIADB, MYSQL -> '`' + table + '`';
        };
    }

    @Test
    void health_missingTable_isDownWithoutThrowing() {
        JdbcStorage storage = track(configure(JdbcStorage.builder(database().dataSource())
                        .table("guard_state_missing")
                        .sweepInterval(Duration.ZERO))
                .build());
        assertThat(storage.health().up()).isFalse();
        assertThat(storage.health().detail())
                .startsWith("jdbc health failed: " + storage.dialect().label());
    }

    @Test
    void sweep_deletesExpiredRowsOnlyAfterTheGrace() {
        String table = "guard_sweep_test";
        ManualTicker sweepClock = ManualTicker.create();
        JdbcStorage storage = track(configure(database()
                        .builder(table)
                        .ticker(sweepClock)
                        .sweepGrace(Duration.ofSeconds(10))
                        .sweepBatchSize(3))
                .build());
        storage.sweep(); // leftovers of earlier runs
        sweepClock.set(ticker.now());
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(5));
        List<StateKey> keys = new ArrayList<>();
        for (int i = 0; i < 7; i++) {
            keys.add(key("sweep"));
            storage.acquire(keys.get(i), cooldown, 1, now());
        }
        StateKey lasting = key("sweep");
        storage.addMember(lasting, Long.MAX_VALUE, now());

        sweepClock.advance(Duration.ofSeconds(14));
        assertThat(storage.sweep()).as("expired 9 s ago, within the grace").isZero();
        assertThat(Outcome.isAdmitted(storage.acquire(keys.get(0), cooldown, 0, now())))
                .isFalse();

        sweepClock.advance(Duration.ofSeconds(2));
        assertThat(storage.sweep()).isEqualTo(7);
        assertThat(storage.sweep()).isZero();
        assertThat(storage.isMember(lasting, sweepClock.epochMicros())).isTrue();
        // Deleted rows are absent, which is what they already were: the cooldown passes.
        assertThat(storage.acquire(keys.get(0), cooldown, 1, sweepClock.epochMicros()))
                .isEqualTo(Outcome.admitted(0));
    }

    /**
     * One sweep batch of 2 rows, in flight (its rows locked, its transaction open), must leave every other row free:
     * a decision on a live row the batch walked past, a first touch of a new key between its rows and a decision
     * that revives an expired row after it all go through at once. The sweep then goes on past a run of live rows
     * longer than a batch, deletes every row that expired and keeps the revived one.
     */
    @Test
    void sweep_batchInFlight_locksNothingButItsOwnRows() throws SQLException {
        String table = "guard_sweep_lock_test";
        JdbcStorage decisions = track(configure(database().builder(table))
                .timeout(Duration.ofSeconds(1))
                .build());
        execute("DELETE FROM " + table);
        List<StateKey> keys = keysInHashOrder("sweep-lock", 14);
        // In key hash order: 3 live rows, then expired ones, the batch's 2 (3 and 6) around a new key (4) and a
        // live row (5); the expired row 7 is revived while the batch is in flight.
        List<Integer> live = List.of(0, 1, 2, 5, 12);
        int fresh = 4;
        int revived = 7;
        Cooldown shortCooldown = new Cooldown(Duration.ofSeconds(5));
        Cooldown longCooldown = new Cooldown(Duration.ofHours(1));
        for (int i = 0; i < keys.size(); i++) {
            if (i != fresh) {
                assertThat(decisions.acquire(keys.get(i), live.contains(i) ? longCooldown : shortCooldown, 1, now()))
                        .isEqualTo(Outcome.admitted(0));
            }
        }
        ticker.advance(Duration.ofSeconds(6));

        List<String> duringBatch = new ArrayList<>();
        Runnable decide = () -> {
            for (int i : List.of(5, fresh, revived)) {
                try {
                    long outcome = decisions.acquire(keys.get(i), i == 5 ? longCooldown : shortCooldown, 1, now());
                    duringBatch.add(i + (Outcome.isAdmitted(outcome) ? " admitted" : " rejected"));
                } catch (GuardStorageException e) {
                    duringBatch.add(i + " failed: " + e.getMessage());
                }
            }
        };
        HookedDataSource hooked = new HookedDataSource(database().dataSource(), "SKIP LOCKED", decide);
        JdbcStorage sweeper = track(configure(JdbcStorage.builder(hooked)
                        .table(table)
                        .sweepInterval(Duration.ZERO)
                        .ticker(ticker)
                        .sweepGrace(Duration.ZERO)
                        .sweepBatchSize(2))
                .build());

        long deleted = sweeper.sweep();
        assertThat(hooked.ran()).isTrue();
        assertThat(duringBatch).containsExactly("5 rejected", "4 admitted", "7 admitted");
        assertThat(deleted).as("expired rows deleted").isEqualTo(7);
        assertThat(tableRows(table)).as("live, new and revived rows").isEqualTo(7);
        ticker.advance(Duration.ofSeconds(1));
        assertThat(Outcome.isAdmitted(decisions.acquire(keys.get(revived), shortCooldown, 1, now())))
                .as("the revived cooldown still runs")
                .isFalse();
        assertThat(Outcome.isAdmitted(decisions.acquire(keys.get(fresh), shortCooldown, 1, now())))
                .isFalse();
    }

    /**
     * A storage on {@code table}, emptied, on the suite's clock, whose sweeper deletes expired rows at once (no grace)
     * one row a batch.
     */
    private JdbcStorage sweepingOneRowABatch(String table) throws SQLException {
        JdbcStorage storage = track(configure(database()
                        .builder(table)
                        .ticker(ticker)
                        .sweepGrace(Duration.ZERO)
                        .sweepBatchSize(1))
                .build());
        execute("DELETE FROM " + table);
        return storage;
    }

    /**
     * A sweep batch looks at a window of 8 batch sizes of keys at most, however few of them have expired: with batches
     * of one row, one call (100 batches) looks at 800 keys at most, so an expired row behind 850 live ones is left to
     * the next call, which goes on where the first stopped. A search for expired rows alone would have read past all
     * the live rows in one statement (a large table of them would run past the statement timeout, for ever).
     */
    @Test
    void sweep_liveRowsBeyondOneCallsWindows_areLookedAtOverSeveralCalls() throws SQLException {
        String table = "guard_sweep_window_test";
        JdbcStorage storage = sweepingOneRowABatch(table);
        List<StateKey> keys = keysInHashOrder("sweep-window", 851);
        Cooldown shortCooldown = new Cooldown(Duration.ofSeconds(5));
        Cooldown longCooldown = new Cooldown(Duration.ofHours(1));
        for (int i = 0; i < keys.size(); i++) {
            Cooldown cooldown = i == keys.size() - 1 ? shortCooldown : longCooldown;
            assertThat(storage.acquire(keys.get(i), cooldown, 1, now())).isEqualTo(Outcome.admitted(0));
        }
        ticker.advance(Duration.ofSeconds(6));

        assertThat(storage.sweep())
                .as("the first call's 100 windows end before the expired row")
                .isZero();
        assertThat(storage.sweep()).as("the second call goes on and reaches it").isEqualTo(1);
        assertThat(tableRows(table)).isEqualTo(850);
        assertThat(storage.sweep()).as("starts over, nothing left to delete").isZero();
    }

    /**
     * A sweeper run walks 100 batches at most. One that stops there having deleted full batches has fallen behind a
     * bot that creates expiring keys faster than a run per interval deletes them: the background sweeper runs again
     * at once. The run that then reaches the end of the table waits the whole interval.
     */
    @Test
    void sweepRun_stoppedAtItsCapWithExpiredRowsLeft_nextRunComesAtOnce() throws SQLException {
        String table = "guard_sweep_cap_test";
        JdbcStorage storage = sweepingOneRowABatch(table);
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(5));
        for (int i = 0; i < 150; i++) {
            assertThat(storage.acquire(key("sweep-cap"), cooldown, 1, now())).isEqualTo(Outcome.admitted(0));
        }
        ticker.advance(Duration.ofSeconds(6));
        long interval = Duration.ofMinutes(1).toNanos() / 1000;

        JdbcStorage.SweepRun first = storage.sweepRun();
        assertThat(first).isEqualTo(new JdbcStorage.SweepRun(100, true));
        assertThat(JdbcStorage.nextSweepDelayMicros(first, 1, interval))
                .as("behind: the next run comes at once")
                .isZero();
        JdbcStorage.SweepRun second = storage.sweepRun();
        assertThat(second).isEqualTo(new JdbcStorage.SweepRun(50, false));
        assertThat(JdbcStorage.nextSweepDelayMicros(second, 1, interval))
                .as("caught up: the next run waits the interval")
                .isEqualTo(interval);
        assertThat(tableRows(table)).isZero();
    }

    @Test
    void decisions_rowLockedLongerThanTheTimeout_failWithGuardStorageExceptionAndRecover() throws Exception {
        JdbcStorage storage = track(
                configure(database().builder()).timeout(Duration.ofSeconds(1)).build());
        TokenBucket bucket = new TokenBucket(5, 1, Duration.ofHours(1));
        StateKey k = key("locked");
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(4));

        try (Connection holder = database().lockingRowOf(k)) {
            assertThatThrownBy(() -> storage.acquire(k, bucket, 1, now()))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageStartingWith(
                            "jdbc acquire failed: " + storage.dialect().label());
            // A chain goes another way (PostgreSQL's evaluate function) under the same timeout.
            Batch chain = Batch.of(new Step(key("free"), bucket, 1), new Step(k, bucket, 1));
            assertThatThrownBy(() -> storage.evaluate(chain, now()))
                    .isInstanceOf(GuardStorageException.class)
                    .hasMessageStartingWith(
                            "jdbc evaluate failed: " + storage.dialect().label());
            holder.rollback();
            holder.setAutoCommit(true);
        }
        assertThat(storage.acquire(k, bucket, 1, now())).isEqualTo(Outcome.admitted(3));
    }

    @Test
    void recordsAndMembers_writeReadRemove_leaveNoRowBehind() throws SQLException {
        JdbcStorage storage = open();
        StateKey record = key("record");
        assertThat(storage.getRecord(record)).isEmpty();
        assertThat(storage.putRecord(record, new byte[] {1, 2}, 1)).isEqualTo(-1);
        assertThat(storage.putRecord(record, new byte[] {1, 2}, 0)).isEqualTo(1);
        assertThat(storage.putRecord(record, new byte[] {3}, 1)).isEqualTo(2);
        assertThat(storage.getRecord(record)).isEqualTo(Optional.of(new VersionedRecord(new byte[] {3}, 2)));

        StateKey member = key("set");
        storage.addMember(member, now() + 1_000_000, now());
        assertThat(storage.isMember(member, now())).isTrue();
        assertThat(storage.acquire(member, Membership.MUST_BE_ABSENT, 1, now())).isEqualTo(Outcome.rejected(1_000_000));
        assertThat(storage.removeMember(member)).isTrue();
        assertThat(storage.removeMember(member)).isFalse();
        assertThat(rowCount(KeyCodec.keyHash(member))).isZero();
    }

    private void execute(String statement) throws SQLException {
        try (Connection c = database().dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(statement)) {
            ps.executeUpdate();
            if (!c.getAutoCommit()) {
                c.commit();
            }
        }
    }

    private long tableRows(String table) throws SQLException {
        try (Connection c = database().dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM " + table);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            long n = rs.getLong(1);
            if (!c.getAutoCommit()) {
                c.commit();
            }
            return n;
        }
    }

    private long rowCount(byte[] hash) throws SQLException {
        return rowCount(TestDatabase.TABLE, hash);
    }

    /** The rows of a key hash in {@code table}, as written in SQL. */
    private long rowCount(String table, byte[] hash) throws SQLException {
        try (Connection c = database().dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM " + table + " WHERE key_hash = ?")) {
            ps.setBytes(1, hash);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                long n = rs.getLong(1);
                if (!c.getAutoCommit()) {
                    c.commit();
                }
                return n;
            }
        }
    }
}
