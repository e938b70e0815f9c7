package dev.guard.route;

import dev.guard.limit.Gate;
import dev.guard.limit.Membership;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One sender as this pool sees it: its keys in the storage, a view of its shared record, and what only this process
 * knows (health, risk, pacing, hints of when it is free again, counters). Routing reads volatile fields only;
 * feedback updates health under the state's monitor.
 */
final class SenderState {
    /** The most per-second limits whose steps are cached; paced limits above it allocate a step. */
    static final int RATE_CACHE = 1024;

    /**
     * How long the marks of reports on a sender's score take to fade without further reports: 10 minutes. A sender
     * that routing avoids gets no messages, hence no reports; without the fade, a burst of failures would keep it
     * idle for good, long after the platform's trouble is over.
     */
    static final long FADE_MICROS = 600_000_000L;

    /** Everything routing needs from the configuration and the shared record, replaced as a whole on change. */
    static final class View {
        final SenderStatus status;
        final int stage;
        final long stageStartMicros;
        final long perSecond;
        final long perDay;
        final Set<String> tags;
        final long tagMask;
        final Step dayStep;
        final Step warmStep;
        final long allowance;
        /** The storage's version of the record behind this view; 0 before the first read. */
        final long version;
        /** When the record behind this view was read: the reader's clock before the read, so never later than it. */
        final long readAtMicros;
        /** Which install this view was (the count of installs after it), 0 for the first; set before publication. */
        long sequence;

        final Step[] rateSteps;
        /** The step at the full per-second limit when that is above the cache; set once, racily and harmlessly. */
        Step fullRate;

        View(
                SenderStatus status,
                int stage,
                long stageStartMicros,
                long perSecond,
                long perDay,
                Set<String> tags,
                long tagMask,
                Step dayStep,
                Step warmStep,
                long allowance,
                long version,
                long readAtMicros) {
            this.status = status;
            this.stage = stage;
            this.stageStartMicros = stageStartMicros;
            this.perSecond = perSecond;
            this.perDay = perDay;
            this.tags = tags;
            this.tagMask = tagMask;
            this.dayStep = dayStep;
            this.warmStep = warmStep;
            this.allowance = allowance;
            this.version = version;
            this.readAtMicros = readAtMicros;
            this.rateSteps = new Step[(int) Math.min(perSecond, RATE_CACHE) + 1];
        }

        boolean warming() {
            return warmStep != null;
        }
    }

    final String id;
    final Sender config;
    final StateKey heldKey;
    final StateKey gateKey;
    final StateKey rateKey;
    final StateKey dayKey;
    final StateKey warmKey;
    final StateKey recordKey;
    final Step heldStep;
    final Step gateStep;
    final long affinitySeed;

    volatile View view;

    /**
     * Orders the changes of this sender's status made in this process (a block reported, a status set, the end of a
     * warm-up stage, the end of a local hold that the storage no longer has): each holds it from its first read of
     * the record (or of the membership) to its last storage call, so that the record, the held membership, the local
     * hold, the counts and the events all follow one order of the changes. Routing only tries it.
     */
    final ReentrantLock statusLock = new ReentrantLock();

    /**
     * The events of this sender not yet handed to the listeners, queued where the change they tell of is made (under
     * {@link #statusLock} or this state's monitor), so in the order of the changes.
     */
    final Queue<PoolEvent> events = new ConcurrentLinkedQueue<>();

    /** Set while a thread hands {@link #events} to the listeners: one thread at a time, so in their order. */
    final AtomicBoolean delivering = new AtomicBoolean();

    /**
     * Set while a {@code setStatus(ACTIVE)} of this process is under way: it ends the local hold itself, at its end,
     * in one step with the end of the ejection and the failures in a row; a read of the record it wrote meanwhile
     * leaves the hold to it, so that a failure reported before that step finds the sender held, as before it.
     */
    volatile boolean reactivating;

