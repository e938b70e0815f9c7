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
 * Batches whose steps are all one subject's, as a private chat's chain is: the memory storage evaluates them in one
 * pass owning the subject's group, and goes the general way when a key is new (or its group's slots were rewritten
 * by a gate or a set). Random histories of such batches, on one thread, must answer exactly as the reference,
 * including across the renewals that only these batches make (nothing else touches the subjects in between), and
 * most batches must have run in the one pass. Races on the pass: {@link MemoryStorageSubjectOwnerTest}.
 */
class MemoryStorageOneSubjectBatchTest {
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
    private static final int REGISTERED = 6;
    private static final int BLOCKED = 7;

    @Test
    void batchesOnOneSubject_withGatesAndSetsChanging_answerExactlyAsTheReference() {
        for (long seed = 1; seed <= 12; seed++) {
            History history = new History(seed, true);
            history.run(3_000);
            assertThat(history.onePass)
                    .as("seed %d: batches in one pass of %d", seed, history.batches)
                    .isGreaterThan(history.batches / 2);
        }
    }

    @Test
    void batchesOnOneSubject_alone_keepTheGroupsAsLongAsTheReferenceKeepsTheirState() {
        // Nothing but these batches touches the subjects, so only they renew the groups' expiry in the cache: a
        // group dropped before its state expires would answer a fresh bucket where the reference has none left.
        for (long seed = 13; seed <= 24; seed++) {
            History history = new History(seed, false);
            history.run(3_000);
            assertThat(history.onePass)
                    .as("seed %d: batches in one pass of %d", seed, history.batches)
                    .isGreaterThan(history.batches / 2);
        }
    }

    private static final class History extends ReferenceHistory {
        private final boolean setsChange;
        private final BatchBuffer buffer = new BatchBuffer(2);
        private final List<String> subjects = List.of("u:1", "u:2", "u:\n{\"3\"}");

        /** The batches evaluated, and how many of them ran in one pass owning their subject's group. */
        int batches;

        int onePass;

        History(long seed, boolean setsChange) {
            this(seed, setsChange, new int[1]);
        }

        private History(long seed, boolean setsChange, int[] passes) {
            super(seed, T0, MemoryStorage.builder().onePass(n -> passes[0]++).build());
            this.setsChange = setsChange;
            this.passes = passes;
        }

        /** What the storage's hook counts: batches that ran in one pass. */
        private final int[] passes;

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
            if (setsChange && r < 10) {
                StateKey key = key(GATE + random.nextInt(3), subject);
                long deadline = now + 1 + random.nextInt(3_000 * (int) MILLI);
                if (key.scope().equals(scope(GATE))) {
                    check("raiseGate", storage.raiseGate(key, deadline, now), reference.raiseGate(key, deadline, now));
                } else if (r < 6) {
                    storage.addMember(key, deadline, now);
                    reference.addMember(key, deadline, now);
                } else {
                    check("isMember", storage.isMember(key, now), reference.isMember(key, now));
                    check("removeMember", storage.removeMember(key), reference.removeMember(key));
                }
                return;
            }
            // Two to all eight of the subject's keys, in any order, as the filters of a chain are.
            List<Integer> kinds = new ArrayList<>();
            for (int k = 0; k < SPECS.size(); k++) {
                kinds.add(k);
            }
            Collections.shuffle(kinds, random);
            List<Step> steps = new ArrayList<>();
            for (int k : kinds.subList(0, 2 + random.nextInt(SPECS.size() - 1))) {
                LimitSpec spec = SPECS.get(k);
                // A duplicate window's permits are the item; other limits take one or two, or look with zero.
                long permits = spec instanceof DuplicateWindow ? 1 + random.nextInt(3) : random.nextInt(3);
                steps.add(new Step(key(k, subject), spec, permits));
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
            onePass = passes[0];
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
