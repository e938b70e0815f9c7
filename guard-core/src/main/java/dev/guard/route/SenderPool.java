package dev.guard.route;

import dev.guard.Ticker;
import dev.guard.internal.Interrupts;
import dev.guard.internal.Saturated;
import dev.guard.internal.WholeMicros;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.VersionedRecord;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Routes outgoing messages over several sender accounts (bot tokens, WhatsApp numbers) within every platform limit
 * at once, spreads the load by the senders' health, warms new senders up, and backs off when the platform pushes
 * back.
 *
 * <p><b>One storage call per permit.</b> {@link #acquire} picks a sender locally (power of two choices over the
 * eligible senders, scored by health, risk and the capacity it believes is left) and admits the send with one
 * atomic, all-or-nothing {@link Storage#evaluate} covering the sender (not blocked or retired, no gate, warm-up
 * allowance, per-second and per-day quotas), the recipient chat (not blocked by its recipient, gate and limit) and
 * the pool's global limit. When the storage rejects the sender it tries another, at most {@code maxAttempts} storage
 * calls in all; when it rejects the chat or the global limit no other sender would help, and the answer comes at
 * once: {@link SendDecision.Rejected} with {@link SendDecision.Reason#RECIPIENT_BLOCKED} for a chat whose recipient
 * blocked a sender of the pool ({@link #recipientBlocked}), else {@link SendDecision.Delayed}.
 *
 * <p><b>Scores forget.</b> A sender's score falls with the failures, pushback and recipient blocks reported on it
 * and with the latency of its deliveries, and rises with fast deliveries; what the reports took off it fades linearly
 * to nothing over the 10 minutes after the last report. A sender that routing avoids gets no messages, hence no
 * reports: without the fade, a burst of failures or one slow delivery would keep it idle long after the platform's
 * trouble is over; with it, a sender left alone for 10 minutes is scored as a new one. Among senders about as good,
 * the one that routing passed over the longest has the most faded marks, so light traffic moves round them instead of
 * all going to the one whose latency is a millisecond lower. The latency in {@link #stats()} is the moving average,
 * unfaded. The pacing of its per-second limit (AIMD) does not fade: it is earned back by sending. A block reported
 * here does not fade either: it holds until the sender is set active again.
 *
 * <p><b>Recipient blocks brake the whole pool.</b> Each recipient block reported to the pool, on any sender, slows
 * every sender's per-second limit by a pool-wide factor that recovers with time without blocks ({@link
 * Builder#recipientBlockBrake}): a campaign that makes people block it runs slower, however many senders it could
 * spread the blocks over.
 *
 * <p><b>Shared state.</b> Everything that must hold across processes lives in the storage, under keys prefixed
 * with the pool's {@linkplain Builder#name name}: two pools of the same name over one storage (two processes)
 * share quotas, gates, blocks and warm-up stages exactly. Status, warm-up stage and limits changed at run time are a
 * versioned record per sender that each pool re-reads every {@code syncInterval}; health, risk, pacing, the brake
 * and the counters behind {@link #stats()} are local to the process.
 *
 * <p><b>Thread safety and cost.</b> Thread-safe. {@link #acquire} reads only volatile local state besides its
 * storage call(s); feedback methods update local state under a per-sender monitor (a recipient block also the
 * pool's brake, under a lock of its own) and call the storage only to raise a gate, mark a sender held or not (a set
 * membership), mark a chat or change a record. Nothing here blocks besides the storage, with one exception: the
 * changes of one sender's status in a process (a block reported, {@link #setStatus}, the end of a warm-up stage) take
 * turns, each whole, storage calls included, so that they take effect and reach the listeners as if made one after
 * the other; a second one waits for the storage calls of the first (and for those of a sync or an attempt that ends
 * the sender's stage or its hold). Routing never waits for them: a
 * sync or an attempt that finds one under way leaves that sender's stage, and the end of its hold, to the next sync.
 *
 * <pre>{@code
 * SenderPool pool = SenderPool.builder(storage)
 *         .preset(PlatformPreset.telegram())
 *         .sender(Sender.of("bot-a"))
 *         .sender(Sender.builder("bot-b").warmUp(WarmUpSchedule.sendGrid()).build())
 *         .build();
 * }</pre>
 */
public final class SenderPool {
    static final int DAY_BUCKETS = 24;
    private static final int WARM_BUCKETS = 10;
    /** The most sends a warm-up stage needs before its quality is judged (fewer when the allowance is smaller). */
    static final long MIN_STAGE_SENT = 20;

    /**
     * The shortest wait a {@link SendDecision.Delayed} answers: 1 ms. A limit may free up sooner (a chat's window
     * ending in microseconds), but a shorter wait is one that callers with a millisecond scheduler truncate to zero
     * and retry at once, over and over, until the clock gets there.
     */
    private static final long MIN_DELAY_MICROS = 1_000;

    private static final int MAX_TAGS = 64;
    /** A retry_after longer than this cannot be a platform's answer: 2^53 microseconds, about 285 years. */
    private static final long MAX_MICROS = LimitSpec.EXACT_LIMIT - 1;

    private static final Logger LOG = LoggerFactory.getLogger(SenderPool.class);

    private final Storage storage;
    private final Ticker ticker;
    private final String name;
    private final String prefix;
    private final PlatformPreset preset;
    private final List<PoolListener> listeners;
    private final long syncIntervalMicros;
    private final int maxAttempts;
    private final double backoff;
    private final double recoveryPerSecond;
    private final double latencyBackoff;
    private final double brakeBackoff;
    private final double brakeRecoveryPerSecond;
    private final int ejectAfterFailures;
    private final long ejectionMicros;
    private final double maxEjectedFraction;
    private final double maxWarmUpFailureRate;
    private final double maxWarmUpBlockRate;
    private final double maxWarmUpPushbackRate;
    private final Map<String, Integer> tagStages;
    private final long zoneOffsetSeconds;
    private final RandomGenerator random;
    private final String chatGateScope;
    private final String privateChatScope;
    private final String groupChatScope;
    /** The set of chats whose recipient blocked a sender of the pool: no sender writes to them. */
    private final String recipientBlockedScope;

    private final Step globalStep;

    private final Object lock = new Object();
    private volatile SenderState[] senders = new SenderState[0];
    private final Map<String, SenderState> byId = new ConcurrentHashMap<>();
    private volatile Map<String, Integer> tagBits = Map.of();
    private volatile long nextSyncMicros = Long.MIN_VALUE;
    private final AtomicBoolean syncing = new AtomicBoolean();
    private final AtomicBoolean exhausted = new AtomicBoolean();

    /** The pool-wide brake of recipient blocks ({@link Builder#recipientBlockBrake}); changed under brakeLock. */
    private volatile Brake brake = Brake.RELEASED;
    /** Orders the changes of the brake, and the queueing of their events in the same order. */
    private final Object brakeLock = new Object();
    /** The brake's events not yet handed to the listeners, queued under brakeLock. */
    private final Queue<PoolEvent> brakeEvents = new ConcurrentLinkedQueue<>();
    /** Set while a thread hands {@link #brakeEvents} to the listeners: one thread at a time, so in their order. */
    private final AtomicBoolean deliveringBrakeEvents = new AtomicBoolean();

    private SenderPool(Builder b) {
        this.storage = b.storage;
        this.ticker = b.ticker;
        this.name = b.name;
        this.prefix = "route/" + b.name + "/";
        this.preset = b.preset;
        this.listeners = List.copyOf(b.listeners);
        this.syncIntervalMicros = micros(b.syncInterval);
        this.maxAttempts = b.maxAttempts;
        this.backoff = b.backoff;
        this.recoveryPerSecond = b.recoveryPerSecond;
        this.latencyBackoff = b.latencyBackoff;
        this.brakeBackoff = b.brakeBackoff;
        this.brakeRecoveryPerSecond = b.brakeRecoveryPerSecond;
        this.ejectAfterFailures = b.ejectAfterFailures;
        this.ejectionMicros = micros(b.ejection);
        this.maxEjectedFraction = b.maxEjectedFraction;
        this.maxWarmUpFailureRate = b.maxWarmUpFailureRate;
        this.maxWarmUpBlockRate = b.maxWarmUpBlockRate;
        this.maxWarmUpPushbackRate = b.maxWarmUpPushbackRate;
        this.tagStages = Map.copyOf(b.tagStages);
        this.zoneOffsetSeconds = b.zone.getTotalSeconds();
        this.random = b.random;
        this.chatGateScope = prefix + "chat-gate";
        this.privateChatScope = prefix + "chat";
        this.groupChatScope = prefix + "group";
        this.recipientBlockedScope = prefix + "recipient-blocked";
        this.globalStep = preset.global() == null
                ? null
                : new Step(new StateKey(prefix + "global", StateKey.GLOBAL), preset.global(), 1);
        for (String tag : b.tagStages.keySet()) {
            registerTag(tag);
        }
        long now = ticker.epochMicros();
        for (Sender sender : b.senders) {
            add(sender, now);
        }
    }

    /**
     * A builder of a pool over {@code storage}.
     *
     * @throws IllegalArgumentException if {@code storage} is null
     */
    public static Builder builder(Storage storage) {
        if (storage == null) {
            throw new IllegalArgumentException("storage must not be null");
        }
        return new Builder(storage);
    }

    /** The pool's name: the namespace of its keys in the storage. */
    public String name() {
        return name;
    }

    /** The preset whose limits the pool applies. */
    public PlatformPreset preset() {
        return preset;
    }

    /**
     * Adds a sender at run time. Reads (or creates) its record in the storage. When it throws, the pool is as it was:
     * neither the sender nor any of its tags is added (the record may have been created in the storage, for the next
     * attempt to read).
     *
     * @throws IllegalArgumentException if the pool already has a sender of that id, or the pool would hold more than
     *     64 distinct tags
     * @throws GuardStorageException if the storage fails
     */
    public void add(Sender sender) {
        if (sender == null) {
            throw new IllegalArgumentException("sender must not be null");
        }
        add(sender, ticker.epochMicros());
    }

    private void add(Sender sender, long now) {
        synchronized (lock) {
            if (byId.containsKey(sender.id())) {
                throw new IllegalArgumentException("sender '" + sender.id() + "' is already in pool '" + name + "'");
            }
            // Every check, and the read that may fail, before the first change: tags are never forgotten, so a tag
            // registered for a sender that was not added would take one of the 64 for good.
            checkRoomForTags(sender.tags());
            SenderState state = new SenderState(prefix, sender);
            long seen = state.installs;
            StoredRecord stored = read(state, now);
            for (String tag : sender.tags()) {
                registerTag(tag); // cannot fail: checked above, under the lock that every registration takes
            }
            state.view = view(state, SenderRecord.initial(now), 0, now);
            install(state, stored.record(), stored.version(), seen, now);
            byId.put(sender.id(), state);
            SenderState[] next = Arrays.copyOf(senders, senders.length + 1);
            next[next.length - 1] = state;
            senders = next;
        }
    }

    /** The ids of the pool's senders, in the order they were added. */
    public List<String> senders() {
        List<String> ids = new ArrayList<>();
        for (SenderState s : senders) {
            ids.add(s.id);
        }
        return ids;
    }

    // ------------------------------------------------------------------------------------------------ routing

    /**
     * Picks a sender for {@code message} and admits the send in the storage: {@link SendDecision.Granted} (send now
     * through that sender, then report the outcome), {@link SendDecision.Delayed} (nothing can take it before a
     * time) or {@link SendDecision.Rejected} (nothing will without a change). Nothing is consumed unless granted.
     *
     * <p>Cost: one storage round trip in the common case, at most {@code maxAttempts}; every {@code syncInterval} one
     * call also re-reads the senders' records (one small read per sender). A sender whose record no sync has re-read
     * for an interval (the sync runs in another thread, or failed) costs one more read before its attempt; when that
     * read fails or the record does not decode (another version's format, a damaged write), the sender is passed over
     * for an interval (or until a read of it succeeds) and the message goes to another (a sender passed over is not
     * one of the {@code maxAttempts}); while every sender that may carry it is passed over so, or it is pinned to such
     * a sender, the storage's failure is the answer. A sender that the storage holds (blocked or retired by another
     * pool) while this pool's record of it says active costs a read of its record, and of its membership if the
     * record still says active. A storage failure is answered as {@link SendDecision.Reason#STORAGE_UNAVAILABLE},
     * never thrown.
     *
     * @throws IllegalArgumentException if {@code message} is null or pinned to a sender this pool does not have
     */
    public SendDecision acquire(OutboundMessage message) {
        if (message == null) {
            throw new IllegalArgumentException("message must not be null");
        }
        long now = ticker.epochMicros();
        if (now >= nextSyncMicros) {
            sync(now);
        }
        releaseBrake(now);
        SenderState[] all = senders;
        if (message.pinnedSender() != null && !byId.containsKey(message.pinnedSender())) {
            throw new IllegalArgumentException(
                    "unknown sender '" + message.pinnedSender() + "' in pool '" + name + "'");
        }
        if (all.length == 0) {
            return rejected(SendDecision.Reason.NO_SENDERS, "pool '" + name + "' has no senders", now, true);
        }
        // Every long is a valid mask (64 tags fill all bits), so an unknown tag is checked apart, not by a sentinel.
        if (!knownTags(message)) {
            if (message.pinnedSender() != null) {
                // The pinned sender is the only one asked: it is the one that may not carry the tag.
                return rejected(
                        SendDecision.Reason.PINNED_SENDER_UNAVAILABLE,
                        unavailable(byId.get(message.pinnedSender()), message, now),
                        now,
                        false);
            }
            return rejected(
                    SendDecision.Reason.NO_ELIGIBLE_SENDER,
                    "no sender of pool '" + name + "' may carry " + message.tags(),
                    now,
                    false);
        }
        long mask = mask(message);
        Step[] chat = chatSteps(message);
        try {
            if (message.pinnedSender() != null) {
                return acquirePinned(byId.get(message.pinnedSender()), mask, message, chat, now);
            }
            SenderState preferred = message.affinity() == null ? null : rendezvous(all, mask, message.affinity(), now);
            // A sender whose record could not be read before its attempt is passed over: that is no attempt (it made
            // no decision), and it is not picked again for an interval, so an outage of some senders' records never
            // hides another sender. Once none is left to try, exhausted() answers: the storage's failure when every
            // sender that may carry the message is passed over, a wait when some are only busy. At most one pass per
            // sender and one per attempt.
            int attempts = 0;
            for (int passes = 0; attempts < maxAttempts && passes < all.length + maxAttempts; passes++) {
                SenderState s = preferred != null ? preferred : pick(all, mask, now);
                preferred = null;
                if (s == null) {
                    break;
                }
                SendDecision d;
                try {
                    d = attempt(s, mask, message, chat, now, true);
                } catch (UnreadRecord e) {
                    continue;
                }
                attempts++;
                if (d != null) {
                    return d;
                }
            }
        } catch (GuardStorageException e) {
            return new SendDecision.Rejected(SendDecision.Reason.STORAGE_UNAVAILABLE, e.getMessage());
        }
        return exhausted(all, mask, message, now);
    }

    /** A sender's record could not be read before its attempt: the message may go through another sender. */
    private static final class UnreadRecord extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UnreadRecord(GuardStorageException failure) {
            super(failure.getMessage(), failure, false, false);
        }
    }

    private SendDecision acquirePinned(SenderState s, long mask, OutboundMessage m, Step[] chat, long now) {
        if (!eligible(s, mask)) {
            return rejected(SendDecision.Reason.PINNED_SENDER_UNAVAILABLE, unavailable(s, m, now), now, false);
        }
        if (now < s.notBeforeMicros) {
            return delayed(s.notBeforeMicros, now, SendDecision.Reason.SENDERS_BUSY);
        }
        SendDecision d = attempt(s, mask, m, chat, now, false);
        if (d != null) {
            return d;
        }
        return eligible(s, mask)
                ? delayed(s.notBeforeMicros, now, SendDecision.Reason.SENDERS_BUSY)
                : rejected(SendDecision.Reason.PINNED_SENDER_UNAVAILABLE, unavailable(s, m, now), now, false);
    }

    /**
     * Why {@code s}, which {@link #eligible} refused, cannot take {@code m}: its status when it is held, else the tags
     * it may not carry at all and those it may carry only from a later warm-up stage. Only what applies is named:
     * a cooling sender is not held, and an empty tag list is no reason.
     */
    private String unavailable(SenderState s, OutboundMessage m, long now) {
        SenderState.View v = s.view;
        if (v.status != SenderStatus.ACTIVE || s.heldLocally) {
            return "sender '" + s.id + "' is " + status(s, now);
        }
        Map<String, Integer> bits = tagBits;
        Set<String> missing = new LinkedHashSet<>();
        Set<String> cold = new LinkedHashSet<>();
        int needs = 0;
        for (String tag : tagSet(m)) {
            Integer bit = bits.get(tag);
            Integer stage = tagStages.get(tag);
            if (!v.tags.contains(tag) || bit == null) {
                missing.add(tag);
            } else if ((v.tagMask & (1L << bit)) == 0 && stage != null) {
                cold.add(tag);
                needs = Math.max(needs, stage);
            }
        }
        List<String> why = new ArrayList<>();
        if (!missing.isEmpty()) {
            why.add("may not carry " + missing);
        }
        if (!cold.isEmpty()) {
            why.add("may carry " + cold + " only from warm-up stage " + needs + " but is at stage " + v.stage);
        }
        return "sender '" + s.id + "' " + (why.isEmpty() ? "may not carry " + m.tags() : String.join(" and ", why));
    }

    /**
     * One storage call for sender {@code s}: the answer when it settles the message (granted, or delayed by the chat
     * or the global limit), null when the sender could not take it and another may.
     */
    private SendDecision attempt(
            SenderState s, long mask, OutboundMessage m, Step[] chat, long now, boolean passOverUnread) {
        SenderState.View v = s.view;
        if (now - v.readAtMicros > syncIntervalMicros) {
            // The pool's sync has not re-read this sender for an interval: it runs in another thread right now, or
            // it failed. Read the record first: the re-entry gate of a sender set active again lasts one interval,
            // and only a record read since it was set holds the stage stepped back while the sender was blocked.
            try {
                refresh(s, now);
            } catch (GuardStorageException e) {
                if (!passOverUnread) {
                    throw e;
                }
                // A record that does not decode (another version's format, a damaged write) or a read that failed:
                // route past this sender for an interval, after which a sync or an attempt reads it again.
                s.unreadFailure = e;
                s.unreadUntilMicros = Saturated.plus(now, syncIntervalMicros);
                LOG.debug(
                        "pool '{}' passes over sender '{}', whose record it cannot read: {}",
                        name,
                        s.id,
                        e.getMessage());
                throw new UnreadRecord(e);
            }
            v = s.view;
            if (!eligible(s, mask)) {
                return null;
            }
        }
        // A pinned or sticky message comes here without the pick that tells of a gate passed: the listeners must hear
        // that the cooling ended before the sender takes its next message, not at the next sync.
        endCooling(s, now);
        int senderSteps = v.warmStep != null ? 3 : 2;
        senderSteps += v.dayStep != null ? 2 : 1;
        Step[] steps = new Step[senderSteps + chat.length];
        int i = 0;
        steps[i++] = s.heldStep;
        steps[i++] = s.gateStep;
        if (v.warmStep != null) {
            steps[i++] = v.warmStep;
        }
        steps[i++] = s.rateStep(v, s.pacedLimit(v, brakeFactor(now)));
        if (v.dayStep != null) {
            steps[i++] = v.dayStep;
        }
        System.arraycopy(chat, 0, steps, i, chat.length);
        BatchResult r = storage.evaluate(new Batch(List.of(steps)), now);
        if (r.admitted()) {
            long senderRemaining = Long.MAX_VALUE;
            for (int k = 2; k < senderSteps; k++) {
                senderRemaining = Math.min(senderRemaining, Outcome.remaining(r.outcome(k)));
            }
            s.granted(now, hourOfWeek(now), senderRemaining);
            if (exhausted.compareAndSet(true, false)) {
                emit(PoolEvent.Type.POOL_RECOVERED, s.id, now, "sender '" + s.id + "' took a message");
            }
            return new SendDecision.Granted(this, s.id, m.chat(), now, r.remaining());
        }
        long senderRetry = 0;
        long chatRetry = 0;
        boolean globalRejected = false;
        for (int k = 0; k < r.size(); k++) {
            long o = r.outcome(k);
            if (Outcome.isAdmitted(o)) {
                continue;
            }
            if (k < senderSteps) {
                senderRetry = Math.max(senderRetry, Outcome.retryAfterMicros(o));
            } else {
                chatRetry = Math.max(chatRetry, Outcome.retryAfterMicros(o));
                globalRejected |= globalStep != null && k == r.size() - 1;
            }
        }
        boolean held = !Outcome.isAdmitted(r.outcome(0));
        if (held) {
            // Another pool blocked or retired it: stop routing to it and read why.
            s.heldLocally = true;
            readWhyHeld(s, now);
        } else if (senderRetry > 0) {
            // Merged, not set: feedback from another thread may have set a longer wait since the storage answered.
            s.waitUntil(Saturated.plus(now, senderRetry));
            if (!Outcome.isAdmitted(r.outcome(1))) {
                startCooling(
                        s, Saturated.plus(now, Outcome.retryAfterMicros(r.outcome(1))), now, "gate in the storage");
            }
        }
        if (!Outcome.isAdmitted(r.outcome(senderSteps))) {
            // The chat's first step: its recipient blocked a sender of the pool. No other sender may write instead.
            return new SendDecision.Rejected(
                    SendDecision.Reason.RECIPIENT_BLOCKED,
                    "the recipient of chat '" + m.chat() + "' blocked a sender of pool '" + name
                            + "': no sender writes to it until recipientUnblocked");
        }
        if (chatRetry > 0) {
            if (chatRetry == Long.MAX_VALUE) {
                return new SendDecision.Rejected(
                        SendDecision.Reason.NEVER, "a limit of chat '" + m.chat() + "' can never admit the message");
            }
            return delayed(
                    Saturated.plus(now, chatRetry),
                    now,
                    globalRejected ? SendDecision.Reason.GLOBAL_LIMIT : SendDecision.Reason.CHAT_LIMIT);
        }
        if (!held && senderRetry == Long.MAX_VALUE) {
            return new SendDecision.Rejected(
                    SendDecision.Reason.NEVER, "a limit of sender '" + s.id + "' can never admit the message");
        }
        return null;
    }

    private Step[] chatSteps(OutboundMessage m) {
        Step optedOut = new Step(new StateKey(recipientBlockedScope, m.chat()), Membership.MUST_BE_ABSENT, 1);
        Step gate = new Step(new StateKey(chatGateScope, m.chat()), dev.guard.limit.Gate.INSTANCE, 1);
        // A chat that the platform's ids show to be a group is one, marked or not: a forgotten inGroup() must not send
        // a group at a private chat's rate.
        boolean group = m.kind() == ChatKind.GROUP || preset.isGroupId(m.chat());
        Step limit = group
                ? new Step(new StateKey(groupChatScope, m.chat()), preset.groupChat(), 1)
                : new Step(new StateKey(privateChatScope, m.chat()), preset.privateChat(), 1);
        if (group && preset.chatLimitInGroups()) {
            // Telegram's one message per second holds in every chat; a group's 20 per minute comes on top.
            Step perChat = new Step(new StateKey(privateChatScope, m.chat()), preset.privateChat(), 1);
            return globalStep == null
                    ? new Step[] {optedOut, gate, perChat, limit}
                    : new Step[] {optedOut, gate, perChat, limit, globalStep};
        }
        return globalStep == null ? new Step[] {optedOut, gate, limit} : new Step[] {optedOut, gate, limit, globalStep};
    }

    /** Whether {@code s} may carry a message of tag bits {@code mask} at all (status, tags, warm-up). */
    private static boolean eligible(SenderState s, long mask) {
        SenderState.View v = s.view;
        return v.status == SenderStatus.ACTIVE && !s.heldLocally && (mask & ~v.tagMask) == 0;
    }

    /**
     * Power of two choices over the eligible senders that are free now: two at random, the better score wins.
     * Ejected senders count only when every eligible sender is ejected, so ejection never empties the pool.
     */
    private SenderState pick(SenderState[] all, long mask, long now) {
        RandomGenerator rnd = random != null ? random : ThreadLocalRandom.current();
        int size = all.length;
        // The common case, most senders free: draw two distinct ones at random and keep them if both qualify.
        // Rejection sampling keeps the pair uniform over the qualifying senders; a few misses fall back to a count.
        if (size >= 2) {
            for (int draw = 0; draw < 4; draw++) {
                int a = rnd.nextInt(size);
                int b = rnd.nextInt(size - 1);
                if (b >= a) {
                    b++;
                }
                SenderState first = all[a];
                SenderState second = all[b];
                if (routable(first, mask, now) && routable(second, mask, now)) {
                    endCooling(first, now);
                    endCooling(second, now);
                    return score(second, now) > score(first, now) ? second : first;
                }
            }
        }
        // One pass over a snapshot: the senders that qualified when the pass saw them, free ones from the front of
        // the array and free ejected ones from its back. Feedback from other threads (a 429, a block, an ejection)
        // may change a sender meanwhile; the pick then stands on what the pass saw, as if that feedback came after.
        SenderState[] found = new SenderState[size];
        int free = 0;
        int freeEjected = 0;
        boolean anyEligibleNotEjected = false;
        for (SenderState s : all) {
            if (!eligible(s, mask)) {
                continue;
            }
            boolean ejected = now < s.ejectedUntilMicros;
            anyEligibleNotEjected |= !ejected;
            if (free(s, now)) {
                if (ejected) {
                    found[size - 1 - freeEjected++] = s;
                } else {
                    found[free++] = s;
                }
            }
            endCooling(s, now);
        }
        boolean withEjected = !anyEligibleNotEjected;
        int n = withEjected ? freeEjected : free;
        if (n == 0) {
            return null;
        }
        int offset = withEjected ? size - freeEjected : 0;
        int a = rnd.nextInt(n);
        if (n == 1) {
            return found[offset + a];
        }
        int b = rnd.nextInt(n - 1);
        if (b >= a) {
            b++;
        }
        SenderState first = found[offset + a];
        SenderState second = found[offset + b];
        return score(second, now) > score(first, now) ? second : first;
    }

    /** Eligible, free now and not ejected: a sender the fast draw may take. */
    private static boolean routable(SenderState s, long mask, long now) {
        return eligible(s, mask) && free(s, now) && now >= s.ejectedUntilMicros;
    }

    /** Not waiting, and not passed over for a record that could not be read. */
    private static boolean free(SenderState s, long now) {
        return now >= s.notBeforeMicros && now >= s.unreadUntilMicros;
    }

    private double score(SenderState s, long now) {
        SenderState.View v = s.view;
        return s.score(now, s.pacedLimit(v, brakeFactor(now)));
    }

    /**
     * The sender that {@code key} maps to by rendezvous hashing over the eligible senders, when it is free now:
     * every process computes the same one, and adding a sender moves only the keys that now map to it. Ejected
     * senders are skipped, as pick skips them, unless every eligible sender is ejected.
     */
    private SenderState rendezvous(SenderState[] all, long mask, String key, long now) {
        boolean anyNotEjected = anyEligibleNotEjected(all, mask, now);
        long keyHash = SenderState.mix(key.hashCode());
        SenderState best = null;
        long bestWeight = Long.MIN_VALUE;
        for (SenderState s : all) {
            if (!eligible(s, mask) || (anyNotEjected && now < s.ejectedUntilMicros)) {
                continue;
            }
            long weight = SenderState.mix(keyHash ^ s.affinitySeed);
            // Ties (ids of the same String.hashCode weigh alike for every key) go by id, not by the order in which
            // this process added the senders: every process must pick the same one.
            if (best == null || weight > bestWeight || weight == bestWeight && s.id.compareTo(best.id) < 0) {
                best = s;
                bestWeight = weight;
            }
        }
        return best != null && free(best, now) ? best : null;
    }

    /** Whether a sender that may carry {@code mask} is not ejected at {@code now}: then ejected ones are skipped. */
    private static boolean anyEligibleNotEjected(SenderState[] all, long mask, long now) {
        for (SenderState s : all) {
            if (eligible(s, mask) && now >= s.ejectedUntilMicros) {
                return true;
            }
        }
        return false;
    }

    private SendDecision exhausted(SenderState[] all, long mask, OutboundMessage m, long now) {
        // The wait is the earliest time pick would choose a sender: an ejected one only counts while every eligible
        // sender is ejected, else once its ejection ends. An ejected sender free now must not make the wait zero.
        boolean anyNotEjected = anyEligibleNotEjected(all, mask, now);
        long earliest = Long.MAX_VALUE;
        // Whether every eligible sender is passed over for a record that could not be read: the storage's failure is
        // then why nothing can be sent, not busy senders.
        GuardStorageException unread = null;
        boolean allUnread = true;
        for (SenderState s : all) {
            if (eligible(s, mask)) {
                long from = anyNotEjected ? Math.max(now, s.ejectedUntilMicros) : now;
                long unreadUntil = s.unreadUntilMicros;
                GuardStorageException failure = s.unreadFailure;
                if (now < unreadUntil && failure != null) {
                    unread = failure;
                } else {
                    allUnread = false;
                }
                earliest = Math.min(earliest, Math.max(from, Math.max(s.notBeforeMicros, unreadUntil)));
            }
        }
        if (unread != null && allUnread) {
            return new SendDecision.Rejected(SendDecision.Reason.STORAGE_UNAVAILABLE, unread.getMessage());
        }
        if (earliest == Long.MAX_VALUE) {
            boolean none = m.tags().isEmpty();
            String needs = none ? "" : stagesNeeded(m);
            String detail = none
                    ? "every sender of pool '" + name + "' is blocked or retired"
                    : !needs.isEmpty() && carriedOnlyByColdSenders(all, m)
                            ? "no active sender of pool '" + name + "' that may carry " + tagSet(m)
                                    + " has reached the warm-up stage they need (" + needs + ")"
                            : "no active sender of pool '" + name + "' may carry " + m.tags();
            return rejected(SendDecision.Reason.NO_ELIGIBLE_SENDER, detail, now, none);
        }
        if (exhausted.compareAndSet(false, true)) {
            emit(PoolEvent.Type.POOL_EXHAUSTED, "", now, "every eligible sender is busy until " + instant(earliest));
        }
        // A sender free now that the attempts did not reach: delayed() asks for the shortest wait, never zero.
        return delayed(earliest, now, SendDecision.Reason.SENDERS_BUSY);
    }

    /**
     * Whether an active sender may carry every tag of {@code m}, none being eligible: what keeps them from it is then
     * the warm-up stage a tag needs ({@link Builder#tagNeedsWarmUpStage}), not their tags.
     */
    private static boolean carriedOnlyByColdSenders(SenderState[] all, OutboundMessage m) {
        Set<String> tags = tagSet(m);
        for (SenderState s : all) {
            SenderState.View v = s.view;
            if (v.status == SenderStatus.ACTIVE && !s.heldLocally && v.tags.containsAll(tags)) {
                return true;
            }
        }
        return false;
    }

    /** The warm-up stage each tag of {@code m} needs, such as {@code links from stage 1}. */
    private String stagesNeeded(OutboundMessage m) {
        List<String> needs = new ArrayList<>();
        for (String tag : tagSet(m)) {
            Integer stage = tagStages.get(tag);
            if (stage != null) {
                needs.add(tag + " from stage " + stage);
            }
        }
        return String.join(", ", needs);
    }

    /** The tags of {@code m}, each once, in the order the message gave them. */
    private static Set<String> tagSet(OutboundMessage m) {
        return new LinkedHashSet<>(Arrays.asList(m.tagArray()));
    }

    /** A rejection; one that leaves the pool without any sender for the message also marks the pool exhausted. */
    private SendDecision rejected(SendDecision.Reason reason, String detail, long now, boolean poolEmpty) {
        if (poolEmpty && exhausted.compareAndSet(false, true)) {
            emit(PoolEvent.Type.POOL_EXHAUSTED, "", now, detail);
        }
        return new SendDecision.Rejected(reason, detail);
    }

    /** A delay until {@code untilMicros}, at least {@link #MIN_DELAY_MICROS} from {@code now}. */
    private static SendDecision delayed(long untilMicros, long now, SendDecision.Reason reason) {
        long until = Math.max(untilMicros, Saturated.plus(now, MIN_DELAY_MICROS));
        return new SendDecision.Delayed(instant(until), Duration.of(until - now, ChronoUnit.MICROS), reason);
    }

    // ------------------------------------------------------------------------------------------------ feedback

    /**
     * The platform accepted a message sent through {@code sender} after {@code latency}: success for its health and
     * additive recovery of its pacing. A latency more than twice the moving average (and above 500 ms) counts as the
     * platform queueing: multiplicative back-off instead, the pacing times 0.8 (gentler than a pushback's {@code
     * backoff} of {@link Builder#aimd}). Local; no storage call.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown or {@code latency} is null or negative
     */
    public void delivered(String sender, Duration latency) {
        SenderState s = state(sender);
        long micros = nonNegativeMicros("latency", latency);
        s.delivered(micros, ticker.epochMicros(), recoveryPerSecond, latencyBackoff);
    }

    /**
     * A send through {@code sender} failed for a reason other than pushback or a block (a timeout, a 5xx): failure
     * for its health; {@code ejectAfterFailures} failures in a row eject it from routing for a while, unless that
     * would leave too few senders. Local; no storage call.
     *
     * <p>Report only what the sender is to blame for. An error about the message or its recipient (Telegram's 400
     * "chat not found", a malformed request) would fail on any sender: reported here, a run of stale chat ids in a
     * broadcast ejects a healthy sender and holds its warm-up stage. Leave such a send unreported (a recipient who
     * blocked the bot is {@link #recipientBlocked}).
     *
     * @throws IllegalArgumentException if {@code sender} is unknown
     */
    public void failed(String sender, String cause) {
        SenderState s = state(sender);
        long now = ticker.epochMicros();
        int inRow;
        int resets;
        synchronized (s) {
            inRow = s.failed(hourOfWeek(now), now);
            resets = s.failureResets();
        }
        if (inRow >= ejectAfterFailures) {
            eject(s, now, cause, resets);
        }
    }

    /**
     * The platform pushed back on {@code sender} ({@code 429} with {@code retry_after}): the sender takes nothing for
     * exactly {@code retryAfter} (a part of a microsecond counts as a whole one), in every pool over the storage (a
     * gate; concurrent pushbacks merge by the later deadline), and its per-second pacing halves (AIMD). The message was
     * not sent: acquire again.
     *
     * <p>It counts against a warming sender's quality: a stage in which the sender's pushbacks reported to this pool,
     * per message this pool granted it in the stage, are more than {@link Builder#maxWarmUpPushbackRate} does not
     * advance (the platform throttling a new sender is the sign to hold its allowance, not to raise it).
     *
     * <p>A {@code retry_after} of hours is honoured as given: the sender is cooling that long and traffic moves to
     * the others (Telegram answers long waits after abuse; shortening them would defy the platform). Zero only
     * counts the pushback.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown, or {@code retryAfter} is null, negative or 2^53
     *     microseconds or longer
     * @throws GuardStorageException if the storage fails (the gate then holds in this process only)
     */
    public void retryAfter(String sender, Duration retryAfter) {
        pushback(state(sender), null, retryAfter);
    }

    /**
     * The platform pushed back on {@code sender} because of {@code chat} (a busy group, too many messages to one
     * user): gates the sender and the chat for exactly {@code retryAfter} in every pool over the storage, as {@link
     * #retryAfter(String, Duration)} does for the sender alone.
     *
     * <p>Unlike that one, it does not count against a warming sender's quality ({@link
     * Builder#maxWarmUpPushbackRate}); it still paces the sender and counts in its stats and risk. A busy chat is the
     * chat's traffic, not the sender's standing: the chat's limits are shared by every sender of the pool, and the
     * platform would have pushed back on whichever sender carried the message, a warm one as much as a new one.
     * Counting it would hold a new sender back for how busy the chats it happened to be routed to were. Report a
     * pushback this way only when the platform's answer is about the chat; when in doubt, {@link
     * #retryAfter(String, Duration)}.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown, {@code chat} is empty, or {@code retryAfter} is
     *     null, negative or 2^53 microseconds or longer
     * @throws GuardStorageException if the storage fails
     */
    public void retryAfter(String sender, String chat, Duration retryAfter) {
        if (chat == null || chat.isEmpty()) {
            throw new IllegalArgumentException("chat must not be empty but was " + (chat == null ? "null" : "''"));
        }
        pushback(state(sender), chat, retryAfter);
    }

    private void pushback(SenderState s, String chat, Duration retryAfter) {
        long micros = nonNegativeMicros("retryAfter", retryAfter);
        if (retryAfter.getNano() % 1_000 != 0) {
            // Rounded up, never down: a part of a microsecond cut off would end the gate before the platform's deadline
            // (and a wait shorter than a microsecond would gate nothing).
            micros++;
        }
        long now = ticker.epochMicros();
        // A pushback that names a chat does not count against the sender's warm-up quality: see retryAfter(s, c, d).
        s.pushedBack(hourOfWeek(now), now, backoff, chat == null);
        if (micros == 0) {
            return;
        }
        long until = Saturated.plus(now, micros);
        // Gate this process first, so that a failing storage still leaves the sender gated here.
        s.gated(until);
        long inForce;
        try {
            // The deadline in force may be later than ours: another pool was pushed back for longer.
            inForce = storage.raiseGate(s.gateKey, until, now);
        } catch (RuntimeException e) {
            // The gate holds here only: so does the cooling that status() and the listeners are told of.
            startCooling(s, until, now, "retry after " + retryAfter + " (in this process only: the storage failed)");
            throw e;
        }
        s.waitUntil(inForce);
        startCooling(s, inForce, now, "retry after " + retryAfter);
        if (chat != null) {
            storage.raiseGate(new StateKey(chatGateScope, chat), until, now);
        }
    }

    /**
     * The recipient of {@code chat} blocked {@code sender} (Telegram's 403 "bot was blocked by the user", a WhatsApp
     * user who blocked the number): from now on no sender of the pool writes to {@code chat}, in any pool of this
     * name over the storage, until {@link #recipientUnblocked} says the recipient may be written to again (the user
     * wrote to the bot again, or unblocked it: Telegram's {@code my_chat_member} update). A person who blocked one of
     * a bot's accounts has said no to the bot, and another account of the same pool writing instead would get around
     * that choice: {@link #acquire} answers {@link SendDecision.Reason#RECIPIENT_BLOCKED} for the chat. The block also
     * counts in the sender's block rate, its risk and its warm-up quality; the sender keeps working for other chats.
     *
     * <p>And it brakes the whole pool, in this process: every sender's per-second limit slows by the brake's backoff,
     * recovering with time without recipient blocks ({@link Builder#recipientBlockBrake}), so that moving the traffic
     * to the senders that were blocked less does not keep a campaign that people block at full speed. The first
     * block of an episode emits {@link PoolEvent.Type#POOL_BRAKED}; none starts while the pool's fastest sender is
     * limited to one message per second, as nothing is left to slow.
     *
     * <p>A chat that is marked already changes nothing more: the reports of the other messages that were in flight to
     * the person when they blocked the bot (an album, a burst) are the same block, counted and braked once. Two
     * reports racing in two processes may both count.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown or {@code chat} is empty
     * @throws GuardStorageException if the storage fails: then nothing was recorded, counted or braked; report it
     *     again
     */
    public void recipientBlocked(String sender, String chat) {
        SenderState s = state(sender);
        StateKey key = recipientKey(chat);
        long now = ticker.epochMicros();
        if (storage.isMember(key, now)) {
            return;
        }
        storage.addMember(key, Long.MAX_VALUE, now);
        s.recipientBlocked(hourOfWeek(now), now);
        applyBrake(s, now);
    }

    /**
     * The pool-wide brake as its last change left it: the factor then, and when. Immutable, so that routing reads the
     * two together; the factor recovers from there with time ({@link #factorAt}) without being written.
     */
    private record Brake(double factor, long atMicros) {
        static final Brake RELEASED = new Brake(1.0, Long.MIN_VALUE);

        /** The factor at {@code nowMicros}: recovered by {@code recoveryPerSecond} per second since, at most one. */
        double factorAt(long nowMicros, double recoveryPerSecond) {
            if (factor >= 1) {
                return 1;
            }
            if (nowMicros <= atMicros) {
                return factor;
            }
            // In doubles: the difference of two longs could overflow; a rounding of the time cannot matter here.
            return Math.min(1, factor + recoveryPerSecond * (((double) nowMicros - atMicros) / 1e6));
        }
    }

    /** The brake's factor at {@code now}, in (0, 1]: applied to every sender's paced per-second limit. */
    private double brakeFactor(long now) {
        return brake.factorAt(now, brakeRecoveryPerSecond);
    }

    /**
     * Brakes the pool for a recipient block reported on {@code s}: the factor in force times the backoff, but never
     * below the factor at which the pool's fastest sender is down to one message per second, as a sender's own pacing
     * stops there: lower would slow nothing more, only delay the recovery.
     */
    private void applyBrake(SenderState s, long now) {
        long fastest = 1;
        for (SenderState o : senders) {
            fastest = Math.max(fastest, o.view.perSecond);
        }
        double floor = 1.0 / fastest;
        synchronized (brakeLock) {
            Brake b = brake;
            double factor = b.factorAt(now, brakeRecoveryPerSecond);
            if (b.factor() < 1 && factor >= 1) {
                // Recovered since the last block, though no acquire has seen it: that episode ended before this one.
                queueBrakeReleased(b, now);
            }
            double next = Math.min(factor, Math.max(floor, factor * brakeBackoff));
            if (next >= 1) {
                // The fastest sender sends one message per second, the floor of every limit: there is nothing to
                // slow, so no episode starts (a factor of one, kept, would tell the pool braked at every block and
                // never released).
                brake = Brake.RELEASED;
            } else {
                // Recovery counts from the latest block, also when the clock went back since.
                brake = new Brake(next, Math.max(now, b.atMicros()));
            }
            if (next < 1 && factor >= 1 && !listeners.isEmpty()) {
                brakeEvents.add(new PoolEvent(
                        PoolEvent.Type.POOL_BRAKED,
                        s.id,
                        instant(now),
                        String.format(
                                java.util.Locale.ROOT,
                                "a recipient blocked sender '%s': every sender's per-second limit at %.4f of its pace",
                                s.id,
                                next)));
            }
        }
        deliverBrakeEvents();
    }

    /** Ends the brake's episode once it has recovered fully; the next recipient block starts a new one. */
    private void releaseBrake(long now) {
        Brake b = brake;
        if (b.factor() >= 1 || b.factorAt(now, brakeRecoveryPerSecond) < 1) {
            return;
        }
        synchronized (brakeLock) {
            if (brake != b) {
                // A block since: its thread ended this episode if it had recovered, and the brake holds again.
                return;
            }
            brake = Brake.RELEASED;
            queueBrakeReleased(b, now);
        }
        deliverBrakeEvents();
    }

    private void queueBrakeReleased(Brake b, long now) {
        if (!listeners.isEmpty()) {
            brakeEvents.add(new PoolEvent(
                    PoolEvent.Type.POOL_BRAKE_RELEASED,
                    "",
                    instant(now),
                    "no recipient block since " + instant(b.atMicros()) + ": full speed again"));
        }
    }

    /**
     * The recipient of {@code chat}, reported by {@link #recipientBlocked}, may be written to again: it wrote to the
     * bot, or unblocked it. Answers whether the chat was marked.
     *
     * @throws IllegalArgumentException if {@code chat} is empty
     * @throws GuardStorageException if the storage fails
     */
    public boolean recipientUnblocked(String chat) {
        return storage.removeMember(recipientKey(chat));
    }

    /**
     * Whether the recipient of {@code chat} blocked a sender of the pool ({@link #recipientBlocked}) and has not been
     * reported unblocked since.
     *
     * @throws IllegalArgumentException if {@code chat} is empty
     * @throws GuardStorageException if the storage fails
     */
    public boolean isRecipientBlocked(String chat) {
        return storage.isMember(recipientKey(chat), ticker.epochMicros());
    }

    private StateKey recipientKey(String chat) {
        if (chat == null || chat.isEmpty()) {
            throw new IllegalArgumentException("chat must not be empty but was " + (chat == null ? "null" : "''"));
        }
        return new StateKey(recipientBlockedScope, chat);
    }

    /**
     * The platform blocked {@code sender}: it takes no more traffic in any pool over the storage (until set {@link
     * SenderStatus#ACTIVE} again), and a warming sender steps back one stage. Reports of a sender that is blocked (or
     * retired) already, such as those of the other messages it had in flight, change nothing more in the storage; its
     * stats (blocks, block rate, heat map, {@link #compare}) and {@link PoolEvent.Type#SENDER_BLOCKED} count a block
     * reported here once, until the sender is set active again, in this pool or another (a report here that finds
     * the record active again, before this pool has read it, is a new block).
     *
     * <p>A block reported while the sender's status is being set in this process ({@link #setStatus}) waits for that
     * change and comes after it: a block after an activation leaves the sender blocked, and counts as a new block.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown
     * @throws GuardStorageException if the storage fails (the block then holds in this process only, until the
     *     sender is set {@link SenderStatus#ACTIVE} here, or its record says that another pool set it active since
     *     (that pool blocked it and set it active again); another pool's end of its warm-up stage does not end it,
     *     nor does a {@code setStatus(ACTIVE)} elsewhere that finds the record active already and writes nothing)
     */
    public void blocked(String sender) {
        SenderState s = state(sender);
        s.statusLock.lock();
        try {
            block(s);
        } finally {
            s.statusLock.unlock();
            deliver(s);
        }
    }

    private void block(SenderState s) {
        long now = ticker.epochMicros();
        // A block made here that the storage has not recorded (its write failed): a report that records it is it.
        boolean unrecorded = s.holdUnconfirmed;
        boolean first = s.blocked(hourOfWeek(now), now);
        int[] stages = new int[2];
        boolean[] recorded = new boolean[1];
        holdWhileWriting(
                s,
                now,
                () -> updateRecord(s, now, r -> {
                    recorded[0] = false;
                    stages[0] = r.stage();
                    stages[1] = r.stage();
                    if (r.status() != SenderStatus.ACTIVE) {
                        // Blocked or retired already: the reports of the other messages in flight when the platform
                        // blocked it are the same block, which steps back once.
                        return null;
                    }
                    stages[1] =
                            s.config.warmUp() == null ? r.stage() : Math.max(0, Math.min(r.stage(), stageCount(s)) - 1);
                    recorded[0] = true;
                    return r.withStatus(SenderStatus.BLOCKED).withStage(stages[1], now);
                }));
        if (recorded[0] && !first && !unrecorded) {
            // A block reported here holds, and the storage recorded it, yet the record said active: another pool set
            // the sender active since, and this pool has not read it yet. Start afresh as that read would have, and
            // count a new block.
            s.reactivated();
            first = s.blocked(hourOfWeek(now), now);
        }
        if (first || recorded[0]) {
            // Once per block: the first report here, or the one that got it into the storage after a failed one.
            queue(s, PoolEvent.Type.SENDER_BLOCKED, now, "blocked by the platform");
        }
        if (s.config.warmUp() != null && stages[1] < stages[0]) {
            queue(s, PoolEvent.Type.WARM_UP_STEPPED_BACK, now, "stage " + stages[0] + " -> " + stages[1]);
        }
    }

    // ------------------------------------------------------------------------------------------------ operations

    /**
     * Sets the status of {@code sender} in every pool over the storage: {@link SenderStatus#BLOCKED} and {@link
     * SenderStatus#RETIRED} stop its traffic at once; {@link SenderStatus#ACTIVE} lets it take traffic again after a
     * short re-entry gate of one sync interval and a microsecond (an {@link #acquire} meanwhile answers {@link
     * SendDecision.Delayed} until then), so that every pool has re-read its warm-up stage first. A sender set
     * active again starts afresh in the routing of every pool that held it (this one at once, the others at their
     * sync): the health and risk of a new sender, whose next delivery measures its latency for routing again (its
     * stats keep the moving average); its stepped-back warm-up stage, not its score, is what holds it back.
     *
     * <p>Setting the status a sender has already changes nothing and emits no {@link PoolEvent.Type#STATUS_CHANGED}:
     * an active sender (cooling included) set {@link SenderStatus#ACTIVE} keeps its gates, ejection, health and
     * failures in a row and gets no re-entry gate, unless a block holds it in this process or in the storage while
     * its record says active (a block whose record write failed); that block ends as above.
     *
     * <p>A status set while a block of the sender is being reported in this process ({@link #blocked}) waits for it
     * and comes after it, and the reverse: an activation after a block leaves the sender active and the block counted
     * once; the listeners get the events in that order. Failures reported while an activation is under way count
     * before it: while the sender is held in this process (a hold lasts until the activation's end) they eject
     * nothing, and the activation clears them.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown or {@code status} is {@link SenderStatus#COOLING}
     *     (which is derived from gates)
     * @throws GuardStorageException if the storage fails
     */
    public void setStatus(String sender, SenderStatus status) {
        apply(List.of(state(sender)), status);
    }

    /**
     * Sets the status of every sender in {@code group}, as {@link #setStatus} does for one: the members that have the
     * status already are left as they are, so re-activating a group does not pause its healthy members.
     *
     * @return how many senders the group holds
     * @throws IllegalArgumentException if {@code group} is null or holds no sender, or {@code status} is {@link
     *     SenderStatus#COOLING}
     * @throws GuardStorageException if the storage fails
     */
    public int setGroupStatus(String group, SenderStatus status) {
        List<SenderState> members = group(group);
        apply(members, status);
        return members.size();
    }

    private void apply(List<SenderState> targets, SenderStatus status) {
        if (status == null || status == SenderStatus.COOLING) {
            throw new IllegalArgumentException("status must be ACTIVE, BLOCKED or RETIRED but was " + status);
        }
        for (SenderState s : targets) {
            s.statusLock.lock();
            try {
                apply(s, status);
            } finally {
                s.statusLock.unlock();
                deliver(s);
            }
        }
    }

    /** Sets the status of {@code s}, holding its status lock. */
    private void apply(SenderState s, SenderStatus status) {
        long now = ticker.epochMicros();
        if (status == SenderStatus.ACTIVE) {
            s.reactivating = true;
            try {
                activate(s, now);
            } finally {
                s.reactivating = false;
            }
            return;
        }
        boolean[] written = new boolean[1];
        holdWhileWriting(
                s,
                now,
                () -> updateRecord(s, now, r -> {
                    written[0] = r.status() != status;
                    return written[0] ? r.withStatus(status) : null;
                }));
        if (written[0]) { // else the status it has already: the hold above only confirms it
            queue(s, PoolEvent.Type.STATUS_CHANGED, now, "status " + status);
        }
    }

    /**
     * Holds {@code s} here and in the storage (unconfirmed until its record says so), then runs {@code write}, the
     * record's write, marked in progress meanwhile ({@link SenderState#holding}).
     */
    private void holdWhileWriting(SenderState s, long now, Runnable write) {
        s.holding = true;
        try {
            s.holdSinceMicros = now;
            s.holdUnconfirmed = true;
            s.heldLocally = true;
            storage.addMember(s.heldKey, Long.MAX_VALUE, now);
            write.run();
        } finally {
            s.holding = false;
        }
    }

    /** Sets {@code s} active, holding its status lock, with {@link SenderState#reactivating} set. */
    private void activate(SenderState s, long now) {
        // Record first, gate next, membership last: no pool can route to it before its record says ACTIVE, and none
        // can send on a stale warm-up stage before re-reading it (the gate outlasts a sync). Re-activation restarts
        // the stage's clock: the time blocked is no proof of quality.
        boolean[] written = new boolean[1];
        updateRecord(s, now, r -> {
            written[0] = r.status() != SenderStatus.ACTIVE;
            return written[0] ? r.activated(now) : null;
        });
        if (!written[0] && !s.heldLocally && !storage.isMember(s.heldKey, now)) {
            // Active already, and held neither here nor in the storage: nothing to re-activate. Its gates, ejection,
            // health and failures in a row stay as they are, and its group's healthy members are not paused behind a
            // re-entry gate.
            return;
        }
        long until = Saturated.plus(now, syncIntervalMicros + 1);
        // Merged: a sender that was only cooling keeps a longer retry_after, in force or held here alone.
        s.waitUntil(storage.raiseGate(s.gateKey, until, now));
        storage.removeMember(s.heldKey);
        // The local hold ends here, not when the record written above was installed: in one step with the end of the
        // ejection and of the failures in a row (and the start of the stage the record began), under the monitor an
        // ejection and the reports take, so that the failures reported meanwhile (the messages it had in flight)
        // count before the activation, while it was held, and neither eject it nor weigh on the new stage, and an
        // ejection after this step stands, its event after this one.
        synchronized (s) {
            s.holdUnconfirmed = false;
            s.release();
            s.ejectedUntilMicros = 0;
            s.resetFailures();
            if (written[0]) {
                s.newStage();
            }
            queue(s, PoolEvent.Type.STATUS_CHANGED, now, "status " + SenderStatus.ACTIVE);
        }
    }

    /**
     * Sets the per-second and per-day limits of every sender in {@code group}, in every pool over the storage (each
     * pool applies them at its next sync). Quotas already used still count: the storage keeps the counts and only
     * the limits change.
     *
     * @param perSecond messages per second per sender
     * @param perDay messages per moving 24 hours per sender, or zero for the configured value
     * @return how many senders the group holds
     * @throws IllegalArgumentException if {@code group} is null or holds no sender, {@code perSecond} is not
     *     positive, {@code perDay} is negative, or either is 2^53 or more
     * @throws GuardStorageException if the storage fails
     */
    public int setGroupLimits(String group, long perSecond, long perDay) {
        Sender.checkCount("perSecond", perSecond);
        Sender.checkCountOrZero("perDay", perDay);
        List<SenderState> members = group(group);
        long now = ticker.epochMicros();
        for (SenderState s : members) {
            updateRecord(s, now, r -> r.withLimits(perSecond, perDay));
        }
        return members.size();
    }

    /**
     * Lets every sender in {@code group} carry {@code tag}, in every pool over the storage.
     *
     * @return how many senders the group holds
     * @throws IllegalArgumentException if {@code group} is null or holds no sender, the tag is malformed, or the
     *     pool would hold more than 64 distinct tags
     * @throws GuardStorageException if the storage fails
     */
    public int addGroupTag(String group, String tag) {
        Sender.checkTag(tag);
        List<SenderState> members = group(group);
        registerTag(tag);
        long now = ticker.epochMicros();
        for (SenderState s : members) {
            updateRecord(s, now, r -> {
                Set<String> tags = new LinkedHashSet<>(SenderState.tags(s.config, r));
                return tags.add(tag) ? r.withTags(tags) : null;
            });
        }
        return members.size();
    }

    /**
     * Stops every sender in {@code group} from carrying {@code tag}, in every pool over the storage.
     *
     * @return how many senders the group holds
     * @throws IllegalArgumentException if {@code group} is null or holds no sender, or the tag is malformed
     * @throws GuardStorageException if the storage fails
     */
    public int removeGroupTag(String group, String tag) {
        Sender.checkTag(tag);
        List<SenderState> members = group(group);
        long now = ticker.epochMicros();
        for (SenderState s : members) {
            updateRecord(s, now, r -> {
                Set<String> tags = new LinkedHashSet<>(SenderState.tags(s.config, r));
                return tags.remove(tag) ? r.withTags(tags) : null;
            });
        }
        return members.size();
    }

    /**
     * The status of {@code sender} now: {@link SenderStatus#COOLING} while a gate this pool knows of holds it.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown
     */
    public SenderStatus status(String sender) {
        return status(state(sender), ticker.epochMicros());
    }

    private static SenderStatus status(SenderState s, long now) {
        SenderStatus stored = s.view.status;
        if (stored == SenderStatus.ACTIVE && s.heldLocally) {
            return SenderStatus.BLOCKED;
        }
        return stored == SenderStatus.ACTIVE && now < s.coolingUntilMicros ? SenderStatus.COOLING : stored;
    }

    /**
     * The warm-up stage of {@code sender} as last read from the storage, or -1 when it has no schedule.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown
     */
    public int warmUpStage(String sender) {
        SenderState s = state(sender);
        return s.config.warmUp() == null ? -1 : s.view.stage;
    }

    /**
     * The messages {@code sender} may send per warm-up window now, or {@link Long#MAX_VALUE} when it is warm.
     *
     * @throws IllegalArgumentException if {@code sender} is unknown
     */
    public long allowance(String sender) {
        return state(sender).view.allowance;
    }

    /**
     * Re-reads every sender's record from the storage now, ends the local hold of a sender that the storage no longer
     * holds, and advances or holds warming senders whose stage has ended; but for a sender whose status another thread
     * is changing right then: the next sync ends its hold, and its stage if it is still active. It also tells the
     * listeners of the gates that have passed ({@link PoolEvent.Type#COOLING_ENDED}). {@link #acquire} does this on its
     * own every {@code syncInterval}, and logs (SLF4J, warning) each sender it could not sync.
     *
     * <p>A sender whose record cannot be read or decoded does not stop the others: every sender is tried, and the
     * failures are thrown together afterwards.
     *
     * @throws GuardStorageException if the storage fails for one sender or more: the message names them, the first
     *     failure is the cause and the others are suppressed
     */
    public void sync() {
        long now = ticker.epochMicros();
        nextSyncMicros = Saturated.plus(now, syncIntervalMicros);
        Map<String, GuardStorageException> failures = syncEach(now);
        if (failures.isEmpty()) {
            return;
        }
        Iterator<GuardStorageException> each = failures.values().iterator();
        GuardStorageException first = each.next();
        String ids = failures.size() == 1
                ? "sender '" + failures.keySet().iterator().next() + "'"
                : "senders '" + String.join("', '", failures.keySet()) + "'";
        GuardStorageException e = new GuardStorageException(
                "route",
                "sync",
                "pool '" + name + "' could not read " + ids + " (" + failures.size() + " of " + senders.length
                        + " senders): " + first.getMessage(),
                first);
        each.forEachRemaining(e::addSuppressed);
        throw e;
    }

    private void sync(long now) {
        if (!syncing.compareAndSet(false, true)) {
            return;
        }
        try {
            if (now < nextSyncMicros) {
                return;
            }
            nextSyncMicros = Saturated.plus(now, syncIntervalMicros);
            syncEach(now)
                    .forEach((id, e) -> LOG.warn(
                            "pool '{}' could not sync sender '{}' (the others were synced): {}",
                            name,
                            id,
                            e.getMessage()));
        } finally {
            syncing.set(false);
        }
    }

    /**
     * Syncs every sender, going on past those the storage fails for (a bad record, a key whose shard is down): one
     * such sender must not leave the others on records an interval old. Answers the failures by sender id, in the
     * pool's order.
     */
    private Map<String, GuardStorageException> syncEach(long now) {
        Map<String, GuardStorageException> failures = new LinkedHashMap<>();
        for (SenderState s : senders) {
            // First: a gate that passed is known here without the storage, and it passed before the sync that found
            // it ends a stage.
            endCooling(s, now);
            try {
                refresh(s, now);
                probeHeld(s, now);
                advance(s, now);
            } catch (GuardStorageException e) {
                failures.put(s.id, e);
            }
        }
        return failures;
    }

    /**
     * Reads the record of {@code s}, which an attempt found held in the storage, and ends the mark that the attempt
     * set if the storage no longer holds it: the sender may have been set active since the storage answered, in this
     * process (whose activation ended the hold before this mark was set) or in another.
     */
    private void readWhyHeld(SenderState s, long now) {
        try {
            refresh(s, now);
            probeHeld(s, now);
        } catch (GuardStorageException e) {
            LOG.warn("pool '{}' could not read sender '{}': {}", name, s.id, e.getMessage());
        }
    }

    /** Reads the record of {@code s} (creating it when absent) and rebuilds its view. */
    private void refresh(SenderState s, long now) {
        long seen = s.installs;
        StoredRecord stored = read(s, now);
        install(s, stored.record(), stored.version(), seen, now);
    }

    /** A sender's record as read from the storage, at its version. */
    private record StoredRecord(SenderRecord record, long version) {}

    /** Reads the record of {@code s}, creating it when absent; changes nothing in the pool. */
    private StoredRecord read(SenderState s, long now) {
        Optional<VersionedRecord> stored = storage.getRecord(s.recordKey);
        SenderRecord record;
        long version;
        if (stored.isPresent()) {
            record = SenderRecord.decode(s.id, stored.get().value());
            version = stored.get().version();
        } else {
            record = SenderRecord.initial(now);
            version = storage.putRecord(s.recordKey, record.encode(), 0);
            if (version < 0) {
                // Another process created the record first. Gone again before this read (forgotten, or expired in a
                // storage that expires records) it is a failure of the storage, as a read that failed would be: the
                // next read creates it.
                VersionedRecord written = storage.getRecord(s.recordKey)
                        .orElseThrow(() -> new GuardStorageException(
                                "route",
                                "getRecord",
                                "the record of sender '" + s.id + "' was created elsewhere and was gone when read",
                                null));
                record = SenderRecord.decode(s.id, written.value());
                version = written.version();
            }
        }
        return new StoredRecord(record, version);
    }

    /**
     * Installs the view of {@code record} at {@code version}, read at {@code readAt} or later by a read that began
     * when {@code seen} views had been installed; unless it is older than the view in force. A read that another
     * thread of this process overtook (it wrote or read a later version and installed it while this one was under
     * way) must not undo what that thread installed: a block reported here would read as active, released with its
     * health started afresh, and a stepped-back warm-up stage as the stage before. A lower version read after the
     * view in force was installed is the storage's: it lost the record and began it again.
     */
    private void install(SenderState s, SenderRecord record, long version, long seen, long readAt) {
        SenderState.View next = view(s, record, version, readAt);
        synchronized (s.installLock) {
            SenderState.View old = s.view;
            if (version < old.version && seen < old.sequence) {
                return;
            }
            next.sequence = ++s.installs;
            s.view = next;
            // Read: no longer passed over for a record that could not be read.
            s.unreadUntilMicros = 0;
            installed(s, old, next, record);
        }
    }

    /** What follows the installation of {@code next} in place of {@code old}; under the install lock. */
    private static void installed(SenderState s, SenderState.View old, SenderState.View next, SenderRecord record) {
        if (old.stage != next.stage || old.stageStartMicros != next.stageStartMicros) {
            s.newStage();
        }
        if (old.perSecond != next.perSecond || old.perDay != next.perDay || old.allowance != next.allowance) {
            s.forgetWaitsFromOldLimits();
        }
        if (record.status() != SenderStatus.ACTIVE) {
            s.heldLocally = true;
            s.holdUnconfirmed = false; // the storage has it now
        } else if (s.holdUnconfirmed && !s.holding && record.activatedMicros() > s.holdSinceMicros) {
            // Set active after the hold that never reached the storage: another pool blocked it and set it active
            // since. Its activation mark, not the start of its stage, says so: another pool's end of a warm-up stage
            // begins a stage too, and is no activation. (Not while the hold is being written: the block, written
            // next, comes after any activation that the write finds.)
            s.holdUnconfirmed = false;
            release(s);
        } else if (old.status != SenderStatus.ACTIVE && !s.holdUnconfirmed) {
            release(s);
        }
    }

    /**
     * Ends the local hold of {@code s}, set active again, and starts its health and risk afresh if it was held: a
     * block left its score near zero, and a sender that routing avoids gets no feedback to raise it. Not while a
     * {@code setStatus(ACTIVE)} of this process is under way: that ends the hold itself, at its end.
     */
    private static void release(SenderState s) {
        if (!s.reactivating) {
            s.release();
        }
    }

    /**
     * Clears the local "held" mark of an active sender once the storage no longer holds it: the mark may come from
     * a batch that saw a block before this pool read the record, and the block may since have been lifted. A block
     * made here that the storage never recorded (it failed) stays: it holds in this process until set active.
     *
     * <p>Takes its turn with the changes of the sender's status (its status lock), but only tries: the storage's "not
     * held" may come before a block reported meanwhile, and ending the hold after that block's marks would undo it.
     * A sync or an attempt that finds a change under way leaves the mark to the next sync.
     */
    private void probeHeld(SenderState s, long now) {
        if (!s.heldLocally || s.holdUnconfirmed || s.view.status != SenderStatus.ACTIVE) {
            return;
        }
        if (!s.statusLock.tryLock()) {
            return;
        }
        try {
            if (s.heldLocally
                    && !s.holdUnconfirmed
                    && s.view.status == SenderStatus.ACTIVE
                    && !storage.isMember(s.heldKey, now)) {
                release(s);
            }
        } finally {
            s.statusLock.unlock();
        }
    }

    private SenderState.View view(SenderState s, SenderRecord r, long version, long readAt) {
        Sender c = s.config;
        long perSecond = r.perSecond() > 0 ? r.perSecond() : c.perSecond() > 0 ? c.perSecond() : preset.perSecond();
        long perDay = r.perDay() > 0 ? r.perDay() : c.perDay() > 0 ? c.perDay() : preset.perDay();
        Set<String> tags = SenderState.tags(c, r);
        WarmUpSchedule schedule = c.warmUp();
        int stage = r.stage();
        boolean warming = schedule != null && stage < schedule.stages();
        long mask = 0;
        Map<String, Integer> bits = tagBits;
        for (String tag : tags) {
            Integer bit = bits.get(tag);
            if (bit == null) {
                // A tag another process added at run time: learn it, unless the pool is full of tags.
                try {
                    registerTag(tag);
                    bits = tagBits;
                    bit = bits.get(tag);
                } catch (IllegalArgumentException e) {
                    LOG.warn("pool '{}' ignores tag '{}' of sender '{}': {}", name, tag, s.id, e.getMessage());
                }
            }
            Integer needs = tagStages.get(tag);
            if (bit != null && (!warming || needs == null || stage >= needs)) {
                mask |= 1L << bit;
            }
        }
        Step day = perDay == 0
                ? null
                : new Step(s.dayKey, new SlidingWindowCounter(perDay, Duration.ofHours(24), DAY_BUCKETS), 1);
        Step warm = null;
        long allowance = Long.MAX_VALUE;
        if (warming) {
            allowance = schedule.allowance(stage);
            warm = new Step(s.warmKey, new SlidingWindowCounter(allowance, schedule.window(), WARM_BUCKETS), 1);
        }
        return new SenderState.View(
                r.status(),
                stage,
                r.stageStartMicros(),
                perSecond,
                perDay,
                Set.copyOf(tags),
                mask,
                day,
                warm,
                allowance,
                version,
                readAt);
    }

    /** Ends the stage of a warming sender whose stage is over: the next stage if its quality held, else the same. */
    private void advance(SenderState s, long now) {
        WarmUpSchedule schedule = s.config.warmUp();
        SenderState.View v = s.view;
        // Held here too: a block whose write failed leaves the record active, and a blocked sender's stage must not
        // advance (its block steps it back).
        if (schedule == null || v.stage >= schedule.stages() || v.status != SenderStatus.ACTIVE || s.heldLocally) {
            return;
        }
        long length = micros(schedule.stageLength());
        if (now < Saturated.plus(v.stageStartMicros, length)) {
            return;
        }
        long sent = s.stageSent.get();
        if (sent < minStageSent(schedule, v.stage)) {
            // No evidence yet: rates over a handful of sends (or none) say nothing about quality. The stage runs
            // on until the sender has sent enough through this pool.
            return;
        }
        double failureRate = sent == 0 ? 0 : (double) s.stageFailed.get() / sent;
        double blockRate = sent == 0 ? 0 : (double) s.stageBlocked.get() / sent;
        double pushbackRate = sent == 0 ? 0 : (double) s.stagePushedBack.get() / sent;
        boolean quality = failureRate <= maxWarmUpFailureRate
                && blockRate <= maxWarmUpBlockRate
                && pushbackRate <= maxWarmUpPushbackRate;
        int stage = v.stage;
        long start = v.stageStartMicros;
        if (!s.statusLock.tryLock()) {
            // A change of its status is under way in another thread (a block, an operator's): this pool's next sync
            // ends the stage, if the change leaves it active. The routing thread that syncs does not wait for it.
            return;
        }
        try {
            boolean[] changed = new boolean[1];
            updateRecord(s, now, r -> {
                // Another pool ended this stage first, or the sender is held (in the storage, or here by a block
                // reported since the check above whose write failed).
                if (r.stage() != stage
                        || r.stageStartMicros() != start
                        || r.status() != SenderStatus.ACTIVE
                        || s.heldLocally) {
                    return null;
                }
                changed[0] = true;
                return r.withStage(quality ? stage + 1 : stage, now);
            });
            if (changed[0]) {
                String rates = String.format(
                        java.util.Locale.ROOT,
                        "failure rate %.4f, block rate %.4f, pushback rate %.4f over %d sent",
                        failureRate,
                        blockRate,
                        pushbackRate,
                        sent);
                queue(
                        s,
                        quality ? PoolEvent.Type.WARM_UP_ADVANCED : PoolEvent.Type.WARM_UP_HELD,
                        now,
                        quality
                                ? "stage " + stage + " -> " + (stage + 1) + ", " + rates
                                : "stage " + stage + " again, " + rates);
            }
        } finally {
            s.statusLock.unlock();
            deliver(s);
        }
    }

    /**
     * The messages a warming sender must have sent through this pool in a stage before the stage may end: the
     * stage's allowance, at most {@link #MIN_STAGE_SENT}.
     */
    static long minStageSent(WarmUpSchedule schedule, int stage) {
        return Math.min(schedule.allowance(stage), MIN_STAGE_SENT);
    }

    /**
     * Changes the record of {@code s} with {@code change} (null: no change) by compare-and-set, retrying on a
     * concurrent change, and installs the result locally.
     */
    private void updateRecord(SenderState s, long now, UnaryOperator<SenderRecord> change) {
        for (int attempt = 0; ; attempt++) {
            long seen = s.installs;
            Optional<VersionedRecord> stored = storage.getRecord(s.recordKey);
            SenderRecord current =
                    stored.map(r -> SenderRecord.decode(s.id, r.value())).orElseGet(() -> SenderRecord.initial(now));
            long version = stored.map(VersionedRecord::version).orElse(0L);
            SenderRecord next = change.apply(current);
            if (next == null) {
                install(s, current, version, seen, now);
                return;
            }
            long written = storage.putRecord(s.recordKey, next.encode(), version);
            if (written >= 0) {
                install(s, next, written, seen, now);
                return;
            }
            if (attempt == 100) {
                throw new GuardStorageException(
                        "route",
                        "putRecord",
                        "the record of sender '" + s.id + "' kept changing under 100 updates",
                        null);
            }
        }
    }

    /**
     * Ejects {@code s} for failures in a row counted when {@code resets} clearings of them had been made ({@link
     * SenderState#failureResets}).
     */
    private void eject(SenderState s, long now, String cause, int resets) {
        synchronized (lock) {
            // The sender's monitor too, which the end of its hold takes with the clearing of its failures in a row.
            synchronized (s) {
                if (now < s.ejectedUntilMicros
                        || s.view.status != SenderStatus.ACTIVE
                        || s.heldLocally
                        || s.failureResets() != resets) {
                    // Ejected already, held (blocked, retired), or set active again since the failures were counted:
                    // those of the messages it had in flight when it was held are no reason to eject it, nor to
                    // lengthen its ejections once it is set active again. (A delivery since does not undo them: the
                    // failures came first.)
                    return;
                }
                int active = 0;
                int alreadyEjected = 0;
                for (SenderState o : senders) {
                    if (o.view.status == SenderStatus.ACTIVE && !o.heldLocally) {
                        active++;
                        if (now < o.ejectedUntilMicros) {
                            alreadyEjected++;
                        }
                    }
                }
                int max = Math.min(active - 1, (int) Math.floor(active * maxEjectedFraction));
                if (alreadyEjected < max) {
                    s.ejections++;
                    s.ejectedUntilMicros = Saturated.plus(now, ejectionMicros * Math.min(s.ejections, 10));
                    s.resetFailures();
                    queue(
                            s,
                            PoolEvent.Type.SENDER_EJECTED,
                            now,
                            "failing in a row (" + cause + ") until " + instant(s.ejectedUntilMicros));
                }
            }
        }
        deliver(s);
    }

    private void startCooling(SenderState s, long until, long now, String why) {
        long previous;
        synchronized (s) {
            previous = s.coolingUntilMicros;
            if (until <= previous) {
                return;
            }
            s.coolingUntilMicros = until;
        }
        if (previous <= now) {
            emit(PoolEvent.Type.COOLING_STARTED, s.id, now, why + ", until " + instant(until));
        }
    }

    private void endCooling(SenderState s, long now) {
        long until = s.coolingUntilMicros;
        if (until == 0 || now < until) {
            return;
        }
        synchronized (s) {
            if (s.coolingUntilMicros != until) {
                return;
            }
            s.coolingUntilMicros = 0;
        }
        emit(PoolEvent.Type.COOLING_ENDED, s.id, now, "gate passed at " + instant(until));
    }

    // ------------------------------------------------------------------------------------------------ stats

    /** A snapshot of the stats per sender and per group. Not O(1): copies every counter. */
    public PoolStats stats() {
        long now = ticker.epochMicros();
        List<SenderStats> all = new ArrayList<>();
        for (SenderState s : senders) {
            all.add(s.stats(status(s, now), s.config.warmUp(), now));
        }
        return PoolStats.of(name, instant(now), brakeFactor(now), all);
    }

    /**
     * Tests whether A/B groups {@code groupA} and {@code groupB} differ in {@code metric}, from this process's
     * counters: a two-proportion z-test. A group with more events than grants (feedback for sends granted
     * elsewhere) counts each event as a send.
     *
     * @throws IllegalArgumentException if either group is null or has no sender, both are the same group, or {@code
     *     metric} is null
     */
    public GroupComparison compare(String groupA, String groupB, GroupComparison.Metric metric) {
        // Named as the parameters are, as GroupComparison.test names them: "group" alone does not say which.
        if (groupA == null) {
            throw new IllegalArgumentException("groupA must not be null");
        }
        if (groupB == null) {
            throw new IllegalArgumentException("groupB must not be null");
        }
        group(groupA);
        group(groupB);
        if (groupA.equals(groupB)) {
            // The same counters on both sides: always "no difference", which a typo would pass off as a finding.
            throw new IllegalArgumentException("groupB must differ from groupA but both were '" + groupA + "'");
        }
        if (metric == null) {
            throw new IllegalArgumentException("metric must not be null");
        }
        PoolStats stats = stats();
        GroupStats a = stats.group(groupA);
        GroupStats b = stats.group(groupB);
        long eventsA = a.events(metric);
        long eventsB = b.events(metric);
        // Feedback may arrive for sends this process did not grant (another process's, or before a restart): each
        // such event is a send too, counted per sender (GroupStats' trials), so the trials are never fewer than the
        // events, and one sender's failures do not hide in another's sends.
        return GroupComparison.test(groupA, groupB, metric, eventsA, a.trials(metric), eventsB, b.trials(metric));
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private SenderState state(String sender) {
        if (sender == null) {
            throw new IllegalArgumentException("sender must not be null");
        }
        SenderState s = byId.get(sender);
        if (s == null) {
            throw new IllegalArgumentException("unknown sender '" + sender + "' in pool '" + name + "'");
        }
        return s;
    }

    private List<SenderState> group(String group) {
        if (group == null) {
            throw new IllegalArgumentException("group must not be null");
        }
        List<SenderState> members = new ArrayList<>();
        for (SenderState s : senders) {
            if (s.config.group().equals(group)) {
                members.add(s);
            }
        }
        if (members.isEmpty()) {
            throw new IllegalArgumentException("unknown group '" + group + "' in pool '" + name + "'");
        }
        return members;
    }

    private int stageCount(SenderState s) {
        return s.config.warmUp().stages();
    }

    private void registerTag(String tag) {
        synchronized (lock) {
            if (tagBits.containsKey(tag)) {
                return;
            }
            if (tagBits.size() == MAX_TAGS) {
                throw tooManyTags(tag);
            }
            Map<String, Integer> next = new HashMap<>(tagBits);
            next.put(tag, tagBits.size());
            tagBits = Map.copyOf(next);
        }
    }

    /**
     * Throws, naming the first tag that does not fit, unless {@link #registerTag} can register every one of {@code
     * tags}; registers none. Under {@link #lock}, so that no other registration comes between this check and the
     * caller's.
     */
    private void checkRoomForTags(Set<String> tags) {
        Map<String, Integer> bits = tagBits;
        int size = bits.size();
        for (String tag : tags) {
            if (!bits.containsKey(tag)) {
                if (size == MAX_TAGS) {
                    throw tooManyTags(tag);
                }
                size++;
            }
        }
    }

    private IllegalArgumentException tooManyTags(String tag) {
        return new IllegalArgumentException(
                "pool '" + name + "' may hold at most " + MAX_TAGS + " distinct tags; '" + tag + "' is one too many");
    }

    /** Whether the pool knows every tag of {@code m}; tags are never forgotten, so a later mask sees them too. */
    private boolean knownTags(OutboundMessage m) {
        Map<String, Integer> bits = tagBits;
        for (String tag : m.tagArray()) {
            if (!bits.containsKey(tag)) {
                return false;
            }
        }
        return true;
    }

    /** The tag bits of {@code m}, whose tags {@link #knownTags} found known. */
    private long mask(OutboundMessage m) {
        Map<String, Integer> bits = tagBits;
        long mask = 0;
        for (String tag : m.tagArray()) {
            mask |= 1L << bits.get(tag);
        }
        return mask;
    }

    /** The hour of the week (Monday 00:00 is 0) in the stats zone; the epoch began on a Thursday. */
    int hourOfWeek(long micros) {
        long hours = Math.floorDiv(Math.floorDiv(micros, 1_000_000L) + zoneOffsetSeconds, 3600L);
        return (int) Math.floorMod(hours + 3 * 24, (long) HeatMap.CELLS);
    }

    /** Hands an event to the listeners at once: the pool's own events, and a sender's cooling. */
    private void emit(PoolEvent.Type type, String sender, long now, String detail) {
        if (!listeners.isEmpty()) {
            tell(new PoolEvent(type, sender, instant(now), detail));
        }
    }

    /**
     * Queues an event of {@code s} for {@link #deliver}: called where the change it tells of is made, under the lock
     * that orders that change with the others of the sender, so that the listeners get them in the same order.
     */
    private void queue(SenderState s, PoolEvent.Type type, long now, String detail) {
        if (!listeners.isEmpty()) {
            s.events.add(new PoolEvent(type, s.id, instant(now), detail));
        }
    }

    /**
     * Hands the queued events of {@code s} to the listeners, in their order, outside the pool's locks: one thread at
     * a time; a thread that finds another handing them over leaves its own to it (that thread looks again before it
     * stops, so none is left behind).
     */
    private void deliver(SenderState s) {
        deliver(s.events, s.delivering);
    }

    /** Hands the brake's queued events to the listeners, as {@link #deliver(SenderState)} does a sender's. */
    private void deliverBrakeEvents() {
        deliver(brakeEvents, deliveringBrakeEvents);
    }

    private void deliver(Queue<PoolEvent> events, AtomicBoolean delivering) {
        while (!events.isEmpty() && delivering.compareAndSet(false, true)) {
            try {
                for (PoolEvent e = events.poll(); e != null; e = events.poll()) {
                    tell(e);
                }
            } finally {
                delivering.set(false);
            }
        }
    }

    private void tell(PoolEvent event) {
        for (PoolListener l : listeners) {
            try {
                l.onEvent(event);
            } catch (Error e) {
                throw e;
            } catch (Throwable e) { // checked ones thrown undeclared too, and a bare Throwable: Kotlin may throw either
                Interrupts.keep(e);
                LOG.warn("listener of pool '{}' failed on {}", name, event, e);
            }
        }
    }

    static Instant instant(long micros) {
        return Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L), Math.floorMod(micros, 1_000_000L) * 1_000L);
    }

    static long micros(Duration d) {
        return Math.addExact(Math.multiplyExact(d.getSeconds(), 1_000_000L), d.getNano() / 1_000);
    }

    private static long nonNegativeMicros(String field, Duration d) {
        if (d == null) {
            throw new IllegalArgumentException(field + " must not be null");
        }
        if (d.isNegative()) {
            throw new IllegalArgumentException(field + " must not be negative but was " + d);
        }
        // Seconds first, so that micros() cannot overflow; then the whole value, the nanoseconds included.
        if (d.getSeconds() > MAX_MICROS / 1_000_000L || micros(d) > MAX_MICROS) {
            throw new IllegalArgumentException(field + " must be below 2^53 microseconds but was " + d);
        }
        return micros(d);
    }

    @Override
    public String toString() {
        return "SenderPool[" + name + ", " + preset.name() + ", " + senders.length + " senders]";
    }

    /** Builds a {@link SenderPool}; not thread-safe. Every setter fails at once on a bad value. */
    public static final class Builder {
        private final Storage storage;
        private Ticker ticker = Ticker.system();
        private String name = "default";
        private PlatformPreset preset = PlatformPreset.telegram();
        private final Map<String, Sender> sendersById = new LinkedHashMap<>();
        private final List<Sender> senders = new ArrayList<>();
        private final List<PoolListener> listeners = new ArrayList<>();
        private Duration syncInterval = Duration.ofSeconds(1);
        private int maxAttempts = 3;
        private double backoff = 0.5;
        private double recoveryPerSecond = 0.05;
        private double latencyBackoff = 0.8;
        private double brakeBackoff = 0.9;
        private double brakeRecoveryPerSecond = 0.05;
        private int ejectAfterFailures = 5;
        private Duration ejection = Duration.ofSeconds(30);
        private double maxEjectedFraction = 0.5;
        private double maxWarmUpFailureRate = 0.05;
        private double maxWarmUpBlockRate = 0.02;
        private double maxWarmUpPushbackRate = 0.01;
        private final Map<String, Integer> tagStages = new LinkedHashMap<>();
        private ZoneOffset zone = ZoneOffset.UTC;
        private RandomGenerator random;

        private Builder(Storage storage) {
            this.storage = storage;
        }

        /**
         * The pool's name (default {@code default}): pools of the same name over one storage share every limit,
         * gate and sender record; give unrelated pools different names.
         *
         * @throws IllegalArgumentException if {@code name} is null or empty
         */
        public Builder name(String name) {
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException("name must not be empty but was " + (name == null ? "null" : "''"));
            }
            this.name = name;
            return this;
        }

        /**
         * The clock (default {@link Ticker#system()}); tests pass a {@link dev.guard.ManualTicker}.
         *
         * @throws IllegalArgumentException if {@code ticker} is null
         */
        public Builder ticker(Ticker ticker) {
            if (ticker == null) {
                throw new IllegalArgumentException("ticker must not be null");
            }
            this.ticker = ticker;
            return this;
        }

        /**
         * The platform's limits (default {@link PlatformPreset#telegram()}).
         *
         * @throws IllegalArgumentException if {@code preset} is null
         */
        public Builder preset(PlatformPreset preset) {
            if (preset == null) {
                throw new IllegalArgumentException("preset must not be null");
            }
            this.preset = preset;
            return this;
        }

        /**
         * Adds a sender.
         *
         * @throws IllegalArgumentException if {@code sender} is null or its id is already added
         */
        public Builder sender(Sender sender) {
            if (sender == null) {
                throw new IllegalArgumentException("sender must not be null");
            }
            if (sendersById.putIfAbsent(sender.id(), sender) != null) {
                throw new IllegalArgumentException("sender '" + sender.id() + "' is already configured");
            }
            senders.add(sender);
            return this;
        }

        /**
         * Adds a listener of {@link PoolEvent}s.
         *
         * @throws IllegalArgumentException if {@code listener} is null
         */
        public Builder listener(PoolListener listener) {
            if (listener == null) {
                throw new IllegalArgumentException("listener must not be null");
            }
            listeners.add(listener);
            return this;
        }

        /**
         * How often the pool re-reads its senders' records (status, warm-up stage, limits set at run time) from the
         * storage (default 1 s). Changes made by other processes reach this pool within it, and no permit goes out on
         * a record read longer ago. Give every pool of one name the same interval: a sender set active again waits
         * behind a gate of one interval (and a microsecond) of the pool that set it, so that the others re-read its
         * warm-up stage first.
         *
         * @throws IllegalArgumentException if {@code interval} is shorter than a microsecond, not a whole number of
         *     them, or longer than one hour
         */
        public Builder syncInterval(Duration interval) {
            if (interval == null
                    || interval.isNegative()
                    || interval.isZero()
                    || interval.compareTo(Duration.ofHours(1)) > 0) {
                throw new IllegalArgumentException(
                        "syncInterval must be positive and at most one hour but was " + interval);
            }
            this.syncInterval = atLeastAMicrosecond("syncInterval", interval);
            return this;
        }

        /**
         * {@code value}, positive, unless it is shorter than a microsecond or not a whole number of them: the pool
         * counts time in microseconds, so it would count as zero, or cut the rest off, as the limits refuse to.
         */
        private static Duration atLeastAMicrosecond(String field, Duration value) {
            if (value.getSeconds() == 0 && value.getNano() < 1_000) {
                throw new IllegalArgumentException(field + " must be at least 1 microsecond but was " + value);
            }
            WholeMicros.check(field, value);
            return value;
        }

        /**
         * The most attempts one {@link SenderPool#acquire} makes (default 3), a storage call each: when a sender turns
         * out to be busy the pool tries another, up to this many. Reads of senders' records come on top (see {@link
         * SenderPool#acquire}); a sender passed over for its record is no attempt.
         *
         * @throws IllegalArgumentException if {@code maxAttempts} is not between 1 and 16
         */
        public Builder maxAttempts(int maxAttempts) {
            if (maxAttempts < 1 || maxAttempts > 16) {
                throw new IllegalArgumentException("maxAttempts must be between 1 and 16 but was " + maxAttempts);
            }
            this.maxAttempts = maxAttempts;
            return this;
        }

        /**
         * The AIMD pacing of a sender's per-second limit: multiplied by {@code backoff} on each pushback, and raised
         * by {@code recoveryPerSecond} (of the full limit) per second of successful sending, up to the full limit.
         * Defaults 0.5 and 0.05 (full speed again 10 s after one pushback).
         *
         * @throws IllegalArgumentException if {@code backoff} is not in (0, 1) or {@code recoveryPerSecond} not in
         *     (0, 1]
         */
        public Builder aimd(double backoff, double recoveryPerSecond) {
            if (!(backoff > 0 && backoff < 1)) {
                throw new IllegalArgumentException("backoff must be between 0 and 1 but was " + backoff);
            }
            if (!(recoveryPerSecond > 0 && recoveryPerSecond <= 1)) {
                throw new IllegalArgumentException(
                        "recoveryPerSecond must be above 0 and at most 1 but was " + recoveryPerSecond);
            }
            this.backoff = backoff;
            this.recoveryPerSecond = recoveryPerSecond;
            return this;
        }

        /**
         * The pool-wide brake of recipient blocks: each recipient block reported to the pool ({@link
         * SenderPool#recipientBlocked}, on any sender) multiplies a factor of the pool by {@code backoff}, and the
         * factor recovers by {@code recoveryPerSecond} per second without a recipient block, up to one. Every
         * sender's per-second limit is its paced limit ({@link #aimd}) times this factor, never below one message per
         * second; messages pinned to a sender or sticky to one are braked too. Defaults 0.9 and 0.05: one block takes
         * a tenth off the pool's per-second limits, full speed again 2 s later; a burst of blocks slows every sender
         * to one message per second, full speed again at most 20 s after the last block. Gentler than the per-sender
         * pacing's 0.5, as recipient blocks come to good bots too (a broadcast reaches some who no longer want it):
         * one bot with an ordinary block rate keeps about its speed, while a pool whose block rate is high, or that
         * spreads a campaign over many accounts, is slowed.
         * {@link PoolEvent.Type#POOL_BRAKED} and {@link PoolEvent.Type#POOL_BRAKE_RELEASED} tell when the pool starts
         * and stops being braked, and {@link PoolStats#brake()} shows the factor.
         *
         * <p>Why the whole pool: a block raises the blocked sender's risk, so routing moves the traffic to the other
         * senders. Without the brake, a campaign that makes many people block it would keep its full throughput by
         * spreading the blocks thin over its senders, each under the platform's per-account block-rate signals
         * (WhatsApp's quality rating per number, Telegram's per bot); Guard helps bots respect the platforms' limits,
         * never get around their abuse detection. Where a share {@code p} of the recipients blocks, the pool settles
         * at about {@code sqrt(recoveryPerSecond * full / (p * (1 - backoff)))} messages per second in all, where
         * {@code full} is its unbraked total (at most that): with the defaults, ten Telegram bots (300 per second) at
         * a block rate of 1% send about 120 per second and at 5% about 55, one bot (30 per second) at 5% about 17;
         * one bot at 1%, or ten at 0.1%, keep about their full speed. Adding senders adds throughput only as the
         * square root. Telegram answers "blocked by the user" for every chat that blocked
         * the bot at any time before, so the first broadcast to an old list is braked by these too; the pool writes
         * to those chats no more ({@link SendDecision.Reason#RECIPIENT_BLOCKED}), so later broadcasts are not.
         *
         * <p>There is no setting that turns the brake off (a {@code backoff} of 1): a pool that keeps its speed while
         * people block it is what the brake is for. Senders of unrelated bots (two businesses, two tenants) belong in
         * pools of different {@linkplain #name names}, each braked by its own recipients only.
         *
         * <p>Process-local, like the per-sender pacing: each process brakes on the recipient blocks reported to it,
         * so processes that share the traffic and its reports are each braked by their share of the blocks.
         *
         * @throws IllegalArgumentException if {@code backoff} is not in (0, 1) or {@code recoveryPerSecond} not in
         *     (0, 1]
         */
        public Builder recipientBlockBrake(double backoff, double recoveryPerSecond) {
            if (!(backoff > 0 && backoff < 1)) {
                throw new IllegalArgumentException(
                        "recipientBlockBrake backoff must be between 0 and 1 but was " + backoff);
            }
            if (!(recoveryPerSecond > 0 && recoveryPerSecond <= 1)) {
                throw new IllegalArgumentException(
                        "recipientBlockBrake recoveryPerSecond must be above 0 and at most 1 but was "
                                + recoveryPerSecond);
            }
            this.brakeBackoff = backoff;
            this.brakeRecoveryPerSecond = recoveryPerSecond;
            return this;
        }

        /**
         * Outlier ejection: a sender that fails {@code failuresInRow} times in a row leaves routing for {@code
         * duration} times the number of its ejections (at most 10 times), but never more than {@code maxFraction} of
         * the active senders and never the last one. Defaults 5, 30 s, 0.5.
         *
         * @throws IllegalArgumentException if {@code failuresInRow} is not positive, {@code duration} is shorter than a
         *     microsecond, not a whole number of them or longer than one day, or {@code maxFraction} is not in [0, 1]
         */
        public Builder ejection(int failuresInRow, Duration duration, double maxFraction) {
            if (failuresInRow <= 0) {
                throw new IllegalArgumentException("failuresInRow must be positive but was " + failuresInRow);
            }
            if (duration == null
                    || duration.isNegative()
                    || duration.isZero()
                    || duration.compareTo(Duration.ofDays(1)) > 0) {
                throw new IllegalArgumentException("duration must be positive and at most one day but was " + duration);
            }
            atLeastAMicrosecond("duration", duration);
            if (!(maxFraction >= 0 && maxFraction <= 1)) {
                throw new IllegalArgumentException("maxFraction must be between 0 and 1 but was " + maxFraction);
            }
            this.ejectAfterFailures = failuresInRow;
            this.ejection = duration;
            this.maxEjectedFraction = maxFraction;
            return this;
        }

        /**
         * The quality a warming sender must keep over a stage to advance: failures and blocks (platform and
         * recipients) per message sent at most these. Defaults 0.05 and 0.02. The platform's pushback counts too:
         * {@link #maxWarmUpPushbackRate}. A stage ends only once the sender has sent at least its allowance, or 20
         * messages if the allowance is larger, through the pool in it: an idle sender stays at its stage.
         *
         * @throws IllegalArgumentException if a rate is not in [0, 1]
         */
        public Builder warmUpQuality(double maxFailureRate, double maxBlockRate) {
            if (!(maxFailureRate >= 0 && maxFailureRate <= 1)) {
                throw new IllegalArgumentException("maxFailureRate must be between 0 and 1 but was " + maxFailureRate);
            }
            if (!(maxBlockRate >= 0 && maxBlockRate <= 1)) {
                throw new IllegalArgumentException("maxBlockRate must be between 0 and 1 but was " + maxBlockRate);
            }
            this.maxWarmUpFailureRate = maxFailureRate;
            this.maxWarmUpBlockRate = maxBlockRate;
            return this;
        }

        /**
         * The most pushback a warming sender may draw over a stage and still advance: the platform's pushbacks on the
         * sender ({@link SenderPool#retryAfter(String, Duration)}, {@link SendDecision.Granted#retryAfter}) per
         * message sent in the stage, counted as its failures and blocks are for {@link #warmUpQuality}: reported to
         * this pool, over the permits this pool granted the sender in the stage (pools of one name share the stage,
         * not these counts: the first of them to judge a stage that is over ends it for all, on what it was told). A
         * pushback that names a busy chat ({@link SenderPool#retryAfter(String, String, Duration)}) does not count.
         * Above the limit, the stage ends held.
         *
         * <p>Default 0.01. The pool keeps every sender within the limits the platform publishes and honours each
         * {@code retry_after}, so a sender pushed back all the same is one the platform allows less than those limits:
         * a sender in good standing draws next to none. One in a hundred forgives the odd 429 of a platform's bad
         * minute over a busy stage, while a stage of the fewest sends that may end it (20) holds on a single one.
         * Stricter than the block rate's 0.02, which counts recipients' blocks, and those come at some rate even to a
         * good sender. Zero holds a stage on any pushback.
         *
         * @throws IllegalArgumentException if {@code maxWarmUpPushbackRate} is not in [0, 1] (NaN included)
         */
        public Builder maxWarmUpPushbackRate(double maxWarmUpPushbackRate) {
            if (!(maxWarmUpPushbackRate >= 0 && maxWarmUpPushbackRate <= 1)) {
                throw new IllegalArgumentException(
                        "maxWarmUpPushbackRate must be between 0 and 1 but was " + maxWarmUpPushbackRate);
            }
            this.maxWarmUpPushbackRate = maxWarmUpPushbackRate;
            return this;
        }

        /**
         * Content with {@code tag} (such as {@code links}) goes only to senders that carry the tag and, if they are
         * warming up, have reached {@code stage}.
         *
         * @throws IllegalArgumentException if the tag is malformed or {@code stage} is negative
         */
        public Builder tagNeedsWarmUpStage(String tag, int stage) {
            Sender.checkTag(tag);
            if (stage < 0) {
                throw new IllegalArgumentException("stage must not be negative but was " + stage);
            }
            tagStages.put(tag, stage);
            return this;
        }

        /**
         * The zone of the stats' hour-of-week heat maps (default UTC).
         *
         * @throws IllegalArgumentException if {@code zone} is null
         */
        public Builder statsZone(ZoneOffset zone) {
            if (zone == null) {
                throw new IllegalArgumentException("zone must not be null");
            }
            this.zone = zone;
            return this;
        }

        /**
         * The random source of the power-of-two choices (default {@link ThreadLocalRandom}); tests pass a seeded one
         * for repeatable runs. Must be thread-safe if the pool is used by several threads.
         *
         * @throws IllegalArgumentException if {@code random} is null
         */
        public Builder random(RandomGenerator random) {
            if (random == null) {
                throw new IllegalArgumentException("random must not be null");
            }
            this.random = random;
            return this;
        }

        /**
         * The pool: reads (or creates) every sender's record in the storage.
         *
         * @throws GuardStorageException if the storage fails
         */
        public SenderPool build() {
            return new SenderPool(this);
        }
    }
}
