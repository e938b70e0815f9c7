package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One word owns all of a subject's keys: a lone holder's own, or its group's. A lone holder whose subject gains a
 * second key is copied into the new group with its state and retired (a caller that found it looks again); single
 * steps on a group's slots own the group, as batches do, so that both together admit exactly the limit.
 */
class MemoryStorageSubjectOwnerTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;

    /** Batches that ran in one pass owning their subjects' entries. */
    private final AtomicInteger onePass = new AtomicInteger();

    private final MemoryStorage storage =
            MemoryStorage.builder().onePass(n -> onePass.incrementAndGet()).build();
    private final String user = "u:1";
    private final StateKey first = new StateKey("first", user);
    private final StateKey second = new StateKey("second", user);
    private final TokenBucket bucket = TokenBucket.of(5, Duration.ofSeconds(10));

    @AfterEach
    void close() {
        storage.close();
    }

    /**
     * Runs {@code steps} on the subject's only key, then gives the subject a second key, on the memory storage and
     * the reference; then the same step on the first key must decide the same on both, and the lone holder found
     * before must be dead, its place taken by a copy in the group.
     */
    private void assertCopiedWithItsState(String kind, LimitSpec spec, BiConsumer<Storage, Long> steps) {
        ReferenceStorage reference = ReferenceStorage.create();
        steps.accept(storage, T0);
        steps.accept(reference, T0);
        Holder lone = storage.holder(first);
        assertThat(lone).as(kind).isNotNull();
        assertThat(lone.group()).as(kind + ": lone").isNull();

        storage.acquire(second, bucket, 1, T0);
        reference.acquire(second, bucket, 1, T0);

        assertThat(lone.isDead()).as(kind + ": the lone holder, retired").isTrue();
        Holder copy = storage.holder(first);
        assertThat(copy).as(kind).isNotSameAs(lone).isExactlyInstanceOf(lone.getClass());
        assertThat(copy.group()).as(kind + ": in the group").isSameAs(storage.entry(user));
        for (long at : new long[] {T0, T0 + 1, T0 + SECOND}) {
            assertThat(storage.acquire(first, spec, 1, at))
                    .as(kind + " at T0 + " + (at - T0))
                    .isEqualTo(reference.acquire(first, spec, 1, at));
        }
    }

    @Test
    void aLoneBucket_joiningAGroup_keepsItsTokens() {
        assertCopiedWithItsState("bucket", bucket, (s, at) -> {
            for (int i = 0; i < 4; i++) {
                s.acquire(first, bucket, 1, at + i);
            }
        });
    }

    @Test
    void aLoneWindow_joiningAGroup_keepsItsCount() {
        FixedWindow window = new FixedWindow(3, Duration.ofMinutes(1));
        assertCopiedWithItsState("window", window, (s, at) -> s.acquire(first, window, 2, at));
    }

    @Test
    void aLoneCooldown_joiningAGroup_keepsItsDeadline() {
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(2));
        assertCopiedWithItsState("cooldown", cooldown, (s, at) -> s.acquire(first, cooldown, 1, at));
    }

    @Test
    void aLoneGate_joiningAGroup_keepsItsDeadline() {
        assertCopiedWithItsState("gate", Gate.INSTANCE, (s, at) -> s.raiseGate(first, at + 5 * SECOND, at));
    }

    @Test
    void aLoneLog_joiningAGroup_keepsItsEntries() {
        SlidingWindowLog log = new SlidingWindowLog(2, Duration.ofSeconds(30));
        assertCopiedWithItsState("log", log, (s, at) -> s.acquire(first, log, 1, at));
    }

    @Test
    void aLoneRecord_joiningAGroup_keepsItsValueAndVersion() {
        storage.putRecord(first, new byte[] {7}, 0);
        Holder lone = storage.holder(first);

        storage.acquire(second, bucket, 1, T0);

        assertThat(lone.isDead()).isTrue();
        assertThat(storage.getRecord(first)).hasValueSatisfying(r -> {
            assertThat(r.value()).containsExactly(7);
            assertThat(r.version()).isEqualTo(1);
        });
        assertThat(storage.putRecord(first, new byte[] {8}, 1)).isEqualTo(2);
    }

    @Test
    void race_singleStepsAndBatchesOnSlotsOfOneGroup_admitExactlyTheLimit() throws Exception {
        // Two keys of one user: threads take them alone (each owning the group) and together in batches (owning it
        // once, mostly in the one-subject pass).
        race(first, second);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);
    }

    @Test
    void race_singleStepsAndBatchesOnAUsersGroupAndAChatsOnlyKey_admitExactlyTheLimit() throws Exception {
        // A group chat's chain: the user's keys, a group, and the chat's only key, a lone holder. Batches own both
        // entries (mostly in the one pass, trying each), single steps one each.
        storage.acquire(second, bucket, 0, T0);
        StateKey chat = new StateKey("throttle", "chat:-100");
        race(first, chat);
        assertThat(storage.entry(user)).isInstanceOf(Group.class);
        assertThat(storage.entry(chat.subject())).isInstanceOf(Holder.class);
    }

    /** Each key's limit in the races. */
    private static final int LIMIT = 3_000;

    /**
     * Threads take {@code a} (a token bucket) and {@code b} (a fixed window) alone and together in batches. The
     * clock stands still, so each key admits exactly its limit, whoever asks; some batches must have run in one pass.
     */
    private void race(StateKey a, StateKey b) throws Exception {
        // Each thread asks each key 2/3 of its limit (half its rounds alone, half in batches): the four ask about 2.7
        // times the limit, so that it is reached while the threads still race.
        TokenBucket tokens = TokenBucket.of(LIMIT, Duration.ofHours(1));
        FixedWindow window = new FixedWindow(LIMIT, Duration.ofHours(1));
        storage.acquire(a, tokens, 0, T0);
        storage.acquire(b, window, 0, T0);
        int threads = 4;
        int rounds = 2 * LIMIT / 3;
        CountDownLatch start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<long[]>> futures = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                futures.add(pool.submit(() -> {
                    start.await();
                    // admitted: [bucket alone, window alone, batches]
                    long[] admitted = new long[3];
                    Batch both = Batch.of(new Step(a, tokens, 1), new Step(b, window, 1));
                    for (int i = 0; i < rounds; i++) {
                        if ((i + thread) % 2 == 0) {
                            admitted[0] += Outcome.isAdmitted(storage.acquire(a, tokens, 1, T0)) ? 1 : 0;
                            admitted[1] += Outcome.isAdmitted(storage.acquire(b, window, 1, T0)) ? 1 : 0;
                        } else {
                            admitted[2] += storage.evaluate(both, T0).admitted() ? 1 : 0;
                        }
                    }
                    return admitted;
                }));
            }
            start.countDown();
            long[] total = new long[3];
            for (Future<long[]> f : futures) {
                long[] admitted = f.get(60, TimeUnit.SECONDS);
                for (int i = 0; i < 3; i++) {
                    total[i] += admitted[i];
                }
            }

            assertThat(total[0] + total[2]).as("the bucket's admissions").isEqualTo(LIMIT);
            assertThat(total[1] + total[2]).as("the window's admissions").isEqualTo(LIMIT);
            assertThat(storage.acquire(a, tokens, 0, T0)).isEqualTo(Outcome.admitted(0));
            assertThat(Outcome.isAdmitted(storage.acquire(b, window, 1, T0))).isFalse();
            assertThat(onePass.get()).as("batches in one pass").isPositive();
        } finally {
            pool.shutdownNow();
        }
    }
}
