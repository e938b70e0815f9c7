package dev.guard.route;

import dev.guard.limit.LimitSpec;
import java.time.Duration;
import java.util.Arrays;

/**
 * How a new sender's allowance grows with its age: stage {@code k} (counted from zero, one stage per {@link
 * #stageLength()}, one day by default) allows {@link #allowance(int) allowance(k)} messages in any {@link #window()}
 * (one hour by default). After the last stage the sender is warm and only its own limits apply.
 *
 * <p>The pool advances a sender to the next stage only while its failure, block and pushback rates stay under the
 * pool's thresholds, holds it otherwise, and steps it back one stage when the platform blocks it. The allowance is a
 * limit kept in the storage, so a warming sender never exceeds it, whichever process sends.
 *
 * <p>A sender warms up only on a schedule given to {@link Sender.Builder#warmUp}; one without is warm from the start.
 * {@link #sendGrid()} is the schedule to start with: modelled on SendGrid's automated IP warm-up, whose hourly send
 * schedule starts at 20 messages per hour on the first day and grows by about 1.4 times per day (Twilio SendGrid,
 * "Warming Up an IP Address", section "Automated IP warmup hourly send schedule",
 * https://www.twilio.com/docs/sendgrid/ui/sending-email/warming-up-an-ip-address). Email is not chat, and no chat
 * platform publishes a warm-up schedule; this one is a conservative ramp, not a platform's rule.
 *
 * <p>Immutable and thread-safe.
 */
public final class WarmUpSchedule {
    /** The most stages a schedule may have. */
    public static final int MAX_STAGES = 1_000;

    private final String description;
    private final long[] allowances;
    private final Duration window;
    private final Duration stageLength;

    private WarmUpSchedule(String description, long[] allowances, Duration window, Duration stageLength) {
        this.description = description;
        this.allowances = allowances;
        this.window = window;
        this.stageLength = stageLength;
    }

    /**
     * The schedule to start with, modelled on SendGrid's automated IP warm-up: 20 messages per hour on day one, times
     * 1.4 per day, until an hour allows 100,000 (the sender's own limits apply from then on).
     */
    public static WarmUpSchedule sendGrid() {
        return geometric(20, 1.4, 100_000);
    }

    /**
     * A geometric schedule: {@code start} per window at stage 0, times {@code factor} per stage (rounded, and at least
     * one more than the stage before), until the allowance reaches {@code ceiling}: every stage after the first allows
     * less than {@code ceiling}, and the sender is warm when the next would not. Stage 0 always allows {@code start},
     * so {@code ceiling == start} gives one stage.
     *
     * <p>Stages end below 2^53 messages whatever the ceiling: the sender is warm where the next stage would allow
     * that many.
     *
     * @throws IllegalArgumentException if {@code start} is not positive or not below 2^53, {@code factor} is not
     *     above 1, {@code ceiling} is below {@code start}, or the schedule would need more than {@value #MAX_STAGES}
     *     stages
     */
    public static WarmUpSchedule geometric(long start, double factor, long ceiling) {
        Sender.checkCount("start", start);
        if (!(factor > 1.0) || Double.isInfinite(factor)) {
            throw new IllegalArgumentException("factor must be above 1 but was " + factor);
        }
        atLeast("ceiling", ceiling, start);
        long[] stages = new long[MAX_STAGES];
        int n = 0;
        double value = start;
        long previous = 0;
        while (true) {
            long allowance = Math.max(previous + 1, Math.round(value));
            // A stage of 2^53 or more would be no limit anyone could evaluate or reach: warm from there on.
            if (allowance >= ceiling || allowance >= LimitSpec.EXACT_LIMIT) {
                break;
            }
            if (n == MAX_STAGES) {
                throw new IllegalArgumentException("a geometric schedule from " + start + " times " + factor
                        + " needs more than " + MAX_STAGES + " stages to reach " + ceiling);
            }
            stages[n++] = allowance;
            previous = allowance;
            value *= factor;
        }
        if (n == 0) {
            // ceiling == start: the loop stored nothing, and a stage of 0 would forbid every message.
            stages[n++] = start;
        }
        return new WarmUpSchedule(
                "geometric(start=" + start + ", factor=" + factor + ", ceiling=" + ceiling + ")",
                Arrays.copyOf(stages, n),
                Duration.ofHours(1),
                Duration.ofDays(1));
    }

