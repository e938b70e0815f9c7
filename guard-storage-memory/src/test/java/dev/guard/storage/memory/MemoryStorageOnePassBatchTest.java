package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Batches whose keys all exist, as a chain's do from a user's second message on: the memory storage evaluates them in
 * one pass owning their subjects' entries (one subject's group, as a private chat's chain is; or a user's group and a
 * chat's entry, as a group chat's is), and goes the general way when a key is new (or its group's slots were
 * rewritten by a gate or a set). Random histories of such batches, on one thread, must answer exactly as the reference,
 * including across the renewals that only these batches make (nothing else touches the subjects in between), and
 * most batches must have run in the one pass. Races on the pass: {@link MemoryStorageSubjectOwnerTest}.
 */
class MemoryStorageOnePassBatchTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long MILLI = 1_000;

    /** A chain's kinds, each under its own scope; the sets and the gate are only read here. */
    private static final List<LimitSpec> SPECS = List.of(
            new TokenBucket(5, 2, Duration.ofSeconds(1)),
            new FixedWindow(4, Duration.ofSeconds(1)),
            new SlidingWindowLog(3, Duration.ofSeconds(2)),
            new DuplicateWindow(Duration.ofSeconds(2), 4),
            new Cooldown(Duration.ofMillis(500)),
            Gate.INSTANCE,
            Membership.MUST_BE_PRESENT,
            Membership.MUST_BE_ABSENT);

    private static final int GATE = 5;

    /**
     * The kinds a chat's keys have here: a bucket, a throttle, a log (a holder whose word is only a lock), a
     * cooldown, a gate (read, raised now and then). A chat with one of them keeps it as a lone holder.
     */
    private static final List<Integer> CHAT_KINDS = List.of(0, 1, 2, 4, GATE);

    @Test
    void batchesOnOneSubject_withGatesAndSetsChanging_answerExactlyAsTheReference() {
        play(1, true, false, false);
    }

    @Test
    void batchesOnOneSubject_alone_keepTheGroupsAsLongAsTheReferenceKeepsTheirState() {
        // Nothing but these batches touches the subjects, so only they renew the groups' expiry in the cache: a
        // group dropped before its state expires would answer a fresh bucket where the reference has none left.
        play(13, false, false, false);
    }

    @Test
    void batchesOnAUserAndAChat_answerExactlyAsTheReference() {
        // A group chat's chain: the user's keys and one or two of the chat's, whose entry is its only key (a lone
        // holder) or a group.
        play(25, true, true, false);
    }

    @Test
    void batchesOnASubjectWhoseOnlyKeyIsALoneHolder_answerExactlyAsTheReference() {
        // A user with one limit, a blocklist on which they are not and a gate not raised: the batch reads them absent
        // beside the subject's only key, whose entry is a lone holder (a bucket, a window or a log, by subject).
        play(37, false, false, true);
    }

    /**
     * Plays twelve histories from seed {@code firstSeed} on ({@link History}); in each, most batches must have run in
     * one pass.
     */
    private static void play(long firstSeed, boolean setsChange, boolean chats, boolean lone) {
        for (long seed = firstSeed; seed < firstSeed + 12; seed++) {
            History history = new History(seed, setsChange, chats, lone);
            history.run(3_000);
            assertThat(history.onePass())
                    .as("seed %d: batches in one pass of %d", seed, history.batches)
                    .isGreaterThan(history.batches / 2);
        }
    }

    private static final class History extends ReferenceHistory {
        private final boolean setsChange;

        /** Whether each batch also has keys of a chat. */
        private final boolean chats;

        /** Whether each subject has one limit only, beside gates and sets that are read and never set. */
        private final boolean lone;

        private final BatchBuffer buffer = new BatchBuffer(2);
        private final List<String> subjects = List.of("u:1", "u:2", "u:\n{\"3\"}");

        /** The batches evaluated. */
        int batches;

        History(long seed, boolean setsChange, boolean chats, boolean lone) {
            this(seed, setsChange, chats, lone, new int[1]);
        }

        private History(long seed, boolean setsChange, boolean chats, boolean lone, int[] passes) {
            super(seed, T0, MemoryStorage.builder().onePass(n -> passes[0]++).build());
            this.setsChange = setsChange;
            this.chats = chats;
            this.lone = lone;
            this.passes = passes;
        }

        /** What the storage's hook counts: batches that ran in one pass. */
        private final int[] passes;

        /** How many of the batches ran in one pass owning their subjects' entries. */
        int onePass() {
            return passes[0];
        }

        void run(int operations) {
            try {
                for (step = 0; step < operations; step++) {
                    int r = random.nextInt(100);
                    // Mostly a few hundred milliseconds, the time a chat takes; now and then a pause beyond every
                    // state's lifetime.
                    now += r < 20
                            ? 0
                            : r < 98 ? 1 + random.nextInt(400 * (int) MILLI) : 10_000_000 + random.nextInt(50_000_000);
                    if (random.nextInt(10) == 0) {
                        storage.cleanUp(now);
                    }
                    operate();
                }
            } finally {
                storage.close();
            }
        }

        private void operate() {
            String subject = subjects.get(random.nextInt(subjects.size()));
            int r = random.nextInt(100);
            if (chats && r < 3) {
                // A chat's gate raised (its only key, a lone gate, if the chat has no other).
                gateOrSet(RAISE, key(GATE, chat()), now + 1 + random.nextInt(2_000 * (int) MILLI));
                return;
            }
            if (setsChange && r < 10) {
                StateKey key = key(GATE + random.nextInt(3), subject);
                long deadline = now + 1 + random.nextInt(3_000 * (int) MILLI);
                gateOrSet(key.scope().equals(scope(GATE)) ? RAISE : r < 6 ? ADD : READ_AND_REMOVE, key, deadline);
                return;
            }
            // Two to all eight of the subject's keys, in any order, as the filters of a chain are; or its one limit
            // (a bucket, a window or a log, by subject) beside the gate, the blocklist or both, read (a required
            // registration, never added here, would reject every batch).
            List<Integer> kinds = new ArrayList<>();
            for (int k = lone ? GATE : 0; k < SPECS.size(); k++) {
                if (!lone || SPECS.get(k) != Membership.MUST_BE_PRESENT) {
                    kinds.add(k);
                }
            }
            Collections.shuffle(kinds, random);
            int count = lone ? 1 + random.nextInt(2) : 2 + random.nextInt(SPECS.size() - 1);
            kinds = new ArrayList<>(kinds.subList(0, count));
            if (lone) {
                kinds.add(random.nextInt(count + 1), subjects.indexOf(subject));
            }
            List<Step> steps = new ArrayList<>();
            for (int k : kinds) {
                LimitSpec spec = SPECS.get(k);
                // A duplicate window's permits are the item; other limits take one or two, or look with zero.
                long permits = spec instanceof DuplicateWindow ? 1 + random.nextInt(3) : random.nextInt(3);
                steps.add(new Step(key(k, subject), spec, permits));
            }
            if (chats) {
                // One or two of the chat's keys, before, among or after the user's.
                String chat = chat();
                List<Integer> chatKinds = new ArrayList<>(CHAT_KINDS);
                Collections.shuffle(chatKinds, random);
                for (int k : chatKinds.subList(0, 1 + random.nextInt(2))) {
                    steps.add(
                            random.nextInt(steps.size() + 1), new Step(key(k, chat), SPECS.get(k), random.nextInt(3)));
                }
            }
            Batch batch = new Batch(steps);
            batches++;
            BatchResult expected = reference.evaluate(batch, now);
            BatchResult actual;
            if (random.nextBoolean()) {
                actual = storage.evaluate(batch, now);
            } else {
                buffer.clear();
                for (Step s : steps) {
                    buffer.add(s);
                }
                check("evaluateInPlace's answer " + steps, storage.evaluateInPlace(buffer, now), expected.admitted());
                actual = buffer.toResult();
            }
            check("evaluate " + steps, outcomes(actual), outcomes(expected));
        }

        private String chat() {
            return random.nextBoolean() ? "chat:-1001" : "chat:-1002";
        }

        private static StateKey key(int kind, String subject) {
            return new StateKey(scope(kind), subject);
        }

        private static String scope(int kind) {
            return "scope-" + kind;
        }

        private static List<String> outcomes(BatchResult result) {
            List<String> outcomes = new ArrayList<>();
            for (int i = 0; i < result.size(); i++) {
                outcomes.add(Outcome.toString(result.outcome(i)));
            }
            return outcomes;
        }
    }
}
