package dev.guard.storage.memory;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * When the cache evicts keys: never while their state lives, and soon after, so that memory is bounded by the active
 * keys. The cache's clock is driven through {@link MemoryStorage#cleanUp(long)}, which also runs eviction at once.
 */
class MemoryStorageExpiryTest {
    private static final long T0 = ManualTicker.create().epochMicros();
    private static final long SECOND = 1_000_000;
    /** A holder's lifetime beyond its longest ttl: the cache clock's slack. */
    private static final long SLACK = CallerClock.SLACK_MICROS;

    private final MemoryStorage storage = MemoryStorage.create();
    private final StateKey key = new StateKey("limit", "user-1");

    @AfterEach
    void close() {
        storage.close();
    }

    @Test
    void cleanUp_tokenBucket_keepsKeyForTwoIntervalsThenEvicts() {
        // Two tokens at one per second: the longest ttl is two seconds, the interval that plus the clock's slack.
        long interval = 2 * SECOND + SLACK;
        storage.acquire(key, new TokenBucket(2, 1, Duration.ofSeconds(1)), 2, T0);

        assertDroppedAt(T0 + 2 * interval);
        // The cache's timer wheel removes the entry itself within about a second (its finest bucket).
        storage.cleanUp(T0 + 2 * interval + 2 * SECOND);
        assertThat(storage.estimatedSize()).isZero();
    }

    @Test
    void cleanUp_usesOfAHotKey_keepItAtLeastOneIntervalAfterTheLast() {
        TokenBucket bucket = new TokenBucket(20, 1, Duration.ofSeconds(1));
        long interval = 20 * SECOND + SLACK;
        storage.acquire(key, bucket, 20, T0);

        long last = T0;
        for (int i = 1; i <= 90; i++) {
            last = T0 + i * SECOND;
            // One token per second comes back and goes again: the bucket never refills, the key never goes.
            assertThat(storage.acquire(key, bucket, 1, last)).isEqualTo(Outcome.admitted(0));
            storage.cleanUp(last);
        }
        storage.cleanUp(last + interval - 1);
        assertThat(storage.holder(key)).isNotNull();
        // A key in use across its interval was renewed for four: it goes at most that long after its last use.
        storage.cleanUp(last + Holder.REGULAR_INTERVALS * interval);
        assertThat(storage.holder(key)).isNull();
    }

    @Test
    void cleanUp_aKeyInTheReferencesFormUsedAcrossItsInterval_goesAtMostFourIntervalsAfterItsLastUse() {
        // A sliding log is kept as the reference's own array, with an expiry of its own: a take just before the due
        // time leaves state for two more seconds when the take at the due time renews the key.
        SlidingWindowLog log = new SlidingWindowLog(3, Duration.ofSeconds(2));
        long interval = 2 * SECOND + SLACK;
        storage.acquire(key, log, 1, T0);
        assertThat(storage.holder(key)).isInstanceOf(ArrayHolder.class);
        storage.cleanUp(T0 + interval - 1);
        storage.acquire(key, log, 1, T0 + interval - 1);
        long last = T0 + interval;
        storage.cleanUp(last);
        storage.acquire(key, log, 1, last);
        assertThat(storage.holder(key).extensionDueMicros())
                .as("renewed for four")
                .isEqualTo(last + 3 * interval);

        assertDroppedAt(last + 4 * interval);
    }

    @Test
    void renewal_ofAKeyUsedAcrossItsInterval_grantsFourIntervals_dueOneBeforeTheirEnd() {
        TokenBucket bucket = new TokenBucket(20, 1, Duration.ofSeconds(1));
        long interval = 20 * SECOND + SLACK;
        storage.acquire(key, bucket, 1, T0);
        assertThat(storage.holder(key).extensionDueMicros())
                .as("made: due after one")
                .isEqualTo(T0 + interval);

        // A use at the due time renews: four intervals from then, the next renewal due one before their end.
        long renewal = T0 + interval;
        storage.acquire(key, bucket, 1, renewal);
        assertThat(storage.holder(key).extensionDueMicros()).isEqualTo(renewal + 3 * interval);
        // No use in between is due: the next renewal comes three intervals later, not one.
        storage.acquire(key, bucket, 1, renewal + 3 * interval - 1);
        assertThat(storage.holder(key).extensionDueMicros()).isEqualTo(renewal + 3 * interval);

        assertDroppedAt(renewal + 4 * interval);
    }

    @Test
    void lifetime_anUpdateRightAfterARenewalForFour_neitherMovesTheDueTimeEarlierNorShortensTheLifetime() {
        // Two updates of one subject one after the other: the first at the due time grants four intervals; the
        // second, no longer at a due time, would grant two. A caller may have read the first's due time, so the
        // second keeps it and keeps the cache's expiry an interval beyond it.
        TokenBucket bucket = new TokenBucket(20, 1, Duration.ofSeconds(1));
        long interval = 20 * SECOND + SLACK;
        BucketHolder holder = new BucketHolder("limit", bucket, T0);
        assertThat(holder.lifetimeNanos(T0 * 1_000)).as("made: two").isEqualTo(2 * interval * 1_000);
        assertThat(holder.extensionDueMicros()).isEqualTo(T0 + interval);

        long renewal = T0 + interval;
        assertThat(holder.lifetimeNanos(renewal * 1_000)).isEqualTo(4 * interval * 1_000);
        assertThat(holder.extensionDueMicros()).isEqualTo(renewal + 3 * interval);

        long next = renewal + SECOND;
        long lifetime = holder.lifetimeNanos(next * 1_000);
        assertThat(holder.extensionDueMicros()).isEqualTo(renewal + 3 * interval);
        assertThat(next * 1_000 + lifetime).isEqualTo((renewal + 4 * interval) * 1_000);
    }

