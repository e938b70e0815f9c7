package dev.guard.benchmarks;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.spi.BatchBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A cost probe for a design of the memory storage, not Guard itself: the six steps of {@link StorageChainBenchmark}
 * (blocklist, registration, duplicate window, throttle, token bucket, sliding window; same limits, clock and users)
 * decided on one object of flat fields per subject, a user's and a chat's, each owned with one compare-and-set; run it
 * with {@link StorageChainBenchmark} to compare with the memory storage's batch path. The probe's arithmetic
 * approximates the limits (a GCRA bucket, a ring for the log and the window) and it has no expiry, eviction, records or
 * kind conversions: it bounds what such a design could cost, it is not a limiter. {@code proto}: the objects in a
 * Caffeine cache read with {@code get(key, mapping)}; {@code proto-chm}: in a {@link ConcurrentHashMap}; {@code
 * proto-prebuilt}: Caffeine with the subject strings built once instead of per message (all other variants build them
 * per message, as Guard does); {@code proto-quiet}: Caffeine read as the memory storage reads it, with {@code
 * policy().getIfPresentQuietly} (no maintenance per read), {@code get(key, mapping)} only for a new subject. {@code
 * generic}: the same layout reached the way a storage behind the SPI would be: the steps filled into a {@link
 * BatchBuffer}, each subject's keys kept as the reference's {@code long[]} states found by scope, the limits' own
 * reference functions run on them (exact arithmetic), read quietly from Caffeine as {@code proto-quiet} is.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 4, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"-Xms2g", "-Xmx2g", "-XX:+AlwaysPreTouch"})
public class FlatStateProbeBenchmark {
    @Param({"100"})
    public int users;

    @Param({"proto", "proto-chm", "proto-prebuilt", "proto-quiet", "generic"})
    public String impl;

    static final class UserState {
        final AtomicInteger lock = new AtomicInteger();
        long blockedUntil = Long.MIN_VALUE;
        long registeredUntil = Long.MAX_VALUE;
        long bucketTat; // GCRA theoretical arrival time
        final long[] log = new long[30];
        int logHead, logCount;
        final long[] dupItems = new long[32];
        final long[] dupTimes = new long[32];
        int dupHead, dupCount;
    }

    static final class ChatState {
        final AtomicInteger lock = new AtomicInteger();
        long window = Long.MIN_VALUE;
        long count;
    }

    /** {@link #impl}, resolved once rather than compared as text in every call. */
    private enum Variant {
        CACHE,
        MAP,
        PREBUILT,
        QUIET,
        GENERIC
    }

    private Variant variant;
    private Cache<String, Object> cache;
    private final ConcurrentHashMap<String, Object> map = new ConcurrentHashMap<>();
    private String[] userSubjects;
    private String[] chatSubjects;
    private long now;
    private long tickMicros;
    private int next;
    private long message;

    @Setup
    public void setUp() {
        variant = switch (impl) {
            case "proto" -> Variant.CACHE;
            case "proto-chm" -> Variant.MAP;
            case "proto-prebuilt" -> Variant.PREBUILT;
            case "proto-quiet" -> Variant.QUIET;
            case "generic" -> Variant.GENERIC;
            default ->
                throw new IllegalArgumentException(
                        "impl must be proto, proto-chm, proto-prebuilt, proto-quiet or generic but was " + impl);
        };
        cache = Caffeine.newBuilder().expireAfterAccess(Duration.ofMinutes(10)).build();
        now = System.currentTimeMillis() * 1_000;
        tickMicros = ChainBenchmark.PERIOD_MICROS / users;
        userSubjects = new String[users];
        chatSubjects = new String[users];
        for (int u = 0; u < users; u++) {
            userSubjects[u] = "u:" + u;
            chatSubjects[u] = "c:" + u;
            if (variant == Variant.GENERIC) {
                SubjectState state = new SubjectState();
                int slot = state.add(StorageChainBenchmark.REGISTERED);
                state.states[slot] = Membership.member(Long.MAX_VALUE);
                state.expires[slot] = Long.MAX_VALUE;
                cache.put(userSubjects[u], state);
            }
        }
    }

    @Benchmark
    public boolean check() {
        int user = next;
        next = next + 1 == users ? 0 : next + 1;
        now += tickMicros;
        String userSubject = variant == Variant.PREBUILT ? userSubjects[user] : "u:" + (long) user;
        String chatSubject = variant == Variant.PREBUILT ? chatSubjects[user] : "c:" + (long) user;
        long item = message++ & ((1L << 53) - 1);
        if (variant == Variant.GENERIC) {
            StorageChainBenchmark.fill(buffer, userSubject, chatSubject, item);
            return evaluateGeneric(buffer, now);
        }
        UserState u = (UserState) state(userSubject, k -> new UserState());
        ChatState c = (ChatState) state(chatSubject, k -> new ChatState());
        return decide(u, c, item);
    }

    /** The state of {@code subject}, found as {@link #impl} finds it, or {@code created} for a new subject. */
    private Object state(String subject, Function<String, Object> created) {
        switch (variant) {
            case MAP:
                return map.computeIfAbsent(subject, created);
            case QUIET:
            case GENERIC:
                Object found = cache.policy().getIfPresentQuietly(subject);
                return found != null ? found : cache.get(subject, created);
            default:
                return cache.get(subject, created);
        }
    }

    private final BatchBuffer buffer = new BatchBuffer(8);
    private final SubjectState[] owned = new SubjectState[8];
    private final int[] ownerOf = new int[8];
    private final int[] slotOf = new int[8];

