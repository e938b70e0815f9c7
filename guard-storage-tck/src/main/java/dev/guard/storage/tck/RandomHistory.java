package dev.guard.storage.tck;

import static org.assertj.core.api.Assertions.assertThat;

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
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Function;

/**
 * One seeded random history for the differential test: the same calls go to the backend (spread over its clients)
 * and to a {@link ReferenceStorage}, and every answer must be identical.
 *
 * <p>The clock mostly moves forward, sometimes not at all, and sometimes a little backwards. Before it moves back,
 * every key is read at the newest time so far: a backend may expire state by the newest time it has seen (Caffeine
 * driven by callers' clocks, Redis by its own), while the reference drops expired state only when it reads it; the
 * read makes both sides agree on what has expired. For the same reason gates and memberships are set to deadlines
 * after the newest time, and a membership is read before it is removed.
 *
 * <p>Batches go alternately through {@link Storage#evaluate} and {@link Storage#evaluateInPlace}, the latter with one
 * {@link BatchBuffer} that the history reuses for every call, so that the differential test covers both paths and a
 * backend's reuse of a caller's buffer.
 *
 * <p>A {@linkplain #mixed mixed} history changes a key's limit now and then to another of a wider catalog (another
 * rate, another capacity, another kind, a gate or a set), as a deploy does that changes a filter under the same name:
 * the new limit reads the old one's state by the reference's rules (another shape reads as absent, the same shape is
 * read by the new limit). On a backend that does not know which limit wrote a state (Redis, see {@link
 * LimitSpec}), the change is made where its documented differences cannot show: the old limit reads the key first
 * at the same time (so that state over by its writer's measure is gone on both sides), the new limit takes the key
 * only by writing it (an admitted step, a raised gate, an added member; until then the old one keeps it).
 */
final class RandomHistory {
    /** Specs that hit their limits often under the time steps below; one needs the overflow-safe bucket path. */
    private static final List<LimitSpec> CATALOG = List.of(
            new TokenBucket(5, 2, Duration.ofSeconds(1)),
            new TokenBucket(3, 3, Duration.ofMillis(700)),
            new TokenBucket(1, 1, Duration.ofMillis(50)),
            // 10 tokens per microsecond: now * ticksPerMicro overflows a long, so GCRA encodings must fall back.
            new TokenBucket(40, 10_000_000, Duration.ofMillis(1)),
            // 1031 ticks per microsecond at an everyday rate (103.1 tokens per second): now * ticksPerMicro passes
            // 2^60, beyond what a GCRA encoding may keep for every time below 2^53 without overflow.
            new TokenBucket(40, 1031, Duration.ofSeconds(10)),
            new FixedWindow(4, Duration.ofSeconds(1)),
            new FixedWindow(2, Duration.ofMillis(300)),
            new SlidingWindowLog(4, Duration.ofSeconds(2)),
            new SlidingWindowLog(2, Duration.ofMillis(500)),
            new SlidingWindowCounter(6, Duration.ofSeconds(2), 4),
            new SlidingWindowCounter(3, Duration.ofMillis(900), 3),
            new Cooldown(Duration.ofMillis(500)),
            new Cooldown(Duration.ofMillis(1_500)),
            new DuplicateWindow(Duration.ofMillis(800), 2),
            new DuplicateWindow(Duration.ofSeconds(2), 3),
            Gate.INSTANCE,
            Membership.MUST_BE_ABSENT);

    /**
     * The mixed histories' specs: the catalog above and more of the same shapes (sub-buckets, a log of one or two
     * timestamps beside a cooldown's deadline or a duplicate window's pair), so that one limit often reads another's
     * state as its own.
     */
    private static final List<LimitSpec> MIXED_CATALOG = concat(
            CATALOG,
            List.of(
                    new SlidingWindowCounter(2, Duration.ofMillis(800), 4),
                    new SlidingWindowCounter(5, Duration.ofSeconds(3), 3),
                    new SlidingWindowLog(1, Duration.ofMillis(700)),
                    new FixedWindow(3, Duration.ofSeconds(2)),
                    new DuplicateWindow(Duration.ofMillis(300), 1),
                    new TokenBucket(2, 1, Duration.ofMillis(400))));

    private final long seed;
    private final Random random;
    private final List<Storage> clients;
    private final BiConsumer<Storage, Long> maintenance;
    private final ReferenceStorage reference = ReferenceStorage.create();
    private final List<StateKey> keys = new ArrayList<>();
    private final List<LimitSpec> specs = new ArrayList<>();
    private final BatchBuffer buffer = new BatchBuffer(1);
    private final boolean mixed;
    private final boolean knowsWriters;
    private long now;
    private long newest;
    private int step;
    private boolean inPlace;

    /**
     * A history of {@code seed} over {@code clients} of one backend, with keys from {@code keyFactory}, starting at
     * {@code startMicros}; {@code maintenance} runs the backend's expiry work now and then.
     */
    RandomHistory(
            long seed,
            List<Storage> clients,
            Function<String, StateKey> keyFactory,
            long startMicros,
            BiConsumer<Storage, Long> maintenance) {
        this(seed, clients, keyFactory, startMicros, maintenance, false, true);
    }

