package dev.guard;

import dev.guard.internal.Interrupts;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A trailing-edge debouncer: collects the messages of a burst per key (the parts of a media album, a user mashing a
 * button) and hands the whole burst to the handler once, after the key has been quiet for {@code window}, or when
 * the burst has waited {@code maxWait} since its first message, or reached {@code maxBurst} messages.
 *
 * <pre>{@code
 * Debouncer<Update> albums = Debouncer.builder(Update::mediaGroupId, bot::onAlbum)
 *         .window(Duration.ofMillis(500))
 *         .maxWait(Duration.ofSeconds(3))
 *         .build();
 * GuardedHandler<Update> handler = guard.wrap(albums::offer);
 * albums.start(scheduler, Duration.ofMillis(100)); // or call flushDue() from your own loop
 * }</pre>
 *
 * <p>Unlike the leading-edge {@link Guard.Builder#duplicates duplicates} filter, a debouncer must hold the messages
 * themselves, so its bursts live in this process's memory, not in the storage. Time comes from the {@link Ticker};
 * {@link #flushDue()} hands over whatever is due at the ticker's now, which is how tests drive it with a {@link
 * ManualTicker}; {@link #start} calls it periodically. A clock set back by more than a window (a wall clock stepped
 * back, which {@link Ticker#precise()} follows; {@link Ticker#system()} never goes back) counts as past the deadlines
 * of the bursts it finds: they are handed over at the next flush instead of waiting as long as the step; set back by
 * less, a burst waits up to that much longer. Thread-safe. Bursts are handed over in the thread that calls
 * {@link #flushDue()} or {@link #flushAll()}, or in the one whose {@link #offer} fills a burst to {@code maxBurst} or
 * finds its key's burst due. The bursts of one key reach the handler one at a time, in the order they closed: a burst
 * that closes while the handler still has its key's previous one (a message that came while that one was handed
 * over, then went quiet) waits for it, and the thread that handed that one over hands this one over next. No call
 * waits for another's handler: a key whose bursts close faster than the handler returns them keeps that thread (a
 * periodic flush's too) and piles them up in memory, so limit each key's messages before they reach the debouncer
 * (a guard's token bucket per user). A handler that throws loses that burst (logged); the debouncer goes on, and an
 * {@link InterruptedException} thrown undeclared (by Kotlin code) leaves the thread interrupted. An {@link Error} a
 * handler throws is rethrown, once the other bursts that call hands over have been handed over.
 *
 * @param <M> the bot's update type
 */
public final class Debouncer<M> {
    private static final Logger LOG = LoggerFactory.getLogger(Debouncer.class);

    private final Function<? super M, ?> key;
    private final Consumer<? super List<M>> handler;
    private final Ticker ticker;
    private final long windowMicros;
    private final long maxWaitMicros;
    private final int maxBurst;
    private final Map<Object, Burst<M>> bursts = new ConcurrentHashMap<>();
    /** The keys whose bursts a thread is handing over, each with the bursts closed meanwhile: see {@link #take}. */
    private final Map<Object, Lane<M>> lanes = new ConcurrentHashMap<>();

    /** The messages of one key so far; guarded by itself. Its times are set as its first offer adds its message. */
    private static final class Burst<M> {
        long firstMicros;
        long lastMicros;
        final List<M> messages = new ArrayList<>();
        boolean closed;
    }

    /**
     * The bursts of a key that closed while a thread was handing over an earlier one, oldest first; read and changed
     * only in the map's atomic calls on the key. {@link #next} is the one the handing thread took last.
     */
    private static final class Lane<M> {
        final ArrayDeque<List<M>> waiting = new ArrayDeque<>();
        List<M> next;

        Lane<M> queue(List<M> messages) {
            waiting.add(messages);
            return this;
        }
    }

    private Debouncer(Builder<M> b, Duration maxWait) {
        this.key = b.key;
        this.handler = b.handler;
        this.ticker = b.ticker;
        this.windowMicros = Durations.toMicrosSaturated(b.window);
        this.maxWaitMicros = Durations.toMicrosSaturated(maxWait);
        this.maxBurst = b.maxBurst;
    }

    /**
     * A builder for a debouncer that groups messages by {@code key} (a {@code null} key hands the message over alone,
     * at once) and hands each burst, in arrival order, to {@code handler}.
     */
    public static <M> Builder<M> builder(Function<? super M, ?> key, Consumer<? super List<M>> handler) {
        return new Builder<>(key, handler);
    }

    /**
     * Adds {@code message} to its key's burst; hands the burst over at once if it reached {@code maxBurst}. A burst
     * already due (quiet for the window, or waiting for {@code maxWait}) that no flush has handed over yet is handed
     * over here, and {@code message} starts a new burst. A burst whose key's previous burst is still being handed
     * over is left to the call handing that one over, which hands it over next: this call returns without waiting.
     */
    public void offer(M message) {
        Objects.requireNonNull(message, "message must not be null");
        Object k = key.apply(message);
        if (k == null) {
            deliver(List.of(message));
            return;
        }
        boolean overdue = false;
        List<M> mine = null; // a burst this call took first for its key: it hands it over, and those closed meanwhile
        Burst<M> burst = null;
        try {
            while (true) {
                burst = bursts.computeIfAbsent(k, x -> new Burst<>());
                synchronized (burst) {
                    if (burst.closed) {
                        bursts.remove(k, burst); // handed over concurrently; start a new burst
                        continue;
                    }
                    long now = ticker.epochMicros(); // see isDue
                    if (!overdue && isDue(burst, now)) {
                        // Due, but no flush got to it yet: it takes no more messages; hand it over once this one is in.
                        mine = close(k, burst);
                        overdue = true;
                        continue;
                    }
                    if (burst.messages.isEmpty()) {
                        burst.firstMicros = now;
                    }
                    burst.messages.add(message);
                    burst.lastMicros = now;
                    if (burst.messages.size() >= maxBurst) {
                        List<M> full = close(k, burst);
                        // After an overdue burst this call took, the full one waits in the lane.
                        mine = mine != null ? mine : full;
                    }
                }
                break;
            }
        } catch (Throwable e) {
            // The clock or the burst failed before this call's message was in (a clock whose thread could not start
            // throws once, and works again). If that was after this call took an overdue burst, that burst is handed
            // over all the same, and its key's lane ends: else every later burst of the key would wait behind a
            // handover that never comes.
            if (mine != null) {
                Error error = handOver(k, mine, null);
                if (error != null && error != e) {
                    e.addSuppressed(error);
                }
            }
            // A burst it left empty (the key's first message) goes: nothing hands an empty burst over, so it would
            // stay in the map, counted as pending, until the key came again (an album's never does).
            dropIfEmpty(k, burst);
            throw e;
        }
        rethrow(handOver(k, mine, null));
    }

    /**
     * Removes {@code burst} of {@code k} (nothing when null) if it is still empty and open, closed as a burst handed
     * over is, so that an offer that waits for its lock starts the key's next burst.
     */
    private void dropIfEmpty(Object k, Burst<M> burst) {
        if (burst == null) {
            return;
        }
        synchronized (burst) {
            if (!burst.closed && burst.messages.isEmpty()) {
                burst.closed = true;
                bursts.remove(k, burst);
            }
        }
    }

    /**
     * Hands over every burst that is due at the ticker's now: quiet for the window, or waiting for {@code maxWait}.
     * A burst whose key's previous burst is still being handed over is left to the call handing that one over, which
     * hands it over next.
     *
     * @return how many due bursts it took, those left to another call included
     */
    public int flushDue() {
        int delivered = 0;
        Error error = null;
        for (Map.Entry<Object, Burst<M>> entry : bursts.entrySet()) {
            Burst<M> burst = entry.getValue();
            List<M> mine;
            synchronized (burst) {
                if (burst.closed || !isDue(burst, ticker.epochMicros())) {
                    continue;
                }
                mine = close(entry.getKey(), burst);
            }
            error = handOver(entry.getKey(), mine, error);
            delivered++;
        }
        rethrow(error);
        return delivered;
    }

    /**
     * Whether {@code burst} is quiet for the window, or has waited {@code maxWait}, at {@code now}, or its last message
     * is more than a window ahead of {@code now}: the clock was set back (a wall clock stepped back by an hour would
     * otherwise hold the burst for that hour). Under its lock, with {@code now} read there: a reading after every one
     * that set the burst's times, so that a caller whose reading is merely old (a flush whose earlier handlers took a
     * while) is not taken for a clock set back. An empty burst (its first offer has not added its message yet) is
     * never due.
     */
    private boolean isDue(Burst<M> burst, long now) {
        if (burst.messages.isEmpty()) {
            return false;
        }
        long quiet = now - burst.lastMicros;
        return quiet >= windowMicros || quiet < -windowMicros || now - burst.firstMicros >= maxWaitMicros;
    }

    /**
     * Hands over every pending burst now, due or not (for shutdown). A burst whose key's previous burst is still being
     * handed over (by a periodic flush, say) is left to the call handing that one over, which hands it over next,
     * perhaps after this returns: at shutdown, stop the periodic flush and wait for it to end first.
     *
     * @return how many bursts it took, those left to another call included
     */
    public int flushAll() {
        int delivered = 0;
        Error error = null;
        for (Map.Entry<Object, Burst<M>> entry : bursts.entrySet()) {
            Burst<M> burst = entry.getValue();
            List<M> mine;
            synchronized (burst) {
                if (burst.closed || burst.messages.isEmpty()) {
                    continue; // handed over, or its first offer has not added its message yet
                }
                mine = close(entry.getKey(), burst);
            }
            error = handOver(entry.getKey(), mine, error);
            delivered++;
        }
        rethrow(error);
        return delivered;
    }

    /**
     * The number of bursts taking messages: not those closed and waiting for the handler to return their key's
     * previous burst.
     */
    public int pending() {
        return bursts.size();
    }

    /**
     * Calls {@link #flushDue()} on {@code scheduler} every {@code resolution}; cancel the returned future to stop.
     * A burst is handed over at most {@code resolution} after it is due, plus the time the previous flush took (its
     * handlers included): the delay runs from the end of one flush to the start of the next; or, for a key whose
     * previous burst the handler still has, once it returns that one. Whatever a handler throws is logged and costs
     * its burst, and the periodic flush goes on.
     *
     * @throws IllegalArgumentException if {@code resolution} is not positive
     */
    public ScheduledFuture<?> start(ScheduledExecutorService scheduler, Duration resolution) {
        Objects.requireNonNull(scheduler, "scheduler must not be null");
        long micros = Durations.toMicrosSaturated(Durations.positive("resolution", resolution));
        return scheduler.scheduleWithFixedDelay(this::flushDueQuietly, micros, micros, TimeUnit.MICROSECONDS);
    }

    private void flushDueQuietly() {
        try {
            flushDue();
        } catch (Throwable e) {
            // Anything escaping would suppress every later run (ScheduledExecutorService's contract): pending bursts
            // would never be handed over and would pile up.
            LOG.warn("debouncer flush failed", e);
        }
    }

    /**
     * Closes {@code burst} of {@code k}, under its lock, and takes it ({@link #take}) before it leaves the map: only
     * then can an offer start the key's next burst (it waits for this lock to find this one closed, or finds it gone),
     * so the next one is taken after this one. Removed first, the next could be started, closed and taken (and handed
     * over) while this thread was still on its way to take this one.
     *
     * @return as {@link #take}
     */
    private List<M> close(Object k, Burst<M> burst) {
        burst.closed = true;
        List<M> mine = take(k, burst.messages);
        bursts.remove(k, burst);
        return mine;
    }

    /**
     * Takes {@code messages}, a burst of {@code k} just closed, under the burst's lock, so that the bursts of a key
     * are taken in the order they closed: answers them when the caller is to hand them over ({@link #handOver}), null
     * when a thread is handing over the key's bursts already: it hands them over after the ones before.
     */
    private List<M> take(Object k, List<M> messages) {
        Lane<M> fresh = new Lane<>();
        return lanes.compute(k, (x, lane) -> lane == null ? fresh : lane.queue(messages)) == fresh ? messages : null;
    }

    /**
     * Hands over {@code messages} of {@code k} (nothing when null), then the bursts of {@code k} that closed
     * meanwhile, oldest first, until none waits; answers the first {@link Error} as {@link #deliver(List, Error)}.
     */
    private Error handOver(Object k, List<M> messages, Error earlier) {
        Error error = earlier;
        for (List<M> next = messages; next != null; next = nextOf(k)) {
            error = deliver(next, error);
        }
        return error;
    }

    /** The oldest burst of {@code k} waiting in its lane, or null, having ended the lane, when none waits. */
    private List<M> nextOf(Object k) {
        Lane<M> lane = lanes.computeIfPresent(k, (x, l) -> {
            l.next = l.waiting.poll();
            return l.next == null ? null : l;
        });
        return lane == null ? null : lane.next;
    }

    private void deliver(List<M> messages) {
        try {
            handler.accept(List.copyOf(messages));
        } catch (Error e) {
            throw e; // see deliver(List, Error)
        } catch (Throwable e) { // undeclared checked ones too, and a Throwable itself: Kotlin may throw either
            // Nothing but an Error leaves here, so that a handover always ends its key's lane (see handOver).
            Interrupts.keep(e);
            LOG.warn("debounced handler threw; the burst of {} messages is dropped", messages.size(), e);
        }
    }

    /**
     * Hands {@code messages} over (nothing when null) and answers the first {@link Error} a handler threw, {@code
     * earlier} or this one's: a burst taken from the map is handed over or lost, so an error in one handler must not
     * skip the others a call has taken (or would take next, for a shutdown's {@link #flushAll}); rethrown after them.
     */
    private Error deliver(List<M> messages, Error earlier) {
        if (messages == null) {
            return earlier;
        }
        try {
            deliver(messages);
            return earlier;
        } catch (Error e) {
            if (earlier == null) {
                return e;
            }
            if (e != earlier) { // a JVM may throw one preallocated error again
                earlier.addSuppressed(e);
            }
            return earlier;
        }
    }

    private static void rethrow(Error error) {
        if (error != null) {
            throw error;
        }
    }

    /**
     * Builds a {@link Debouncer}; setters validate at once.
     *
     * @param <M> the bot's update type
     */
    public static final class Builder<M> {
        private final Function<? super M, ?> key;
        private final Consumer<? super List<M>> handler;
        private Ticker ticker = Ticker.system();
        private Duration window = Duration.ofMillis(500);
        private Duration maxWait;
        private int maxBurst = 100;

        private Builder(Function<? super M, ?> key, Consumer<? super List<M>> handler) {
            this.key = Objects.requireNonNull(key, "key must not be null");
            this.handler = Objects.requireNonNull(handler, "handler must not be null");
        }

        /** How long a key must be quiet before its burst is handed over; 500 ms by default. */
        public Builder<M> window(Duration window) {
            this.window = Durations.positive("window", window);
            return this;
        }

        /** The longest a burst waits after its first message; 10 windows by default. */
        public Builder<M> maxWait(Duration maxWait) {
            this.maxWait = Durations.positive("maxWait", maxWait);
            return this;
        }

        /** The most messages in one burst; a full burst is handed over at once. 100 by default. */
        public Builder<M> maxBurst(int maxBurst) {
            if (maxBurst <= 0) {
                throw new IllegalArgumentException("maxBurst must be positive but was " + maxBurst);
            }
            this.maxBurst = maxBurst;
            return this;
        }

        /** The clock; a {@link ManualTicker} in tests. */
        public Builder<M> ticker(Ticker ticker) {
            this.ticker = Objects.requireNonNull(ticker, "ticker must not be null");
            return this;
        }

        /** The longest window whose default maxWait, ten windows, a {@link Duration} can hold. */
        private static final Duration LONGEST_WINDOW_TIMES_TEN = Duration.ofSeconds(Long.MAX_VALUE / 10);

        /**
         * Builds the debouncer.
         *
         * @throws IllegalArgumentException if {@code maxWait} is shorter than {@code window}
         */
        public Debouncer<M> build() {
            // By default ten windows of the window set now, or the window itself where ten would not fit a Duration.
            Duration wait = maxWait != null
                    ? maxWait
                    : window.compareTo(LONGEST_WINDOW_TIMES_TEN) > 0 ? window : window.multipliedBy(10);
            if (wait.compareTo(window) < 0) {
                throw new IllegalArgumentException(
                        "maxWait must not be shorter than window " + window + " but was " + wait);
            }
            return new Debouncer<>(this, wait);
        }
    }
}