    /** Orders the installs of views: checked against the view in force and published under it. */
    final Object installLock = new Object();
    /** How many views have been installed; written under {@link #installLock}. */
    volatile long installs;
    /** Set when the storage said this sender is held (blocked or retired) before our record said so. */
    volatile boolean heldLocally;
    /**
     * Set while a block or retirement made in this process has not reached the storage (it failed): the local
     * "held" mark then stays until the record says so, the sender is set active again here, or the record says it
     * was set active again after it ({@link #holdSinceMicros}; another pool blocked it and set it active since).
     */
    volatile boolean holdUnconfirmed;

    /** When the unconfirmed hold was made. */
    volatile long holdSinceMicros;

    /**
     * Set while a block or retirement of this process is being written (under {@link #statusLock}): its hold is not
     * yet unconfirmed but in progress, and no record installed meanwhile ends it. (A record that another pool set
     * active meanwhile is newer than the hold, yet the block, written next, comes after that activation.)
     */
    volatile boolean holding;

    /**
     * The latest retry_after deadline this process was told of, kept even when the storage failed to record it: a
     * change of limits clears the "not before" learnt from the old limits, but never below this.
     */
    volatile long localGateMicros;

    /**
     * When this sender is believed free again. Raised only by {@link #waitUntil} and {@link #gated}, lowered only by
     * {@link #forgetWaitsFromOldLimits}, all under the state's monitor, so that no wait ever replaces a later one.
     */
    volatile long notBeforeMicros;

    /**
     * Until when routing passes this sender over because a read of its record failed ({@link #unreadFailure} says
     * why); 0 once a read succeeds. Apart from {@link #notBeforeMicros}: the sender is not busy, and a message that
     * only it could take is told the storage's failure.
     */
    volatile long unreadUntilMicros;
    /** The failure of the last read of the record that failed, while {@link #unreadUntilMicros} is set. */
    volatile GuardStorageException unreadFailure;

    volatile long coolingUntilMicros;
    volatile long ejectedUntilMicros;
    volatile long remainingHint = -1;
    volatile long remainingAtMicros;
    /**
     * Health times risk as the reports up to {@link #fadedAtMicros} left it; recomputed on feedback and when the
     * sender is set active again. Routing fades it to the time of the pick: {@link #score(long, long)}.
     */
    private volatile double score = 1.0;

    /** The AIMD factor of the per-second limit: earned back by sending, not with time (see {@link #delivered}). */
    volatile double pacing = 1.0;

    // What the score is made of, written under the monitor and read without it by routing, which may then mix two
    // reports: harmless, as the score only steers the choice of a sender.
    /**
     * The mark of slow deliveries: the moving average over the deliveries of {@code 1 - 1 / (1 + latency in
     * seconds)}, faded as the other marks are. Zero for a sender new to the pool (or whose mark has faded away): the
     * next delivery then sets it in full.
     */
    private volatile double latencyGap;

    private volatile double success = 1.0;
    /** The exponent of the risk: risk = 1 - exp(-pressure); infinite after a block. */
    private volatile double pressure;
    /** How much of the pacing's back-off weighs on the score: 1 - pacing at a back-off, then fading. */
    private volatile double pacingDebt;
    /**
     * When the marks of past reports were last faded (the last report); the greatest long while a block reported here
     * holds the sender, whose marks then do not fade until it is set active again.
     */
    private volatile long fadedAtMicros;

    // Guarded by this.
    private double latencyMicros;
    private double pushbackAverage;
    private double failFast;
    private double failSlow;
    private double blockAverage;
    private long pacingAtMicros;
    private int consecutiveFailures;
    /**
     * How many times the failures in a row were cleared other than by a delivery (the end of a hold, an activation,
     * an ejection): an ejection decided on a count taken before the latest of these does not happen.
     */
    private int failureResets;

    int ejections;