    /**
     * A linear schedule: {@code start} per window at stage 0, plus {@code step} per stage, until the allowance
     * reaches {@code ceiling}: every stage after the first allows less than {@code ceiling}, and the sender is warm
     * when the next would not. Stage 0 always allows {@code start}, so {@code ceiling == start} gives one stage.
     *
     * <p>Stages end below 2^53 messages whatever the ceiling: the sender is warm where the next stage would allow
     * that many.
     *
     * @throws IllegalArgumentException if a value is not positive, {@code start} is not below 2^53, {@code ceiling}
     *     is below {@code start}, or the schedule would need more than {@value #MAX_STAGES} stages
     */
    public static WarmUpSchedule linear(long start, long step, long ceiling) {
        Sender.checkCount("start", start);
        positive("step", step);
        atLeast("ceiling", ceiling, start);
        // ceil((top - start) / step) without the overflow of (top - start + step - 1): top >= start > 0, so the
        // difference fits a long, and each stage start + i * step below it does too. The top is the ceiling, or 2^53
        // below it: a stage allowing that many would be no limit anyone could evaluate or reach.
        long span = Math.min(ceiling, LimitSpec.EXACT_LIMIT) - start;
        long count = Math.max(1, span / step + (span % step == 0 ? 0 : 1));
        if (count > MAX_STAGES) {
            throw new IllegalArgumentException("a linear schedule from " + start + " in steps of " + step + " needs "
                    + count + " stages to reach " + ceiling + ", more than " + MAX_STAGES);
        }
        long[] stages = new long[(int) count];
        for (int i = 0; i < stages.length; i++) {
            stages[i] = start + i * step;
        }
        return new WarmUpSchedule(
                "linear(start=" + start + ", step=" + step + ", ceiling=" + ceiling + ")",
                stages,
                Duration.ofHours(1),
                Duration.ofDays(1));
    }

    /**
     * A schedule from a table: stage {@code k} allows {@code allowances[k]} messages per window.
     *
     * @throws IllegalArgumentException if the table is empty, longer than {@value #MAX_STAGES}, or holds a value that
     *     is not positive or not below 2^53
     */
    public static WarmUpSchedule table(long... allowances) {
        if (allowances == null || allowances.length == 0) {
            throw new IllegalArgumentException("allowances must not be empty");
        }
        if (allowances.length > MAX_STAGES) {
            throw new IllegalArgumentException(
                    "allowances must hold at most " + MAX_STAGES + " stages but held " + allowances.length);
        }
        for (int i = 0; i < allowances.length; i++) {
            Sender.checkCount("allowances[" + i + "]", allowances[i]);
        }
        return new WarmUpSchedule(
                "table" + Arrays.toString(allowances), allowances.clone(), Duration.ofHours(1), Duration.ofDays(1));
    }

    /**
     * This schedule with allowances counted per {@code window} instead of per hour.
     *
     * @throws IllegalArgumentException if {@code window} is not positive, longer than 366 days or not a whole number
     *     of milliseconds
     */
    public WarmUpSchedule withWindow(Duration window) {
        return new WarmUpSchedule(description, allowances, checkDuration("window", window), stageLength);
    }

    /**
     * This schedule with stages of {@code stageLength} instead of one day.
     *
     * @throws IllegalArgumentException if {@code stageLength} is not positive, longer than 366 days or not a whole
     *     number of milliseconds
     */
    public WarmUpSchedule withStageLength(Duration stageLength) {
        return new WarmUpSchedule(description, allowances, window, checkDuration("stageLength", stageLength));
    }

    /** The number of stages; a sender at stage {@code stages()} or beyond is warm. */
    public int stages() {
        return allowances.length;
    }

    /**
     * The messages allowed per {@link #window()} at {@code stage}, or {@link Long#MAX_VALUE} once warm.
     *
     * @throws IllegalArgumentException if {@code stage} is negative
     */
    public long allowance(int stage) {
        if (stage < 0) {
            throw new IllegalArgumentException("stage must not be negative but was " + stage);
        }
        return stage >= allowances.length ? Long.MAX_VALUE : allowances[stage];
    }

    /** The window the allowance counts over. */
    public Duration window() {
        return window;
    }

    /** How long each stage lasts at least. */
    public Duration stageLength() {
        return stageLength;
    }

    private static Duration checkDuration(String field, Duration value) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
        if (value.compareTo(Duration.ofDays(366)) > 0) {
            throw new IllegalArgumentException(field + " must be at most 366 days but was " + value);
        }
        if (value.getNano() % 1_000_000 != 0) {
            throw new IllegalArgumentException(field + " must be a whole number of milliseconds but was " + value);
        }
        return value;
    }

    private static void positive(String field, long value) {
        if (value <= 0) {
            throw new IllegalArgumentException(field + " must be positive but was " + value);
        }
    }

    private static void atLeast(String field, long value, long start) {
        if (value < start) {
            throw new IllegalArgumentException(field + " must be at least start " + start + " but was " + value);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WarmUpSchedule w
                && Arrays.equals(w.allowances, allowances)
                && w.window.equals(window)
                && w.stageLength.equals(stageLength);
    }

    @Override
    public int hashCode() {
        return (Arrays.hashCode(allowances) * 31 + window.hashCode()) * 31 + stageLength.hashCode();
    }

    @Override
    public String toString() {
        return "WarmUpSchedule[" + description + ", " + allowances.length + " stages of " + stageLength + ", per "
                + window + "]";
    }
}
