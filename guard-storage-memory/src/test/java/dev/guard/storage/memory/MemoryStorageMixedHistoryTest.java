package dev.guard.storage.memory;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Random histories in which one key is used by several specs whose states share a shape (a bucket reconfigured with
 * another rate, a cooldown key read as a gate), and time runs beyond 2^53: beyond what the contract suite's
 * differential test does, these drive the memory storage's conversions between holders. Every answer must equal
 * the reference's.
 */
class MemoryStorageMixedHistoryTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    /** Groups of specs whose states have one shape, so that the reference can read one group's state with another. */
    private static final List<List<LimitSpec>> GROUPS = List.of(
            List.of(
                    new TokenBucket(3, 1, Duration.ofSeconds(1)),
                    new TokenBucket(5, 2, Duration.ofSeconds(1)),
                    new TokenBucket(4, 3, Duration.ofMillis(700)),
                    new TokenBucket(2, 10_000, Duration.ofNanos(1_000))),
            List.of(new FixedWindow(2, Duration.ofSeconds(1)), new FixedWindow(3, Duration.ofMillis(500))),
            List.of(new SlidingWindowLog(2, Duration.ofSeconds(1)), new SlidingWindowLog(3, Duration.ofSeconds(2))),
            List.of(
                    new Cooldown(Duration.ofMillis(500)),
                    new Cooldown(Duration.ofSeconds(1)),
                    Gate.INSTANCE,
                    Membership.MUST_BE_ABSENT,
                    Membership.MUST_BE_PRESENT));

    @Test
    void mixedHistories_answerExactlyAsTheReference() {
        // Seed 7 has a fixed window of half-second windows read by one of whole seconds, whose commit then lives far
        // beyond the whole-second window's longest ttl: the storage must keep that state all the same.
        for (long seed = 1; seed <= 8; seed++) {
            new History(seed, false).run(2_000);
        }
    }

    @Test
    void mixedHistories_keysSharingSubjects_answerExactlyAsTheReference() {
        // Three subjects with two or three scopes each: the keys live as slots of groups, which conversions, gates,
        // memberships and expiry rewrite.
        for (long seed = 9; seed <= 24; seed++) {
            new History(seed, true).run(2_000);
        }
    }

    private static final class History extends ReferenceHistory {
        private final List<StateKey> keys = new ArrayList<>();
        private final List<List<LimitSpec>> groups = new ArrayList<>();

        History(long seed, boolean grouped) {
            super(seed, T0);
            for (int i = 0; i < 8; i++) {
                keys.add(grouped ? new StateKey("mixed-" + i, "k" + i / 3) : new StateKey("mixed", "k" + i));
                groups.add(GROUPS.get(random.nextInt(GROUPS.size())));
            }
        }

        void run(int operations) {
            for (step = 0; step < operations; step++) {
                if (step == operations * 3 / 4) {
                    // Beyond 2^53 microseconds the lock-free encodings step aside.
                    now = (1L << 53) - 500_000;
                }
                now += random.nextInt(4) == 0 ? 0 : 1 + random.nextInt(300_000);
                storage.cleanUp(now - random.nextInt(2) * 1_000_000L);
                operate();
            }
            storage.close();
        }

        private void operate() {
            int i = random.nextInt(keys.size());
            StateKey key = keys.get(i);
            int r = random.nextInt(100);
            if (groups.get(i) == GROUPS.get(3) && r >= 70) {
                long deadline = r >= 90 ? Long.MAX_VALUE : now + 1 + random.nextInt(2_000_000);
                gateOrSet(r < 80 ? RAISE : r < 90 ? ADD : READ_AND_REMOVE, key, deadline);
                return;
            }
            if (r < 50) {
                Step s = step(i);
                long actual = storage.acquire(s.key(), s.spec(), s.permits(), now);
                long expected = reference.acquire(s.key(), s.spec(), s.permits(), now);
                check("acquire " + s, Outcome.toString(actual), Outcome.toString(expected));
                return;
            }
            List<Step> steps = new ArrayList<>();
            List<Integer> used = new ArrayList<>();
            int size = 1 + random.nextInt(3);
            while (steps.size() < size) {
                int j = random.nextInt(keys.size());
                if (!used.contains(j)) {
                    used.add(j);
                    steps.add(step(j));
                }
            }
            Batch batch = new Batch(steps);
            check("evaluate " + steps, storage.evaluate(batch, now), reference.evaluate(batch, now));
        }

        private Step step(int i) {
            List<LimitSpec> group = groups.get(i);
            return new Step(keys.get(i), group.get(random.nextInt(group.size())), random.nextInt(5));
        }
    }
}