    final LongAdder sent = new LongAdder();
    final LongAdder delivered = new LongAdder();
    final LongAdder failed = new LongAdder();
    final LongAdder pushbacks = new LongAdder();
    final LongAdder recipientBlocks = new LongAdder();
    final LongAdder blocks = new LongAdder();
    final AtomicLongArray sentByHour = new AtomicLongArray(HeatMap.CELLS);
    final AtomicLongArray failuresByHour = new AtomicLongArray(HeatMap.CELLS);
    final AtomicLongArray blocksByHour = new AtomicLongArray(HeatMap.CELLS);

    /** Counters of the current warm-up stage, reset when the stage changes. */
    final AtomicLong stageSent = new AtomicLong();

    final AtomicLong stageFailed = new AtomicLong();
    final AtomicLong stageBlocked = new AtomicLong();
    /** The platform's pushbacks on the sender itself in the stage; not those it answered for a busy chat. */
    final AtomicLong stagePushedBack = new AtomicLong();

    SenderState(String prefix, Sender config) {
        this.id = config.id();
        this.config = config;
        this.heldKey = new StateKey(prefix + "held", id);
        this.gateKey = new StateKey(prefix + "gate", id);
        this.rateKey = new StateKey(prefix + "rate", id);
        this.dayKey = new StateKey(prefix + "day", id);
        this.warmKey = new StateKey(prefix + "warm", id);
        this.recordKey = new StateKey(prefix + "sender", id);
        this.heldStep = new Step(heldKey, Membership.MUST_BE_ABSENT, 1);
        this.gateStep = new Step(gateKey, Gate.INSTANCE, 1);
        this.affinitySeed = mix(id.hashCode());
    }

    /** The step of the per-second limit at {@code limit} permits (the AIMD-paced one); cached per limit. */
    Step rateStep(View v, long limit) {
        if (limit >= v.rateSteps.length) {
            if (limit == v.perSecond) {
                Step full = v.fullRate;
                if (full == null) {
                    full = newRateStep(limit);
                    v.fullRate = full;
                }
                return full;
            }
            return newRateStep(limit);
        }
        int i = (int) limit;
        Step step = v.rateSteps[i];
        if (step == null) {
            // A racy cache is fine: Steps are immutable and equal.
            step = newRateStep(limit);
            v.rateSteps[i] = step;
        }
        return step;
    }

    private Step newRateStep(long limit) {
        return new Step(
                rateKey, new SlidingWindowCounter(limit, Duration.ofSeconds(1), PlatformPreset.SECOND_BUCKETS), 1);
    }

    /**
     * The per-second limit after this sender's pacing and the pool's {@code brake} (the factor of its recipient
     * blocks, in (0, 1]): never below one.
     */
    long pacedLimit(View v, double brake) {
        return Math.max(1, (long) (v.perSecond * pacing * brake));
    }

    /** The tags in force: the record's override or the configuration's. */
    static Set<String> tags(Sender config, SenderRecord record) {
        return record.tags() == null ? config.tags() : new LinkedHashSet<>(record.tags());
    }

    static long mix(long h) {
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        h ^= h >>> 33;
        return h;
    }

    void granted(long nowMicros, int hourOfWeek, long remaining) {
        sent.increment();
        sentByHour.incrementAndGet(hourOfWeek);
        if (view.warming()) {
            stageSent.incrementAndGet();
        }
        remainingHint = remaining;
        remainingAtMicros = nowMicros;
    }

    /**
     * The routing score at {@code nowMicros}: health and risk, faded to then, times the share of capacity believed
     * left. No allocation, no lock.
     *
     * <p>The capacity left is what the storage answered at the last grant, learnt under the limit of then: a lower
     * limit since (the pool's brake, a pushback's pacing, a limit set at run time) makes it count as the whole of the
     * limit now, never more. Above it, a sender that had sent would score above an equally healthy one that had not.
     */
    double score(long nowMicros, long limit) {
        double s = fadedScore(nowMicros);
        long hint = remainingHint;
        if (hint >= 0 && nowMicros - remainingAtMicros < 1_000_000L) {
            s *= (Math.min(hint, limit) + 1.0) / (limit + 1.0);
        }
        return s;
    }

