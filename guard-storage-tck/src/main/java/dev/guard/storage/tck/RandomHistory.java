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
import java.time.temporal.ChronoUnit;
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
 *
 * <p>A history {@linkplain #atTheEdges at the edges} draws its limits at random from the extremes that are still
 * valid (limits and capacities of 1 and near 2<sup>53</sup>, windows and periods of a microsecond and of centuries,
 * token buckets and fixed windows on either side of the memory storage's packed encodings' limits), asks for 0, the
 * limit less one, the limit, one more and {@link Long#MAX_VALUE} permits, jumps the clock by lengths of its limits
 * (one less, exactly, one more) and by up to centuries, and runs in one {@linkplain Era era} of the time line, up to
 * the end of the backend's range: a hand-made limit found defects there that everyday histories never reach.
 *
 * <p>Everything follows from the seed, the era and what the backend accepts: a failure names them all, and running
 * the same test again on the same backend repeats the history exactly.
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

    /** 2<sup>53</sup>: where Lua's numbers stop being exact, the end of Redis' time range. */
    private static final long EXACT = LimitSpec.EXACT_LIMIT;

    /** The longest length a limit accepts: 2<sup>53</sup> - 1 microseconds, about 285 years. */
    private static final long LONGEST = EXACT - 1;

    private static final long SECOND = 1_000_000L;
    private static final long HOUR = 3_600 * SECOND;
    private static final long DAY = 24 * HOUR;

    /** A Gregorian year in microseconds. */
    private static final long YEAR = 31_556_952 * SECOND;

    /**
     * Where on the time line a history at the edges runs, in the order the test runs them: every era ends (the clock
     * stops there) before the next begins, so that no history passes a time earlier than one the backend has seen.
     */
    enum Era {
        /** From just after {@link Long#MIN_VALUE}: a clock badly broken; only where clocks before 1970 are accepted. */
        FIRST_MICROS,
        /** From just before 1970 (or from 1970 itself, where earlier clocks are refused), across 0. */
        EPOCH,
        /** From today's clock on. */
        TODAY,
        /**
         * Across 2<sup>53</sup> microseconds (the year 2255), where the memory storage's packed encodings stop; where
         * such clocks are refused (Redis), just below the last time at which every limit of the history still fits.
         */
        TWO_TO_THE_53,
        /** Across 2<sup>62</sup> microseconds, where PostgreSQL's function hands a decision to Java. */
        TWO_TO_THE_62,
        /** The last minutes of the long range, up to {@link Long#MAX_VALUE} - 1. */
        LAST_MICROS;

        /** Whether a backend that accepts these clocks runs histories in this era. */
        boolean runsOn(boolean clocksBefore1970, boolean clocksAfter2255) {
            return switch (this) {
                case FIRST_MICROS -> clocksBefore1970;
                case TWO_TO_THE_62, LAST_MICROS -> clocksAfter2255;
                default -> true;
            };
        }
    }

    /** What a failure prints first: the history's seed, era and limits, which repeat it. */
    private final String label;

    private final Random random;
    private final List<Storage> clients;
    private final BiConsumer<Storage, Long> maintenance;
    private final ReferenceStorage reference = ReferenceStorage.create();
    private final List<StateKey> keys = new ArrayList<>();
    private final List<LimitSpec> specs = new ArrayList<>();
    private final BatchBuffer buffer = new BatchBuffer(1);
    private final boolean mixed;
    private final boolean knowsWriters;
    /** Whether this is a history at the edges. */
    private final boolean edges;
    /** The specs a key may take: at first, and when its limit changes. */
    private final List<LimitSpec> catalog;
    /** The longest window or period in {@link #catalog} (buckets aside): how far clock jumps may go. */
    private final long longest;
    /** The earliest time the clock may go back to, and the latest it goes forward to (it stays there). */
    private final long floor;

    private final long ceiling;
    /** The latest deadline a gate or a membership gets but {@link Long#MAX_VALUE} (never). */
    private final long latestDeadline;

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
        this(seed, "seed", clients, keyFactory, maintenance, false, true, null, startMicros, true, true);
    }

    /**
     * The one constructor: {@code era} null for an everyday history starting at {@code startMicros}; else a history at
     * the edges in that era, {@code startMicros} being today, on a backend that accepts clocks before 1970 and at or
     * after 2<sup>53</sup> microseconds as {@code clocksBefore1970} and {@code clocksAfter2255} say.
     */
    private RandomHistory(
            long seed,
            String label,
            List<Storage> clients,
            Function<String, StateKey> keyFactory,
            BiConsumer<Storage, Long> maintenance,
            boolean mixed,
            boolean knowsWriters,
            Era era,
            long startMicros,
            boolean clocksBefore1970,
            boolean clocksAfter2255) {
        this.mixed = mixed;
        this.knowsWriters = knowsWriters;
        this.random = new Random(seed);
        this.clients = clients;
        this.maintenance = maintenance;
        this.edges = era != null;
        if (era == null) {
            this.catalog = mixed ? MIXED_CATALOG : CATALOG;
            this.longest = LONGEST;
            this.floor = Long.MIN_VALUE;
            this.ceiling = Long.MAX_VALUE;
            this.latestDeadline = Long.MAX_VALUE;
            this.now = startMicros;
        } else {
            // A backend that refuses clocks from 2^53 on (Redis) refuses a step whose time plus its limit's reach
            // (its window, its period) reaches 2^53 too: the clock stops two lengths of the longest limit short of it.
            // Near that end, the limits are short, so that the clock gets close to it.
            this.longest = clocksAfter2255 ? LONGEST : era == Era.TWO_TO_THE_53 ? HOUR : 100 * YEAR;
            long highest = clocksAfter2255 ? Long.MAX_VALUE : EXACT - 1 - 2 * longest;
            this.latestDeadline = clocksAfter2255 ? Long.MAX_VALUE : EXACT - 1;
            this.floor = clocksBefore1970 ? Long.MIN_VALUE : 0;
            long lead = random.nextInt(60_000_000);
            switch (era) {
                case FIRST_MICROS -> {
                    this.now = Long.MIN_VALUE + lead;
                    this.ceiling = Long.MIN_VALUE / 2;
                }
                case EPOCH -> {
                    this.now = clocksBefore1970 ? -1 - lead : lead;
                    this.ceiling = Math.min(startMicros - DAY, highest);
                }
                case TODAY -> {
                    this.now = startMicros;
                    this.ceiling = clocksAfter2255 ? EXACT - DAY : highest;
                }
                case TWO_TO_THE_53 -> {
                    this.now = clocksAfter2255 ? EXACT - 1 - lead : highest - lead;
                    this.ceiling = clocksAfter2255 ? (1L << 62) - DAY : highest;
                }
                case TWO_TO_THE_62 -> {
                    this.now = (1L << 62) - 1 - lead;
                    this.ceiling = Long.MAX_VALUE - DAY;
                }
                default -> {
                    // Up to Long.MAX_VALUE - 1, as the suite's test of the end of time: at Long.MAX_VALUE itself the
                    // reference drops every state whose expiry saturated there, though its limit still holds it.
                    this.now = Long.MAX_VALUE - 1 - 5 * lead;
                    this.ceiling = Long.MAX_VALUE - 1;
                }
            }
            this.catalog = edgeCatalog();
        }
        this.newest = now;
        int count = 6 + random.nextInt(6);
        for (int i = 0; i < count; i++) {
            LimitSpec spec = catalog.get(random.nextInt(catalog.size()));
            keys.add(keyFactory.apply("k" + i));
            specs.add(spec);
        }
        StringBuilder b =
                new StringBuilder("history ").append(label).append(" (seed ").append(seed);
        if (era != null) {
            b.append(", era ").append(era).append(mixed ? ", mixed" : "");
        }
        b.append(", from ").append(now).append("; keys");
        for (int i = 0; i < count; i++) {
            b.append(i == 0 ? " " : ", ").append("k").append(i).append(" ").append(specs.get(i));
        }
        if (mixed) {
            b.append("; catalog ").append(catalog);
        }
        this.label = b.append(")").toString();
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
        return new RandomHistory(
                seed, "mixed", clients, keyFactory, maintenance, true, knowsWriters, null, startMicros, true, true);
    }

    /**
     * A history at the edges in {@code era} (see {@link Era#runsOn}), {@code label} naming it in failures, whose keys
     * change their limits now and then as in {@link #mixed}; {@code todayMicros}: where {@link Era#TODAY} begins;
     * {@code knowsWriters} as in {@link #mixed}; {@code clocksBefore1970} and {@code clocksAfter2255}: the backend's
     * range (see the hooks of {@link StorageContractTest}).
     */
    static RandomHistory atTheEdges(
            long seed,
            String label,
            List<Storage> clients,
            Function<String, StateKey> keyFactory,
            BiConsumer<Storage, Long> maintenance,
            Era era,
            long todayMicros,
            boolean knowsWriters,
            boolean clocksBefore1970,
            boolean clocksAfter2255) {
        return new RandomHistory(
                seed,
                label,
                clients,
                keyFactory,
                maintenance,
                true,
                knowsWriters,
                era,
                todayMicros,
                clocksBefore1970,
                clocksAfter2255);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The limits of a history at the edges

    /** A gate, a blocklist and 6 to 13 limits at the edges, for this history's keys. */
    private List<LimitSpec> edgeCatalog() {
        List<LimitSpec> drawn = new ArrayList<>(List.of(Gate.INSTANCE, Membership.MUST_BE_ABSENT));
        int count = 8 + random.nextInt(6);
        while (drawn.size() < count) {
            drawn.add(edgeSpec());
        }
        return List.copyOf(drawn);
    }

    private LimitSpec edgeSpec() {
        return switch (random.nextInt(6)) {
            case 0 -> edgeBucket();
            case 1 -> edgeFixedWindow();
            case 2 ->
                new SlidingWindowLog(
                        random.nextInt(20) == 0 ? SlidingWindowLog.MAX_LIMIT : pick(1, 2, upTo(50)), micros(length()));
            case 3 -> edgeCounter();
            case 4 -> new Cooldown(micros(length()));
            default ->
                new DuplicateWindow(
                        micros(length()),
                        random.nextInt(20) == 0 ? DuplicateWindow.MAX_CAPACITY : (int) pick(1, 2, upTo(5)));
        };
    }

    /**
     * A token bucket: 1, 2, 1021 (the most the memory storage packs), 1022, 1031 or up to 2^53 - 1 ticks a microsecond,
     * a token of 1, 2, a million and three, or up to 2^53 - 1 ticks, and a capacity of 1, 2, the most those allow
     * (whose full bucket is just below 2^53 ticks), one less, or in between. A bucket's period is not its reach: even
     * where the clock must stay below 2^53, it may be centuries.
     */
    private TokenBucket edgeBucket() {
        long perMicro = pick(1, 2, 1021, 1022, 1031, upTo(LONGEST));
        long perToken = pick(1, 2, 1_000_003, upTo(LONGEST), LONGEST);
        TokenBucket rate = new TokenBucket(1, perMicro, micros(perToken));
        long most = LONGEST / rate.ticksPerToken();
        long capacity = Math.min(most, pick(1, 2, most, most - 1, upTo(most)));
        return new TokenBucket(Math.max(1, capacity), perMicro, micros(perToken));
    }

    /**
     * A fixed window of a length at the edges whose limit is 1, 2, 2^53 - 1 or one less, in between, or on either side
     * of the largest that the memory storage packs into one long for that length ({@code WindowHolder.eligible}: every
     * window index of a time below 2^53, shifted by the limit's bits, stays below 2^63).
     */
    private FixedWindow edgeFixedWindow() {
        long window = length();
        long indexes = (EXACT - 1) / window + 1;
        int indexBits = 64 - Long.numberOfLeadingZeros(indexes - 1);
        int limitBits = Math.min(62, 63 - indexBits);
        long packed = limitBits >= 53 ? LONGEST : (1L << limitBits) - 1;
        long unpacked = Math.min(LONGEST, packed + 1);
        return new FixedWindow(pick(1, 2, LONGEST, LONGEST - 1, packed, unpacked, upTo(LONGEST)), micros(window));
    }

    /** A sliding window counter of 1, 2, 3, 1000 or up to 1000 sub-buckets at the edges of length and limit. */
    private SlidingWindowCounter edgeCounter() {
        int buckets = (int) pick(1, 2, 3, SlidingWindowCounter.MAX_BUCKETS, upTo(SlidingWindowCounter.MAX_BUCKETS));
        long bucketMicros = lengthUpTo(longest / buckets);
        return new SlidingWindowCounter(
                pick(1, 2, LONGEST, LONGEST - 1, upTo(LONGEST)), micros(buckets * bucketMicros), buckets);
    }

    /** A window or period: 1 or 2 microseconds, this history's longest or one less, or in between. */
    private long length() {
        return lengthUpTo(longest);
    }

    private long lengthUpTo(long most) {
        return pick(1, Math.min(2, most), most, Math.max(1, most - 1), upTo(most), upTo(most));
    }

    /** One of {@code choices}, each as likely. */
    private long pick(long... choices) {
        return choices[random.nextInt(choices.length)];
    }

    /** A number in [1, {@code most}], about as likely in every power of two: a microsecond as likely as a year. */
    private long upTo(long most) {
        int bits = 64 - Long.numberOfLeadingZeros(most);
        long low = 1L << random.nextInt(bits);
        return Math.min(most, low + (long) (random.nextDouble() * low));
    }

    private static Duration micros(long micros) {
        return Duration.of(micros, ChronoUnit.MICROS);
    }

    /** How far a step of {@code spec} reaches beyond its time: what Redis checks against 2^53 (buckets: nothing). */
    private static long reach(LimitSpec spec) {
        return spec instanceof TokenBucket || spec instanceof Gate || spec instanceof Membership
                ? 0
                : spec.maxTtlMicros();
    }

    /** A length of one of the limits of this history: how long a window, a period, a sub-bucket or a token lasts. */
    private long lengthOfALimit() {
        LimitSpec spec = specs.get(random.nextInt(specs.size()));
        if (spec instanceof TokenBucket b) {
            return Math.max(1, b.ticksPerToken() / b.ticksPerMicro());
        } else if (spec instanceof SlidingWindowCounter c) {
            return random.nextBoolean() ? c.bucketMicros() : c.bucketMicros() * c.buckets();
        }
        long reach = reach(spec);
        return reach == 0 ? 1 + random.nextInt(1_000) : reach;
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
        } catch (RuntimeException e) {
            // A backend that fails (an error reply, an overflow in SQL) fails the test with what repeats it.
            throw new AssertionError(where("the backend threw " + e), e);
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
            long back = 1 + random.nextInt(300_000);
            now = newest < floor + back ? floor : newest - back;
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
        if (edges && random.nextInt(100) < 6) {
            // To the microsecond before, at or after a window's, a period's or a token's end, or ahead by up to the
            // longest limit: windows of years turn over too.
            delta = random.nextBoolean() ? Math.max(0, lengthOfALimit() - 1 + random.nextInt(3)) : upTo(longest);
        }
        now = now > ceiling - delta ? ceiling : now + delta;
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
            next = catalog.get(random.nextInt(catalog.size()));
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
        long until = edges ? edgeDeadline() : newest + 1 + random.nextInt(2_000_000);
        check(
                "raiseGate " + key + " to " + until,
                client.raiseGate(key, until, now),
                reference.raiseGate(key, until, now));
    }

    private void addMember(Storage client, StateKey key) {
        long expiresAt = edges
                ? edgeDeadline()
                : random.nextInt(5) == 0 ? Long.MAX_VALUE : newest + 1 + random.nextInt(3_000_000);
        client.addMember(key, expiresAt, now);
        reference.addMember(key, expiresAt, now);
    }

    /**
     * A deadline after the newest time (see the class's comment): a microsecond after it, a little later, up to the
     * longest limit later, the latest the backend takes, or never. Where deadlines must stay below 2^53 (Redis, whose
     * deadlines from there on mean never), they do.
     */
    private long edgeDeadline() {
        long after =
                switch (random.nextInt(5)) {
                    case 0 -> 1;
                    case 1 -> 1 + random.nextInt(2_000_000);
                    case 2 -> upTo(longest);
                    case 3 -> LONGEST;
                    default -> 0;
                };
        if (after == 0) {
            return random.nextBoolean() ? Long.MAX_VALUE : latestDeadline;
        }
        return newest > latestDeadline - after ? latestDeadline : newest + after;
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
        if (edges) {
            return edgePermits(spec, beyond);
        }
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

    /**
     * Permits at the edges: none, one, the limit less one, the limit, and (when {@code beyond}) one more and {@link
     * Long#MAX_VALUE}; a duplicate window's items 0 and just below 2^53.
     */
    private long edgePermits(LimitSpec spec, boolean beyond) {
        long limit;
        if (spec instanceof TokenBucket b) {
            limit = b.capacity();
        } else if (spec instanceof FixedWindow w) {
            limit = w.limit();
        } else if (spec instanceof SlidingWindowLog w) {
            limit = w.limit();
        } else if (spec instanceof SlidingWindowCounter c) {
            limit = c.limit();
        } else if (spec instanceof DuplicateWindow) {
            return pick(0, 1, random.nextInt(4), EXACT - 1, EXACT - 2);
        } else {
            return pick(0, 1, 2, beyond ? Long.MAX_VALUE : 1);
        }
        return switch (random.nextInt(8)) {
            case 0 -> 0;
            case 1 -> limit - 1;
            case 2 -> limit;
            case 3 -> beyond ? limit + 1 : limit;
            case 4 -> beyond ? Long.MAX_VALUE : 1;
            case 5 -> 1 + random.nextInt((int) Math.min(limit, 50));
            default -> 1;
        };
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
        return label + ", step " + step + ", now " + now + " (newest " + newest + "): " + what;
    }
}