    private RandomHistory(
            long seed,
            List<Storage> clients,
            Function<String, StateKey> keyFactory,
            long startMicros,
            BiConsumer<Storage, Long> maintenance,
            boolean mixed,
            boolean knowsWriters) {
        this.seed = seed;
        this.mixed = mixed;
        this.knowsWriters = knowsWriters;
        this.random = new Random(seed);
        this.clients = clients;
        this.maintenance = maintenance;
        this.now = startMicros;
        this.newest = startMicros;
        List<LimitSpec> catalog = mixed ? MIXED_CATALOG : CATALOG;
        int count = 6 + random.nextInt(6);
        for (int i = 0; i < count; i++) {
            LimitSpec spec = catalog.get(random.nextInt(catalog.size()));
            keys.add(keyFactory.apply("k" + i));
            specs.add(spec);
        }
    }

    /**
     * A history as the constructor's whose keys change their limits now and then; {@code knowsWriters}: whether the
     * backend knows which limit wrote a state (every backend but Redis).
     */
    static RandomHistory mixed(
            long seed,
            List<Storage> clients,
            Function<String, StateKey> keyFactory,
            long startMicros,
            BiConsumer<Storage, Long> maintenance,
            boolean knowsWriters) {
        return new RandomHistory(seed, clients, keyFactory, startMicros, maintenance, true, knowsWriters);
    }

    private static List<LimitSpec> concat(List<LimitSpec> a, List<LimitSpec> b) {
        List<LimitSpec> all = new ArrayList<>(a);
        all.addAll(b);
        return List.copyOf(all);
    }

    void run(int operations) {
        try {
            for (step = 0; step < operations; step++) {
                moveClock();
                operate();
                if (random.nextInt(8) == 0) {
                    // Eviction at any moment must not change a decision.
                    maintenance.accept(clients.get(0), newest);
                }
            }
        } finally {
            reference.close();
        }
    }

    /** The newest time this history has passed to the storage. */
    long newest() {
        return newest;
    }

    private void moveClock() {
        int r = random.nextInt(100);
        if (r < 4) {
            touchEveryKeyAtNewest();
            now = newest - 1 - random.nextInt(300_000);
            return;
        }
        long delta;
        if (r < 30) {
            delta = 0;
        } else if (r < 60) {
            delta = 1 + random.nextInt(1_000);
        } else if (r < 92) {
            delta = 1 + random.nextInt(200_000);
        } else {
            delta = 1 + random.nextInt(5_000_000);
        }
        now += delta;
        newest = Math.max(newest, now);
    }

    private void touchEveryKeyAtNewest() {
        for (int i = 0; i < keys.size(); i++) {
            // Zero permits look, but for a duplicate window, whose zero is an item like any other: it is remembered
            // (unless already there), the same in the backend and the reference.
            Batch look = Batch.of(new Step(keys.get(i), specs.get(i), 0));
            compareEvaluate(client(), look, newest, "look before the clock goes back");
        }
    }

    private void operate() {
        if (mixed && random.nextInt(100) < 8) {
            changeLimit(random.nextInt(keys.size()));
            return;
        }
        int r = random.nextInt(100);
        if (r < 60) {
            compareEvaluate(client(), randomBatch(), now, "evaluate");
        } else if (r < 72) {
            Step s = randomStep(random.nextInt(keys.size()));
            Storage client = client();
            long backend = client.acquire(s.key(), s.spec(), s.permits(), now);
            long expected = reference.acquire(s.key(), s.spec(), s.permits(), now);
            checkOutcome("acquire " + s, backend, expected);
        } else if (r < 78) {
            Batch batch = randomBatch();
            BatchResult backend;
            try {
                backend =
                        client().evaluateAsync(batch, now).toCompletableFuture().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError(where("evaluateAsync " + batch.steps()) + " failed", e);
            }
            check("evaluateAsync " + batch.steps(), backend, reference.evaluate(batch, now));
        } else {
            operateOnSetsAndGates(r);
        }
    }

    /** A deploy that changes the limit at key {@code i} to another of the catalog. */
    private void changeLimit(int i) {
        LimitSpec old = specs.get(i);
        LimitSpec next = old;
        while (next.equals(old)) {
            next = MIXED_CATALOG.get(random.nextInt(MIXED_CATALOG.size()));
        }
        if (knowsWriters) {
            specs.set(i, next);
            return;
        }
        StateKey key = keys.get(i);
        Storage client = client();
        compareEvaluate(client, Batch.of(new Step(key, old, 0)), now, "look by " + old + " before " + next);
        if (next instanceof Gate) {
            raiseGate(client, key);
        } else if (next instanceof Membership) {
            addMember(client, key);
        } else {
            Step s = new Step(key, next, permits(next, false));
            long backend = client.acquire(key, next, s.permits(), now);
            long expected = reference.acquire(key, next, s.permits(), now);
            checkOutcome("acquire " + s + " after " + old, backend, expected);
            if (!Outcome.isAdmitted(expected)) {
                return; // the old limit's state is still live by the new one's measure: the old limit keeps the key
            }
        }
        specs.set(i, next);
    }