    /**
     * The share of the marks of past reports still in force at {@code nowMicros}: one at the last report, falling
     * linearly to zero {@link #FADE_MICROS} later. Linear, not exponential, so that the marks end: a sender
     * scored even a hair below a healthy one loses every comparison with it.
     */
    private double weight(long nowMicros) {
        long at = fadedAtMicros;
        if (nowMicros <= at) {
            return 1;
        }
        long since = nowMicros - at;
        return since >= FADE_MICROS ? 0 : 1 - (double) since / FADE_MICROS;
    }

    /** The score with the marks of past reports faded to {@code nowMicros}; what {@link #fade} then rescores. */
    private double fadedScore(long nowMicros) {
        // Read without the monitor, the weight may not belong to the components; the early answers also keep the
        // infinite pressure of a block from ever meeting a zero weight.
        double l = latencyGap;
        double s = success;
        double x = pressure;
        double d = pacingDebt;
        double w = weight(nowMicros);
        if (w == 1) {
            return score;
        }
        // Every mark faded away: the score of a sender new to the pool.
        return w == 0 ? 1.0 : score(l, s, x, d, w);
    }

    /** Health times risk times the pacing's weight, with the share {@code w} (above zero) of the marks in force. */
    private static double score(double latencyGap, double success, double pressure, double pacingDebt, double w) {
        // Each mark is a gap from the neutral value that fades linearly: the latency's, 1 - success, the risk's
        // exponent, the debt. The latency's fades too: a sender that routing avoids for slow deliveries gets no
        // delivery that would measure it again, and one slow delivery (a network blip) would keep it idle for good.
        double health = (1 - latencyGap * w) * (1 - (1 - success) * w);
        return Math.max(1e-9, health * Math.exp(-pressure * w) * (1 - pacingDebt * w));
    }

    /**
     * Fades the marks of the reports so far to what is left of them at {@code nowMicros}: each report does so first,
     * so that its own mark counts in full while the older ones keep fading. Pacing itself does not fade.
     */
    private void fade(long nowMicros) {
        if (nowMicros <= fadedAtMicros) {
            return;
        }
        double w = weight(nowMicros);
        success = 1 - (1 - success) * w;
        latencyGap *= w;
        pushbackAverage *= w;
        failFast *= w;
        failSlow *= w;
        blockAverage *= w;
        pacingDebt *= w;
        fadedAtMicros = nowMicros;
    }

    synchronized void delivered(long latency, long nowMicros, double recoveryPerSecond, double latencyBackoff) {
        fade(nowMicros);
        delivered.increment();
        consecutiveFailures = 0;
        double previousLatency = latencyMicros;
        latencyMicros = latencyMicros == 0 ? latency : latencyMicros + 0.1 * (latency - latencyMicros);
        double gap = 1 - 1 / (1 + latency / 1_000_000.0);
        latencyGap = latencyGap == 0 ? gap : latencyGap + 0.1 * (gap - latencyGap);
        success += 0.1 * (1 - success);
        observe(0, 0, 0);
        boolean slowing = previousLatency > 0 && latency > 2 * previousLatency && latency > 500_000;
        if (slowing) {
            // Delivery latency doubling is the platform queueing our messages: back off before it says 429.
            pace(latencyBackoff, nowMicros);
        } else {
            // Recovery per second of sending: at most a second counts per delivery, so that neither a retry_after wait
            // nor an idle hour undoes a back-off at the first delivery after it.
            double elapsed = pacingAtMicros == 0 ? 0 : Math.min(1.0, (nowMicros - pacingAtMicros) / 1e6);
            if (pacing < 1.0 && elapsed > 0) {
                pacing = Math.min(1.0, pacing + recoveryPerSecond * elapsed);
                pacingDebt = Math.min(pacingDebt, 1 - pacing);
            }
            pacingAtMicros = nowMicros;
        }
        rescore();
    }