    @Test
    void cleanUp_gate_evictsExactlyAtDeadline() {
        storage.raiseGate(key, T0 + 10 * SECOND, T0);

        assertDroppedAt(T0 + 10 * SECOND);
    }

    @Test
    void cleanUp_permanentMemberAndRecord_stayForGood() {
        StateKey record = new StateKey("record", "user-1");
        storage.addMember(key, Long.MAX_VALUE, T0);
        storage.putRecord(record, new byte[] {1}, 0);

        storage.cleanUp(T0 + Duration.ofDays(36_500).toNanos() / 1_000);

        assertThat(storage.isMember(key, T0 + Duration.ofDays(36_500).toNanos() / 1_000))
                .isTrue();
        assertThat(storage.getRecord(record)).isPresent();
    }

    @Test
    void cleanUp_manyIdleKeys_leavesOnlyActiveOnes() {
        Cooldown cooldown = new Cooldown(Duration.ofSeconds(1));
        for (int i = 0; i < 1_000; i++) {
            storage.acquire(new StateKey("cooldown", "idle-" + i), cooldown, 1, T0);
        }
        assertThat(storage.estimatedSize()).isEqualTo(1_000);

        for (int i = 0; i < 10; i++) {
            storage.acquire(new StateKey("cooldown", "active-" + i), cooldown, 1, T0 + 5 * SECOND);
        }
        storage.cleanUp(T0 + 5 * SECOND);

        assertThat(storage.estimatedSize()).isEqualTo(10);
    }

    @Test
    void evictionAtAnyMoment_neverChangesADecision() {
        List<LimitSpec> specs = List.of(
                new TokenBucket(3, 1, Duration.ofSeconds(1)),
                new TokenBucket(3, 10_000, Duration.ofNanos(1_000)),
                new FixedWindow(3, Duration.ofSeconds(2)),
                new SlidingWindowLog(3, Duration.ofSeconds(2)),
                new SlidingWindowCounter(3, Duration.ofSeconds(2), 4),
                new Cooldown(Duration.ofSeconds(2)));
        ReferenceStorage reference = ReferenceStorage.create();
        long t = T0;
        for (LimitSpec spec : specs) {
            StateKey k = new StateKey(spec.kind(), spec.toString());
            assertThat(storage.acquire(k, spec, 3, t)).isEqualTo(reference.acquire(k, spec, 3, t));
            long step = spec.maxTtlMicros() / 16;
            for (int i = 1; i <= 40; i++) {
                t += step;
                storage.cleanUp(t);
                long permits = i % 3;
                assertThat(Outcome.toString(storage.acquire(k, spec, permits, t)))
                        .as("%s, %d permits at +%d", spec, permits, i * step)
                        .isEqualTo(Outcome.toString(reference.acquire(k, spec, permits, t)));
            }
        }
        StateKey member = new StateKey("blocklist", "user-1");
        storage.addMember(member, t + 3 * SECOND, t);
        reference.addMember(member, t + 3 * SECOND, t);
        for (int i = 0; i < 10; i++) {
            t += 500_000;
            storage.cleanUp(t);
            assertThat(storage.acquire(member, Membership.MUST_BE_ABSENT, 1, t))
                    .isEqualTo(reference.acquire(member, Membership.MUST_BE_ABSENT, 1, t));
        }
    }

    @Test
    void clock_movesWithCallersInSlackSizedStepsAndNeverBack() {
        storage.acquire(key, new Cooldown(Duration.ofSeconds(1)), 1, T0);
        assertThat(storage.clockMicros()).isEqualTo(T0);

        storage.acquire(key, new Cooldown(Duration.ofSeconds(1)), 1, T0 + SLACK);
        assertThat(storage.clockMicros()).isEqualTo(T0);
        storage.acquire(key, new Cooldown(Duration.ofSeconds(1)), 1, T0 + SLACK + 1);
        assertThat(storage.clockMicros()).isEqualTo(T0 + SLACK + 1);

        storage.acquire(key, new Cooldown(Duration.ofSeconds(1)), 1, T0 - SECOND);
        assertThat(storage.clockMicros()).isEqualTo(T0 + SLACK + 1);
    }

    /** The cache keeps {@code key}'s holder on every clock before {@code micros} and drops it at {@code micros}. */
    private void assertDroppedAt(long micros) {
        storage.cleanUp(micros - 1);
        assertThat(storage.holder(key)).as("kept before %d", micros).isNotNull();
        storage.cleanUp(micros);
        assertThat(storage.holder(key)).as("dropped at %d", micros).isNull();
    }
}
