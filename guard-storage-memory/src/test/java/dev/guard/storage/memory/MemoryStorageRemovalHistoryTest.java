package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

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
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Random histories of limits, gates, sets and records on the keys of two subjects, mixed with the calls that remove
 * state while the subjects' keys live as slots of groups: {@code forget}, {@code removeMember}, {@code putRecord} over
 * a limit's key and {@code close()}. Every decision and record must equal the reference's; {@code forget} and {@code
 * removeMember} must count at least every live key the reference holds (expired state may count, see {@link
 * dev.guard.spi.Storage#forget}).
 */
class MemoryStorageRemovalHistoryTest {
    private static final long T0 = ManualTicker.create().epochMicros();

    private static final List<LimitSpec> SPECS = List.of(
            new TokenBucket(3, 1, Duration.ofSeconds(1)),
            new FixedWindow(2, Duration.ofSeconds(1)),
            new SlidingWindowLog(2, Duration.ofSeconds(1)),
            new Cooldown(Duration.ofMillis(500)),
            Gate.INSTANCE,
            Membership.MUST_BE_ABSENT,
            Membership.MUST_BE_PRESENT);

    @Test
    void removalsMixedWithLimitsAndRecords_answerAsTheReference() {
        for (long seed = 1; seed <= 300; seed++) {
            new History(seed).run(300);
        }
    }

    private static final class History {
        private final long seed;
        private final Random random;
        private final MemoryStorage storage = MemoryStorage.create();
        private final ReferenceStorage reference = ReferenceStorage.create();
        private final List<StateKey> keys = new ArrayList<>();
        private long now = T0;
        private int step;

        History(long seed) {
            this.seed = seed;
            this.random = new Random(seed);
            for (int i = 0; i < 6; i++) {
                keys.add(new StateKey("scope-" + i % 3, "user-" + i / 3));
            }
        }

        void run(int operations) {
            for (step = 0; step < operations; step++) {
                now += random.nextInt(3) == 0 ? 0 : random.nextInt(400_000);
                if (random.nextInt(10) == 0) {
                    storage.cleanUp(now);
                }
                operate(keys.get(random.nextInt(keys.size())), random.nextInt(100));
            }
            storage.close();
        }

        private void operate(StateKey key, int r) {
            if (r < 40) {
                Step s = step(key);
                check(
                        "acquire " + s,
                        Outcome.toString(storage.acquire(key, s.spec(), s.permits(), now)),
                        Outcome.toString(reference.acquire(key, s.spec(), s.permits(), now)));
            } else if (r < 55) {
                List<Step> steps = new ArrayList<>();
                for (StateKey k : keys) {
                    if (steps.size() < 3 && random.nextInt(3) == 0) {
                        steps.add(step(k));
                    }
                }
                if (steps.isEmpty()) {
                    steps.add(step(key));
                }
                Batch batch = new Batch(steps);
                check("evaluate " + steps, storage.evaluate(batch, now), reference.evaluate(batch, now));
            } else if (r < 65) {
                long version = random.nextInt(3);
                byte[] value = {(byte) step};
                check(
                        "putRecord " + key + " expecting " + version,
                        storage.putRecord(key, value, version),
                        reference.putRecord(key, value, version));
            } else if (r < 72) {
                check("getRecord " + key, text(storage.getRecord(key)), text(reference.getRecord(key)));
            } else if (r < 78) {
                long until = now + random.nextInt(2_000_000) - 500_000;
                check("raiseGate " + key, storage.raiseGate(key, until, now), reference.raiseGate(key, until, now));
            } else if (r < 84) {
                long until = now + random.nextInt(2_000_000) - 500_000;
                storage.addMember(key, until, now);
                reference.addMember(key, until, now);
            } else if (r < 89) {
                dropExpired(key);
                boolean live = reference.removeMember(key);
                boolean removed = storage.removeMember(key);
                if (live) {
                    check("removeMember " + key, removed, true);
                }
            } else if (r < 92) {
                check("isMember " + key, storage.isMember(key, now), reference.isMember(key, now));
            } else if (r < 98) {
                keys.forEach(this::dropExpired);
                long live = reference.forget(key.subject());
                assertThat(storage.forget(key.subject()))
                        .as("seed %d, step %d: forget %s", seed, step, key.subject())
                        .isGreaterThanOrEqualTo(live);
            } else {
                storage.close();
                keys.forEach(k -> reference.forget(k.subject()));
            }
        }

        private Step step(StateKey key) {
            return new Step(key, SPECS.get(random.nextInt(SPECS.size())), random.nextInt(3));
        }

        /** Makes the reference drop {@code key}'s expired state: a gate's check reads it, and changes nothing else. */
        private void dropExpired(StateKey key) {
            reference.evaluate(
                    Batch.of(new Step(key, Gate.INSTANCE, 0), new Step(new StateKey("none", "none"), Gate.INSTANCE, 0)),
                    now);
        }

        private static String text(Optional<VersionedRecord> record) {
            return record.map(r -> r.version() + ":" + Arrays.toString(r.value()))
                    .orElse("none");
        }

        private void check(String what, Object actual, Object expected) {
            assertThat(actual)
                    .as("seed %d, step %d, now %d: %s", seed, step, now, what)
                    .isEqualTo(expected);
        }
    }
}