    /** Records a failure; answers the number of failures in a row. */
    synchronized int failed(int hourOfWeek, long nowMicros) {
        fade(nowMicros);
        failed.increment();
        failuresByHour.incrementAndGet(hourOfWeek);
        if (view.warming()) {
            stageFailed.incrementAndGet();
        }
        success += 0.1 * (0 - success);
        observe(0, 1, 0);
        rescore();
        return ++consecutiveFailures;
    }

    /**
     * Records a pushback; {@code onSender} when the platform pushed back on the sender itself, which counts against
     * its warm-up quality, false when it named a busy chat, which does not ({@link SenderPool#retryAfter(String,
     * String, java.time.Duration)} says why).
     */
    synchronized void pushedBack(int hourOfWeek, long nowMicros, double backoff, boolean onSender) {
        fade(nowMicros);
        pushbacks.increment();
        failuresByHour.incrementAndGet(hourOfWeek);
        if (onSender && view.warming()) {
            stagePushedBack.incrementAndGet();
        }
        success += 0.1 * (0 - success);
        observe(1, 0, 0);
        pace(backoff, nowMicros);
        rescore();
    }

    synchronized void recipientBlocked(int hourOfWeek, long nowMicros) {
        fade(nowMicros);
        recipientBlocks.increment();
        blocksByHour.incrementAndGet(hourOfWeek);
        if (view.warming()) {
            stageBlocked.incrementAndGet();
        }
        observe(0, 0, 1);
        rescore();
    }

    /**
     * Records a block by the platform; answers whether it is a new one: false while a block reported here holds (until
     * the sender is set active again), as the reports of the other messages it had in flight are the same block.
     */
    synchronized boolean blocked(int hourOfWeek, long nowMicros) {
        if (blockHeld()) {
            return false;
        }
        fade(nowMicros);
        blocks.increment();
        blocksByHour.incrementAndGet(hourOfWeek);
        observe(1, 1, 1);
        // Risk one, unfaded, until the sender is set active again.
        fadedAtMicros = Long.MAX_VALUE;
        pressure = Double.POSITIVE_INFINITY;
        score = 1e-9;
        return true;
    }

    /** Whether a block reported here holds the marks (risk one, unfaded) until the sender is set active again. */
    private boolean blockHeld() {
        return fadedAtMicros == Long.MAX_VALUE;
    }

    /**
     * Starts the health and risk of a sender set active again afresh, as a sender new to the pool has them: its next
     * delivery measures its latency for routing again. The moving average of its latency stays, for its stats and as
     * the baseline that tells a platform queueing its messages ({@link #delivered}). A block left its score near zero
     * until the next feedback, which a sender that routing avoids never gets. The caution the block calls for lives
     * in the storage, where every pool sees it: the warm-up stage it stepped back and the re-entry gate.
     */
    synchronized void reactivated() {
        success = 1.0;
        latencyGap = 0;
        pacing = 1.0;
        pacingDebt = 0;
        pushbackAverage = 0;
        failFast = 0;
        failSlow = 0;
        blockAverage = 0;
        pressure = 0;
        // Nothing is left to fade, at any weight; zero ends a block's hold on the time of the marks.
        fadedAtMicros = 0;
        resetFailures();
        rescore();
    }

    synchronized void resetFailures() {
        consecutiveFailures = 0;
        failureResets++;
    }

    /** See {@link #failureResets}; read with the count of {@link #failed} under this state's monitor. */
    synchronized int failureResets() {
        return failureResets;
    }

    /**
     * Starts the counters of a new warm-up stage; under this state's monitor, as the reports that count in them, so
     * that each report counts in the stage before or in this one.
     */
    synchronized void newStage() {
        stageSent.set(0);
        stageFailed.set(0);
        stageBlocked.set(0);
        stagePushedBack.set(0);
    }