    private void raiseGate(Storage client, StateKey key) {
        long until = newest + 1 + random.nextInt(2_000_000);
        check(
                "raiseGate " + key + " to " + until,
                client.raiseGate(key, until, now),
                reference.raiseGate(key, until, now));
    }

    private void addMember(Storage client, StateKey key) {
        long expiresAt = random.nextInt(5) == 0 ? Long.MAX_VALUE : newest + 1 + random.nextInt(3_000_000);
        client.addMember(key, expiresAt, now);
        reference.addMember(key, expiresAt, now);
    }

    private void operateOnSetsAndGates(int r) {
        int i = random.nextInt(keys.size());
        StateKey key = keys.get(i);
        LimitSpec spec = specs.get(i);
        Storage client = client();
        if (spec instanceof Gate) {
            raiseGate(client, key);
        } else if (spec instanceof Membership) {
            if (r < 86) {
                addMember(client, key);
            } else {
                check("isMember " + key, client.isMember(key, now), reference.isMember(key, now));
                if (r < 93) {
                    check("removeMember " + key, client.removeMember(key), reference.removeMember(key));
                }
            }
        } else {
            compareEvaluate(client, Batch.of(randomStep(i)), now, "evaluate");
        }
    }

    private Batch randomBatch() {
        int size = 1 + random.nextInt(3);
        List<Integer> chosen = new ArrayList<>();
        while (chosen.size() < Math.min(size, keys.size())) {
            int i = random.nextInt(keys.size());
            if (!chosen.contains(i)) {
                chosen.add(i);
            }
        }
        List<Step> steps = new ArrayList<>();
        for (int i : chosen) {
            steps.add(randomStep(i));
        }
        return new Batch(steps);
    }

    private Step randomStep(int i) {
        LimitSpec spec = specs.get(i);
        long permits = permits(spec, true);
        if (spec instanceof Membership && random.nextBoolean()) {
            spec = Membership.MUST_BE_PRESENT;
        }
        return new Step(keys.get(i), spec, permits);
    }

    /** Random permits for {@code spec}; {@code beyond}: sometimes one more than its limit. */
    private long permits(LimitSpec spec, boolean beyond) {
        if (spec instanceof TokenBucket b) {
            return randomPermits(b.capacity(), beyond);
        } else if (spec instanceof FixedWindow w) {
            return randomPermits(w.limit(), beyond);
        } else if (spec instanceof SlidingWindowLog w) {
            return randomPermits(w.limit(), beyond);
        } else if (spec instanceof SlidingWindowCounter c) {
            return randomPermits(c.limit(), beyond);
        } else if (spec instanceof Cooldown) {
            return random.nextInt(3);
        } else if (spec instanceof DuplicateWindow) {
            // A few items, so that copies are frequent, and now and then one near 2^53.
            return random.nextInt(10) == 0 ? (1L << 53) - 1 - random.nextInt(2) : random.nextInt(5);
        }
        return random.nextInt(2);
    }

    /** Mostly one permit, sometimes none, sometimes up to the limit or (when {@code beyond}) one more. */
    private long randomPermits(long limit, boolean beyond) {
        int r = random.nextInt(100);
        if (r < 12) {
            return 0;
        }
        if (r < 75) {
            return 1;
        }
        return 1 + random.nextInt((int) Math.min(beyond ? limit + 1 : limit, 50));
    }

    private Storage client() {
        return clients.get(random.nextInt(clients.size()));
    }

    private void compareEvaluate(Storage client, Batch batch, long at, String what) {
        inPlace = !inPlace;
        BatchResult backend;
        if (inPlace) {
            buffer.clear();
            for (Step s : batch.steps()) {
                buffer.add(s);
            }
            boolean admitted = client.evaluateInPlace(buffer, at);
            backend = buffer.toResult();
            check(what + " in place " + batch.steps() + ": admitted", admitted, backend.admitted());
            what += " in place";
        } else {
            backend = client.evaluate(batch, at);
        }
        BatchResult expected = reference.evaluate(batch, at);
        check(what + " " + batch.steps(), backend, expected);
    }

    private void check(String what, Object backend, Object expected) {
        assertThat(backend)
                .as(() -> where(what) + ": the backend answered " + backend + " but the reference " + expected)
                .isEqualTo(expected);
    }

    private void checkOutcome(String what, long backend, long expected) {
        if (backend != expected) {
            throw new AssertionError(where(what) + ": the backend answered " + Outcome.toString(backend)
                    + " but the reference " + Outcome.toString(expected));
        }
    }

    private String where(String what) {
        return "seed " + seed + ", step " + step + ", now " + now + " (newest " + newest + "): " + what;
    }
}
