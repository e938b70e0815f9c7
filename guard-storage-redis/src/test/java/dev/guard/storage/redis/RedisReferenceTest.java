package dev.guard.storage.redis;

import static org.assertj.core.api.Assertions.assertThat;

import dev.guard.ManualTicker;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.ReferenceStorage;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Random sequences of every operation, fed to Redis and to {@link ReferenceStorage} side by side: every answer must be
 * identical. Covers every limit kind, multi-step batches, evaluated synchronously and asynchronously (in a Cluster,
 * batches that span slots and are refunded), zero and oversized permits, a clock that jumps forward and goes
 * backwards, gates, set memberships and records.
 *
 * <p>Windows are seconds long and the clock moves about 150 ms per operation, far faster than the real time that
 * Redis expires keys in, so a key never expires in Redis before its ttl in the test's clock.
 */
class RedisReferenceTest {
    private static final int OPERATIONS = 1_000;
    /** How many limits {@link #limits()} has per subject: one of every kind. */
    private static final int KINDS = 9;

    private record Limit(StateKey key, LimitSpec spec) {}

    @ParameterizedTest
    @EnumSource(Target.class)
    void randomOperations_answerExactlyAsTheReference(Target target) {
        for (long seed = 1; seed <= 3; seed++) {
            ManualTicker ticker = ManualTicker.create();
            try (RedisStorage redis = target.builder().build()) {
                run(new Random(seed * 7919 + target.ordinal()), ticker, redis, ReferenceStorage.create(), seed);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Target.class)
    void clockGoingBackwards_everyKind_answersExactlyAsTheReference(Target target) {
        ManualTicker ticker = ManualTicker.create();
        Storage reference = ReferenceStorage.create();
        try (RedisStorage redis = target.builder().build()) {
            for (Limit limit : limits().subList(0, KINDS)) {
                String what = limit.spec().toString();
                // Drain the limit, step back 1.2 s (an NTP correction), then ask again, and again later.
                for (int i = 0; i < 6; i++) {
                    long now = ticker.epochMicros();
                    assertThat(redis.acquire(limit.key(), limit.spec(), 1, now))
                            .as("%s request %d", what, i)
                            .isEqualTo(reference.acquire(limit.key(), limit.spec(), 1, now));
                }
                ticker.set(ticker.now().minusMillis(1_200));
                for (int i = 0; i < 4; i++) {
                    long now = ticker.epochMicros();
                    assertThat(redis.acquire(limit.key(), limit.spec(), i % 2, now))
                            .as("%s after the clock went back, request %d", what, i)
                            .isEqualTo(reference.acquire(limit.key(), limit.spec(), i % 2, now));
                    ticker.advance(Duration.ofMillis(700));
                }
            }
        }
    }

    /**
     * A deadline before the year -292000 (below -2<sup>53</sup>, past what Lua holds exactly) comes back as it was
     * passed from an open gate, as the reference, the memory and the JDBC backends answer it, and changes nothing: it
     * read back as -2<sup>53</sup>+1 before.
     */
    @ParameterizedTest
    @EnumSource(Target.class)
    void raiseGate_deadlineFarInThePast_answersAsTheReference(Target target) {
        long now = ManualTicker.create().epochMicros();
        long[] deadlines = {Long.MIN_VALUE, -(1L << 53) - 1, -(1L << 53), 1 - (1L << 53), -1, 0, now - 1, now};
        Storage reference = ReferenceStorage.create();
        try (RedisStorage redis = target.builder().build()) {
            for (long until : deadlines) {
                StateKey open = new StateKey("gate", "open " + until);
                assertThat(redis.raiseGate(open, until, now))
                        .as("open gate raised to %d", until)
                        .isEqualTo(reference.raiseGate(open, until, now))
                        .isEqualTo(until);
                assertThat(redis.acquire(open, Gate.INSTANCE, 1, now))
                        .as("open gate raised to %d", until)
                        .isEqualTo(reference.acquire(open, Gate.INSTANCE, 1, now));
                for (long closedUntil : new long[] {now + 5_000_000, Long.MAX_VALUE}) {
                    StateKey closed = new StateKey("gate", "closed " + closedUntil + " " + until);
                    redis.raiseGate(closed, closedUntil, now);
                    reference.raiseGate(closed, closedUntil, now);
                    assertThat(redis.raiseGate(closed, until, now))
                            .as("gate closed until %d raised to %d", closedUntil, until)
                            .isEqualTo(reference.raiseGate(closed, until, now))
                            .isEqualTo(closedUntil);
                }
            }
        }
    }

    /**
     * Batches of 2,500 steps, nearly each of its own spec: every call carries more step texts than the server keeps
     * parsed (1,000), so the server empties its cache within the call, and parses the first steps' texts again in the
     * single-step calls that follow. In a Cluster the steps span three slots, which reject and refund together.
     */
    @ParameterizedTest
    @EnumSource(Target.class)
    void longBatches_moreDistinctStepsThanTheServerKeeps_answerExactlyAsTheReference(Target target) {
        ManualTicker ticker = ManualTicker.create();
        Storage reference = ReferenceStorage.create();
        List<Step> steps = new ArrayList<>();
        for (int i = 0; i < 2_500; i++) {
            steps.add(new Step(new StateKey("long " + i, "s" + i % 3), distinctSpec(i), 1 + i % 2));
        }
        Batch batch = new Batch(steps);
        int admitted = 0;
        try (RedisStorage redis = target.builder().build()) {
            for (int round = 0; round < 12; round++) {
                long now = ticker.epochMicros();
                BatchResult answer = redis.evaluate(batch, now);
                assertThat(answer).as("round %d", round).isEqualTo(reference.evaluate(batch, now));
                admitted += answer.admitted() ? 1 : 0;
                for (Step step : steps.subList(0, 12)) {
                    assertThat(redis.acquire(step.key(), step.spec(), 0, now))
                            .as("round %d, %s", round, step)
                            .isEqualTo(reference.acquire(step.key(), step.spec(), 0, now));
                }
                ticker.advance(Duration.ofMillis(450));
            }
        }
        // Both paths were taken: batches that committed every step, and batches that some step rejected.
        assertThat(admitted).isBetween(1, 11);
    }

    /** A spec whose step text differs for every i, bar a gate and a blocklist now and then. */
    private static LimitSpec distinctSpec(int i) {
        return switch (i % 8) {
            case 0 -> new TokenBucket(3 + i, 1 + i % 4, Duration.ofSeconds(2));
            case 1 -> new FixedWindow(4 + i, Duration.ofSeconds(3));
            case 2 -> new SlidingWindowLog(2 + i % 3 * 2, Duration.ofMillis(2_000 + i));
            case 3 -> new SlidingWindowCounter(6 + i, Duration.ofSeconds(4), 4);
            case 4 -> new Cooldown(Duration.ofMillis(300 + i % 100));
            case 5 -> new TokenBucket(10, 1, Duration.ofMillis(1_000 + i));
            // Shorter than a round, so that the same item passes again in the next one.
            case 6 -> new DuplicateWindow(Duration.ofMillis(400).plus(i, ChronoUnit.MICROS), 2);
            default -> i % 2 == 0 ? Gate.INSTANCE : Membership.MUST_BE_ABSENT;
        };
    }

    private static List<Limit> limits() {
        List<String> subjects = List.of("u1", "u2", StateKey.GLOBAL, "{x}\n*?[é] 😀", "");
        List<Limit> limits = new ArrayList<>();
        for (String subject : subjects) {
            limits.add(new Limit(new StateKey("bucket", subject), new TokenBucket(5, 3, Duration.ofSeconds(2))));
            limits.add(new Limit(new StateKey("fixed", subject), new FixedWindow(4, Duration.ofSeconds(3))));
            limits.add(new Limit(new StateKey("log", subject), new SlidingWindowLog(4, Duration.ofSeconds(3))));
            limits.add(
                    new Limit(new StateKey("counter", subject), new SlidingWindowCounter(6, Duration.ofSeconds(4), 4)));
            limits.add(new Limit(new StateKey("cooldown", subject), new Cooldown(Duration.ofMillis(1_500))));
            limits.add(new Limit(new StateKey("duplicates", subject), new DuplicateWindow(Duration.ofSeconds(2), 3)));
            limits.add(new Limit(new StateKey("gate", subject), Gate.INSTANCE));
            limits.add(new Limit(new StateKey("blocked", subject), Membership.MUST_BE_ABSENT));
            limits.add(new Limit(new StateKey("registered", subject), Membership.MUST_BE_PRESENT));
        }
        return limits;
    }

    private static void run(Random random, ManualTicker ticker, Storage redis, Storage reference, long seed) {
        List<Limit> limits = limits();
        List<Limit> gates =
                limits.stream().filter(l -> l.spec() instanceof Gate).toList();
        List<Limit> sets =
                limits.stream().filter(l -> l.spec() instanceof Membership).toList();
        for (int op = 0; op < OPERATIONS; op++) {
            long now = ticker.epochMicros();
            String where = "seed " + seed + ", operation " + op;
            int dice = random.nextInt(100);
            if (dice < 45) {
                List<Limit> shuffled = new ArrayList<>(limits);
                Collections.shuffle(shuffled, random);
                List<Step> steps = new ArrayList<>();
                for (Limit limit : shuffled.subList(0, 1 + random.nextInt(4))) {
                    steps.add(new Step(limit.key(), limit.spec(), permits(random, limit.spec())));
                }
                Batch batch = new Batch(steps);
                // Half through the asynchronous path, which must answer the same.
                BatchResult answer = random.nextBoolean()
                        ? redis.evaluate(batch, now)
                        : redis.evaluateAsync(batch, now).toCompletableFuture().join();
                assertThat(answer).as("%s: evaluate %s", where, batch).isEqualTo(reference.evaluate(batch, now));
            } else if (dice < 60) {
                Limit limit = limits.get(random.nextInt(limits.size()));
                long permits = permits(random, limit.spec());
                assertThat(redis.acquire(limit.key(), limit.spec(), permits, now))
                        .as("%s: acquire %s %s x%d", where, limit.key(), limit.spec(), permits)
                        .isEqualTo(reference.acquire(limit.key(), limit.spec(), permits, now));
            } else if (dice < 66) {
                StateKey gate = gates.get(random.nextInt(gates.size())).key();
                long until = random.nextInt(20) == 0 ? Long.MAX_VALUE : now + random.nextInt(3_000_000);
                assertThat(redis.raiseGate(gate, until, now))
                        .as("%s: raiseGate %s", where, gate)
                        .isEqualTo(reference.raiseGate(gate, until, now));
            } else if (dice < 72) {
                StateKey member = sets.get(random.nextInt(sets.size())).key();
                long expires = random.nextInt(10) == 0 ? Long.MAX_VALUE : now + 1 + random.nextInt(5_000_000);
                redis.addMember(member, expires, now);
                reference.addMember(member, expires, now);
            } else if (dice < 75) {
                StateKey member = sets.get(random.nextInt(sets.size())).key();
                assertThat(redis.removeMember(member))
                        .as("%s: removeMember %s", where, member)
                        .isEqualTo(reference.removeMember(member));
            } else if (dice < 80) {
                StateKey member = sets.get(random.nextInt(sets.size())).key();
                assertThat(redis.isMember(member, now))
                        .as("%s: isMember %s", where, member)
                        .isEqualTo(reference.isMember(member, now));
            } else if (dice < 85) {
                StateKey record = new StateKey("record", "r" + random.nextInt(3));
                long expected = random.nextInt(4);
                byte[] value = ("value " + op).getBytes(StandardCharsets.UTF_8);
                assertThat(redis.putRecord(record, value, expected))
                        .as("%s: putRecord %s v%d", where, record, expected)
                        .isEqualTo(reference.putRecord(record, value, expected));
                assertThat(redis.getRecord(record)).as("%s: getRecord", where).isEqualTo(reference.getRecord(record));
            } else if (dice < 90) {
                // Backwards: a clock that an NTP step moved, or a process whose clock lags.
                ticker.set(ticker.now().minusMillis(random.nextInt(1_500)));
            } else if (dice < 92) {
                ticker.advance(Duration.ofMillis(2_000 + random.nextInt(4_000)));
            }
            ticker.advance(Duration.ofMillis(random.nextInt(300)));
        }
    }

    /**
     * Permits for a step of {@code spec}: for a duplicate window an item, a few small ones and now and then one near
     * 2^53.
     */
    private static long permits(Random random, LimitSpec spec) {
        if (spec instanceof DuplicateWindow) {
            return random.nextInt(10) == 0 ? (1L << 53) - 1 - random.nextInt(2) : random.nextInt(5);
        }
        int dice = random.nextInt(100);
        if (dice < 10) {
            return 0;
        }
        if (dice < 70) {
            return 1;
        }
        if (dice < 95) {
            return 2 + random.nextInt(2);
        }
        return random.nextBoolean() ? 10 : 1L << 60;
    }
}