    /**
     * Ends the local hold and, if it held, starts health and risk afresh ({@link #reactivated}, which clears the
     * failures in a row): one step under this state's monitor, which an ejection takes too, so that no ejection sees
     * the hold ended but not the failures counted while it held cleared.
     */
    synchronized void release() {
        if (heldLocally) {
            heldLocally = false;
            reactivated();
        }
    }

    /**
     * Holds this sender until {@code untilMicros}, unless it is held longer already: waits merge by the later deadline,
     * as gates do, so that a short wait learnt by one attempt never ends a longer one (a retry_after) set meanwhile.
     */
    synchronized void waitUntil(long untilMicros) {
        if (untilMicros > notBeforeMicros) {
            notBeforeMicros = untilMicros;
        }
    }

    /** Holds this sender until a retry_after deadline, which a change of limits does not end either. */
    synchronized void gated(long untilMicros) {
        waitUntil(untilMicros);
        localGateMicros = Math.max(localGateMicros, untilMicros);
    }

    /**
     * Ends the waits learnt from old limits (a full day's quota, a warm-up stage's allowance used up), which would hide
     * a raised limit for up to a day; a gate's deadline stays, as gates do not depend on limits.
     */
    synchronized void forgetWaitsFromOldLimits() {
        notBeforeMicros = Math.min(notBeforeMicros, Math.max(coolingUntilMicros, localGateMicros));
    }

    private void pace(double factor, long nowMicros) {
        pacing = Math.max(1.0 / Math.max(1, view.perSecond), pacing * factor);
        pacingDebt = 1 - pacing;
        pacingAtMicros = nowMicros;
    }

    /** Moving averages of pushback, failure (fast and slow, for the trend) and recipient blocks per event. */
    private void observe(double pushback, double failure, double block) {
        pushbackAverage += 0.05 * (pushback - pushbackAverage);
        failFast += 0.2 * (failure - failFast);
        failSlow += 0.02 * (failure - failSlow);
        blockAverage += 0.05 * (block - blockAverage);
        // Weights: a block is the strongest warning, pushback next; a failure rate rising faster than its long-run
        // average is a trend that tends to come before a block. A heuristic, documented as such.
        // Linear in the averages, so fading them all by w fades the exponent by w.
        if (blockHeld()) {
            // A block reported here holds the risk at one until the sender is set active again: the reports of the
            // messages it had in flight (delivered, failed, pushed back) are no sign that the block is over.
            return;
        }
        pressure = 4 * pushbackAverage + 2 * failFast + 8 * blockAverage + 4 * Math.max(0, failFast - failSlow);
    }

    private void rescore() {
        score = score(latencyGap, success, pressure, pacingDebt, 1);
    }

    /** The stats at {@code nowMicros}: success and risk faded to then, as routing sees them. */
    synchronized SenderStats stats(SenderStatus status, WarmUpSchedule schedule, long nowMicros) {
        View v = view;
        double w = weight(nowMicros);
        return new SenderStats(
                id,
                config.group(),
                status,
                schedule == null ? -1 : v.stage,
                v.allowance,
                sent.sum(),
                delivered.sum(),
                failed.sum(),
                pushbacks.sum(),
                recipientBlocks.sum(),
                blocks.sum(),
                Duration.ofNanos((long) (latencyMicros * 1000)),
                1 - (1 - success) * w,
                pacing,
                w == 0 ? 0 : 1 - Math.exp(-pressure * w),
                snapshot(sentByHour),
                snapshot(failuresByHour),
                snapshot(blocksByHour));
    }

    private static HeatMap snapshot(AtomicLongArray cells) {
        long[] copy = new long[HeatMap.CELLS];
        for (int i = 0; i < copy.length; i++) {
            copy[i] = cells.get(i);
        }
        return new HeatMap(copy);
    }
}