    /**
     * {@code generic}: one object per subject that keeps its keys' states as the reference's {@code long[]}, found by
     * scope, all owned with the subject's one compare-and-set; the steps arrive in a {@link BatchBuffer} and run the
     * limits' own reference functions, as a storage behind the SPI would. Still no expiry of subjects or eviction.
     */
    static final class SubjectState {
        final AtomicInteger lock = new AtomicInteger();
        String[] scopes = new String[8];
        long[][] states = new long[8][];
        long[] expires = new long[8];
        int size;

        int slot(String scope) {
            for (int i = 0; i < size; i++) {
                if (scopes[i] == scope) {
                    return i;
                }
            }
            for (int i = 0; i < size; i++) {
                if (scopes[i].equals(scope)) {
                    return i;
                }
            }
            return -1;
        }

        int add(String scope) {
            if (size == scopes.length) {
                scopes = Arrays.copyOf(scopes, size * 2);
                states = Arrays.copyOf(states, size * 2);
                expires = Arrays.copyOf(expires, size * 2);
            }
            scopes[size] = scope;
            expires[size] = Long.MIN_VALUE;
            return size++;
        }

        long[] live(int slot, long now) {
            return slot < 0 || expires[slot] <= now ? null : states[slot];
        }
    }

    private boolean evaluateGeneric(BatchBuffer batch, long now) {
        int n = batch.size();
        int subjects = 0;
        for (int i = 0; i < n; i++) {
            String subject = batch.subject(i);
            int owner = -1;
            for (int j = 0; j < i; j++) {
                if (batch.subject(j) == subject) {
                    owner = ownerOf[j];
                    break;
                }
            }
            if (owner < 0) {
                owner = subjects++;
                owned[owner] = (SubjectState) state(subject, k -> new SubjectState());
            }
            ownerOf[i] = owner;
        }
        // One total order of subjects for locking: identity hash here (a real one needs a tie-break).
        boolean swapped = subjects == 2 && System.identityHashCode(owned[0]) > System.identityHashCode(owned[1]);
        for (int k = 0; k < subjects; k++) {
            own(owned[swapped ? 1 - k : k].lock);
        }
        boolean admitted = true;
        try {
            for (int i = 0; i < n; i++) {
                SubjectState state = owned[ownerOf[i]];
                int slot = state.slot(batch.scope(i));
                slotOf[i] = slot;
                long outcome = batch.spec(i).evaluate(state.live(slot, now), now, batch.permits(i));
                batch.setOutcome(i, outcome);
                admitted &= Outcome.isAdmitted(outcome);
            }
            if (admitted) {
                for (int i = 0; i < n; i++) {
                    LimitSpec spec = batch.spec(i);
                    if (spec instanceof Membership) {
                        continue;
                    }
                    SubjectState state = owned[ownerOf[i]];
                    int slot = slotOf[i];
                    long[] next = spec.commit(state.live(slot, now), now, batch.permits(i));
                    long ttl = next == null ? 0 : spec.ttlMicros(next, now);
                    if (slot < 0) {
                        slot = state.add(batch.scope(i));
                    }
                    if (state.states[slot] != next) {
                        state.states[slot] = next;
                    }
                    state.expires[slot] = ttl <= 0 ? Long.MIN_VALUE : ttl == Long.MAX_VALUE ? ttl : now + ttl;
                }
            }
        } finally {
            for (int k = 0; k < subjects; k++) {
                owned[k].lock.set(0);
                owned[k] = null;
            }
        }
        return admitted;
    }

    /** Spins until this thread owns {@code lock}. */
    private static void own(AtomicInteger lock) {
        while (!lock.compareAndSet(0, 1)) {
            Thread.onSpinWait();
        }
    }

    private boolean decide(UserState u, ChatState c, long item) {
        // Lock order: by subject (user before chat here, as a global order would give).
        own(u.lock);
        own(c.lock);
        try {
            long t = now;
            boolean ok = t >= u.blockedUntil && t < u.registeredUntil;
            // duplicates: a live pair holding the item
            for (int i = 0; i < u.dupCount; i++) {
                int k = (u.dupHead + i) & 31;
                if (u.dupTimes[k] + 2_000_000 > t && u.dupItems[k] == item) {
                    ok = false;
                }
            }
            // fixed window
            long w = Math.floorDiv(t, 60_000_000L);
            long cnt = c.window == w ? c.count : 0;
            ok &= cnt + 1 <= 20;
            // bucket, GCRA: emission interval 1 s, burst 5
            long tat = Math.max(u.bucketTat, t);
            ok &= tat + 1_000_000 - t <= 5_000_000;
            // sliding log
            int liveLog = 0;
            for (int i = 0; i < u.logCount; i++) {
                if (u.log[(u.logHead + i) % 30] + 60_000_000 > t) liveLog++;
            }
            ok &= liveLog + 1 <= 30;
            if (ok) {
                c.window = w;
                c.count = cnt + 1;
                u.bucketTat = tat + 1_000_000;
                // drop expired log entries from the head, append
                while (u.logCount > 0 && u.log[u.logHead] + 60_000_000 <= t) {
                    u.logHead = (u.logHead + 1) % 30;
                    u.logCount--;
                }
                u.log[(u.logHead + u.logCount) % 30] = t;
                u.logCount++;
                while (u.dupCount > 0 && u.dupTimes[u.dupHead] + 2_000_000 <= t) {
                    u.dupHead = (u.dupHead + 1) & 31;
                    u.dupCount--;
                }
                if (u.dupCount == 32) {
                    u.dupHead = (u.dupHead + 1) & 31;
                    u.dupCount--;
                }
                int k = (u.dupHead + u.dupCount) & 31;
                u.dupItems[k] = item;
                u.dupTimes[k] = t;
                u.dupCount++;
            }
            return ok;
        } finally {
            c.lock.set(0);
            u.lock.set(0);
        }
    }
}
