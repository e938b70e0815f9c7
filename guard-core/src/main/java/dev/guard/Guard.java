package dev.guard;

import dev.guard.internal.Breaker;
import dev.guard.internal.Fingerprint;
import dev.guard.internal.Interrupts;
import dev.guard.limit.Cooldown;
import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.FixedWindow;
import dev.guard.limit.Gate;
import dev.guard.limit.LimitSpec;
import dev.guard.limit.Membership;
import dev.guard.limit.Outcome;
import dev.guard.limit.SlidingWindowCounter;
import dev.guard.limit.SlidingWindowLog;
import dev.guard.limit.TokenBucket;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchBuffer;
import dev.guard.spi.BatchResult;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A chain of filters around a bot's message handler: one message in, one {@link Decision} out.
 *
 * <pre>{@code
 * Guard<Update> guard = Guard.<Update>builder()
 *         .storage(MemoryStorage.create())
 *         .userId(Update::userId)
 *         .chatId(Update::chatId)
 *         .blocklist()
 *         .duplicates(Duration.ofSeconds(10), Update::text)
 *         .throttle("per-chat", KeyBy.CHAT, 20, Duration.ofMinutes(1))
 *         .tokenBucket("per-user", KeyBy.USER, 5, 1, Duration.ofSeconds(1))
 *         .build();
 * GuardedHandler<Update> handler = guard.wrap(bot::onUpdate);
 * }</pre>
 *
 * <p><b>The decision path.</b> The builder compiles the filters once. Per message: the local {@link Filter}s run in
 * the order they were added; then every stateful filter (blocklist, registration, duplicates, throttles, buckets,
 * windows, cooldowns, gates) becomes one step of a single {@link Batch} that the storage evaluates atomically in one
 * call (one round trip on Redis and, mostly, on PostgreSQL: see each storage); then the listeners run. For a guard
 * whose one stateful filter is keyed by the user, the chat or nothing (no content, no custom key, no tenant), {@link
 * #check} makes that call a {@link Storage#acquire} without a batch, with the same decision.
 * <b>All-or-nothing:</b> when any step rejects, no step consumes: a duplicate does not eat the user's token bucket, a
 * throttled message is not remembered as seen.
 * When several steps reject, the decision names the first in the order the filters were added and the longest
 * retry-after among them.
 *
 * <p><b>Keys.</b> Each stateful filter keeps its state per user, chat, user in chat, globally ({@link KeyBy}) or per a
 * custom key, optionally under a tenant prefix; {@link #scope(String)} gives a handler its own limits. A message that
 * lacks an id a filter needs is handled by the {@link MissingKeyPolicy}: by default that filter does not apply; with
 * {@link MissingKeyPolicy#REJECT} the message is rejected before any storage call, by the first such filter.
 *
 * <p><b>Failures.</b> The storage's failures never reach the caller: the {@link FailurePolicy} decides (fail open by
 * default), and a breaker stops calling a storage that keeps failing, so a dead Redis costs nothing per message,
 * until a probe finds it back.
 *
 * <p><b>The bot's code.</b> What a filter, an extractor or a listener throws, but an {@link Error}, is logged and
 * handled as their Javadoc says (a filter that throws rejects, a listener's is ignored); an {@link Error} reaches the
 * caller. An {@link InterruptedException} thrown undeclared (by Kotlin code), by them or by a storage, leaves the
 * thread interrupted.
 *
 * <p>Immutable and thread-safe; build one per bot and share it. Each thread that checks messages keeps a small buffer
 * for their steps, and, once it has formatted 64 numeric ids (32 messages with a user and a chat id), the subjects of
 * up to 1,024 numeric user and chat ids it met
 * last (arrays of about 17 KB, and the strings, about 56 bytes each for a ten-digit id), so that a user's next message
 * formats no string; all guards share them. A thread that met a storage failure (or an open breaker) of a guard with
 * one global limit and nothing else to run keeps the time of it, a {@code long}.
 *
 * @param <M> the bot's update type
 */
public final class Guard<M> {
    private static final Logger LOG = LoggerFactory.getLogger(Guard.class);
    private static final String STORAGE_FILTER = "storage";

    private final Plan<M> plan;
    /** The handler scopes of this view, outermost first ("" for the guard the builder built). */
    private final String handlerPrefix;
    /** Per stateful filter, its keys' scope in this view (handler prefix applied), built once. */
    private final String[] scopes;
    /** The key of the one stateful filter of a {@link Plan#single} plan when it is global, built once; else null. */
    private final StateKey globalKey;
    /**
     * {@link #globalKey} when nothing but that filter's storage call makes the decision (no local filter, nobody
     * hears of decisions, no id to read from the message): {@link #check} then decides in {@link #plainOutcome}; else
     * null.
     */
    private final StateKey plainKey;
    /**
     * With a tenant extractor, the scopes of the steps under the tenants met last, shared by the views of one handler
     * scope (see {@link Plan#tenantScopes}); else null, and null too for a view of a handler scope beyond those kept.
     */
    private final TenantScopes tenantScopes;
    /** The default tenant's: no prefix, {@link #scopes}; null without a tenant extractor. */
    private final TenantScopes.Tenant noTenant;

    private Guard(Plan<M> plan, String handlerPrefix) {
        this.plan = plan;
        this.handlerPrefix = handlerPrefix;
        this.scopes = new String[plan.statefuls.length];
        for (int i = 0; i < scopes.length; i++) {
            Stateful<M> f = plan.statefuls[i];
            scopes[i] = f.scoped ? handlerPrefix + f.base : f.base;
        }
        this.tenantScopes = plan.tenant == null ? null : plan.tenantScopes(handlerPrefix, scopes);
        this.noTenant = plan.tenant == null ? null : new TenantScopes.Tenant("", "", scopes);
        this.globalKey = plan.single && plan.statefuls[0].keyBy == KeyBy.GLOBAL
                ? new StateKey(scopes[0], StateKey.GLOBAL)
                : null;
        // Not with an id extractor: the chain's path reads the ids of every message, and what the bot's extractor
        // throws (an Error) or does (counts its calls) must not depend on the path (see checkSingle).
        this.plainKey = globalKey != null
                        && plan.locals.length == 0
                        && !plan.observed
                        && plan.userId == null
                        && plan.chatId == null
                ? globalKey
                : null;
    }

    /** A builder for a guard over messages of type {@code M}. */
    public static <M> Builder<M> builder() {
        return new Builder<>();
    }

    /**
     * Decides whether {@code message} may pass, and records it in every stateful filter when it does. Blocks for one
     * storage call (none when the chain has no stateful filter), plus one for the reject notice when a rejection has
     * one configured (and, with a {@link FailurePolicy#fallbackTo fallback}, one more to the fallback for a notice the
     * storage lets through, so that a notice sent never repeats within its window there either); never throws for a
     * storage failure.
     */
    public Decision check(M message) {
        // Kept this small so that a caller's compiled code takes it in whole: an allowed decision it only reads is then
        // never made. What does the work is a call that answers a number.
        long outcome = plainOutcome(message);
        return outcome >= 0 ? Decision.allowed(outcome) : checkOtherwise(message, outcome);
    }

    /**
     * Whether {@code message} may pass: {@link #check}'s {@link Decision#allowed()}, for a caller that needs no more
     * than yes or no (the reject listeners, the reject notice and the decision listeners still hear of the decision,
     * with the whole {@code Decision}). The same storage calls, failure policy and breaker as {@code check}; a guard
     * with one global limit, no local filter, no id extractor, no tenant and nobody listening makes no object of its
     * own for a message the storage admits (a rejection, or a decision of the failure policy, is still made as a
     * {@code Decision}).
     */
    public boolean allows(M message) {
        long outcome = plainOutcome(message);
        return outcome >= 0 || checkOtherwise(message, outcome).allowed();
    }

    /**
     * For a guard with a {@link #plainKey}: the one storage call's outcome ({@link Long#MAX_VALUE} for an admission by
     * a limit that is not a quota; {@link Outcome#NEVER} for a rejection whose wait reaches the end of time, as {@link
     * #retryAfter} reads it at this call's time), or {@link #DEGRADE} when the breaker keeps the storage out or the call
     * failed (the breaker told; the time kept in {@link #DEGRADED_AT}). {@link #DEGRADE} without a call (nor a look at
     * the clock) for a guard without one. The clock is read here only: {@link #checkOtherwise} needs no second look.
     */
    private long plainOutcome(M message) {
        Objects.requireNonNull(message, "message must not be null");
        StateKey key = plainKey;
        if (key == null) {
            return DEGRADE;
        }
        Plan<M> p = plan;
        long now = p.ticker.epochMicros();
        if (!p.breaker.closed() && !p.breaker.allows(now)) {
            return unadmitted(DEGRADE, now);
        }
        long outcome = acquireOne(key, now);
        if (outcome >= 0) {
            return p.statefuls[0].quota ? outcome : Long.MAX_VALUE;
        }
        return unadmitted(outcome, now);
    }

    /**
     * {@link #plainOutcome}'s answer for an {@code outcome} at {@code now} that does not admit the message, such that
     * {@link #checkOtherwise} decides as {@link #singleDecision} would at {@code now}, without reading the clock again.
     */
    private static long unadmitted(long outcome, long now) {
        if (outcome == DEGRADE) {
            DEGRADED_AT.get()[0] = now;
            return DEGRADE;
        }
        return endless(Outcome.retryAfterMicros(outcome), now) ? Outcome.NEVER : outcome;
    }

    /**
     * {@link #check}'s decision when {@link #plainOutcome} did not admit the message: its rejection, the failure
     * policy's decision at the time {@code plainOutcome} read, or for a guard without a {@link #plainKey} the whole
     * check.
     */
    private Decision checkOtherwise(M message, long outcome) {
        StateKey key = plainKey;
        if (key == null) {
            return plan.single ? checkSingle(message) : checkSteps(message);
        }
        if (outcome == DEGRADE) {
            return degrade(singleStep(key), DEGRADED_AT.get()[0]);
        }
        // A time of 0 reads only Outcome.NEVER's wait as endless: plainOutcome made every endless wait that.
        return decisionOf(plan.statefuls[0], outcome, 0);
    }

    /** {@link #check} of a chain: its stateful filters' steps in a buffer, evaluated in one storage call. */
    private Decision checkSteps(M message) {
        long start = plan.listeners.length == 0 ? 0 : System.nanoTime();
        long now = plan.ticker.epochMicros();
        Decision decision = decideLocally(message);
        if (decision != null) {
            finish(message, decision, null, null, now, start);
            return decision;
        }
        Steps steps = Steps.acquire(plan.statefuls.length);
        try {
            fill(steps, message);
            decision = steps.missing != null ? steps.missing : evaluate(steps, now);
            finish(message, decision, steps.noticeSubject, steps.noticeTenant, now, start);
        } finally {
            steps.release();
        }
        return decision;
    }

    /**
     * {@link #check} of a plan whose one stateful filter is keyed by the user, the chat or nothing ({@link
     * Plan#single}): the same decision, listeners and notice as {@link #checkSteps}, with one {@link
     * Storage#acquire} and no buffer. It reads the message's ids as {@link #fill} does, but formats only the
     * subjects that the key (or a notice) needs: none on a global limit without a reject notice, the user's too for a
     * {@linkplain Stateful#chatLimit chat's limit}, to tell its user's private chat.
     */
    private Decision checkSingle(M message) {
        Plan<M> p = plan;
        long start = p.listeners.length == 0 ? 0 : System.nanoTime();
        long now = p.ticker.epochMicros();
        Decision decision = p.locals.length == 0 ? null : decideLocally(message);
        if (decision != null) {
            if (p.observed) {
                finish(message, decision, null, null, now, start);
            }
            return decision;
        }
        // Both ids, the user's first, once each, whatever the filter is keyed by, as fill reads them: what the bot's
        // extractors and ids' toString() throw (an Error reaches the caller, an InterruptedException leaves the
        // thread interrupted) and how often they are called are the chain's. A subject is made only of an id that
        // the key or a notice needs.
        Object user = readId(p.userId, message);
        Object chat = readId(p.chatId, message);
        Stateful<M> f = p.statefuls[0];
        String subject = null;
        String noticeSubject = null;
        if (globalKey == null || p.notice != null) {
            // This thread's recent subjects, maybe in the steps of a check being filled that runs this one (from an
            // id extractor): read without noting the ids, which are not that check's message's.
            Steps recent = Steps.PER_THREAD.get();
            // The user's subject once made (for the key or to tell a private chat), for the notice too.
            String userSubject = null;
            if (globalKey == null) {
                if (f.keyBy == KeyBy.USER) {
                    subject = userSubject = subjectFor(recent, Subjects.USER, user, false);
                } else {
                    subject = subjectFor(recent, Subjects.CHAT, chat, false);
                    if (f.chatLimit && subject != null && user != null) {
                        // A private chat's limit is its user's, as fill keys it.
                        userSubject = subjectFor(recent, Subjects.USER, user, false);
                        if (Subjects.sameId(userSubject, subject)) {
                            subject = userSubject;
                        }
                    }
                }
            }
            if (p.notice != null) {
                // The user's, else the chat's, as fill finds it (none: noticeKey reads the ids again, as there).
                noticeSubject = user == null
                        ? f.keyBy == KeyBy.CHAT ? subject : subjectFor(recent, Subjects.CHAT, chat, false)
                        : userSubject != null ? userSubject : subjectFor(recent, Subjects.USER, user, false);
            }
        }
        decision = decideSingle(subject, now);
        if (p.observed) {
            finish(message, decision, noticeSubject, null, now, start);
        }
        return decision;
    }

    /**
     * The decision of {@link #checkSingle}'s one filter for the {@code subject} of its key (ignored when it is global;
     * null: the message has no such id), as {@link #fill} and {@link #evaluate} make it.
     */
    private Decision decideSingle(String subject, long now) {
        Plan<M> p = plan;
        StateKey key = globalKey;
        if (key == null) {
            if (subject == null) {
                return p.missingKeys == MissingKeyPolicy.REJECT
                        ? Decision.rejected(p.statefuls[0].name, Reason.MISSING_KEY, Decision.NEVER)
                        : Decision.allowed(Long.MAX_VALUE);
            }
            key = new StateKey(scopes[0], subject);
        }
        if (!p.breaker.allows(now)) {
            return degrade(singleStep(key), now);
        }
        return singleDecision(key, acquireOne(key, now), now);
    }

    /**
     * The decision of the one filter of a {@link Plan#single} plan at {@code key} from {@link #acquireOne}'s {@code
     * outcome}.
     */
    private Decision singleDecision(StateKey key, long outcome, long now) {
        return outcome == DEGRADE ? degrade(singleStep(key), now) : decisionOf(plan.statefuls[0], outcome, now);
    }

    /** {@link #acquireOne(StateKey, LimitSpec, long)} of the one filter of a {@link Plan#single} plan. */
    private long acquireOne(StateKey key, long now) {
        return acquireOne(key, plan.statefuls[0].spec, now);
    }

    /**
     * One permit of {@code spec} at {@code key}, the breaker letting the call through: one {@link Storage#acquire},
     * its outcome; {@link #DEGRADE} when it failed (the thread's interrupt kept, the breaker told), for the failure
     * policy to decide.
     */
    private long acquireOne(StateKey key, LimitSpec spec, long now) {
        Plan<M> p = plan;
        long outcome;
        try {
            outcome = p.storage.acquire(key, spec, 1, now);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see evaluate
            Interrupts.keep(e);
            storageFailed(e, now);
            return DEGRADE;
        }
        p.breaker.success();
        // -1 is no outcome (a rejection waits at least a microsecond) and reads as -2 does.
        return outcome == DEGRADE ? Outcome.rejected(1) : outcome;
    }

    /** The steps of {@link #decideSingle}'s one step at {@code key}, for the failure policy. */
    private Steps singleStep(StateKey key) {
        Steps steps = new Steps(1);
        steps.add(key.scope(), key.subject(), plan.statefuls[0].spec, 0, 1);
        return steps;
    }

    /**
     * {@link #check} without blocking on the storage: local filters run in the caller's thread, the storage call
     * completes the stage. The stage never completes exceptionally for a storage failure, and this method does not
     * throw for one; an {@link Error} in a stage of the storage's (the decision's, or the reject notice's) fails the
     * stage with it, as {@link #check} throws it.
     * The reject notice's storage call is asynchronous too, and the stage completes after it. The
     * listeners, the reject listeners and the notice run on the thread that completes the storage's stage (for
     * {@code RedisStorage} a Lettuce event-loop thread, where blocking code holds up every Redis call), and so does
     * the caller's continuation of the stage, unless a {@link Builder#asyncExecutor} is set; a decision made without
     * the storage (a local filter, an open breaker) completes in the caller's thread, unless its reject notice asks
     * the storage (a local filter's rejection while the breaker lets calls through). Guard adds no timeout of its
     * own: the stage completes when the storage's does (RedisStorage's timeout bounds it).
     *
     * <p>Cancelling the stage (or completing it by hand) gives up on the answer only: a decision the storage makes
     * anyway still consumes its permits, and still goes to the listeners, the reject listeners and the reject notice.
     */
    public CompletionStage<Decision> checkAsync(M message) {
        Objects.requireNonNull(message, "message must not be null");
        // A copy: the caller cancelling (or completing) it must not cancel the stages that run the listeners, which
        // would then miss a decision whose permits the storage consumed.
        return decideAsync(message).toCompletableFuture().copy();
    }

    /** {@link #checkAsync} without the copy the caller gets. */
    private CompletionStage<Decision> decideAsync(M message) {
        long start = plan.listeners.length == 0 ? 0 : System.nanoTime();
        long now = plan.ticker.epochMicros();
        Decision local = decideLocally(message);
        if (local != null) {
            return finishAsync(message, local, null, now, start);
        }
        // The steps outlive this call (the stage completes later, maybe on another thread): a buffer of their own.
        Steps steps = new Steps(plan.statefuls.length);
        fill(steps, message);
        if (steps.missing != null || steps.count() == 0) {
            Decision decision = steps.missing != null ? steps.missing : Decision.allowed(Long.MAX_VALUE);
            return finishAsync(message, decision, steps, now, start);
        }
        CompletionStage<Decision> stage;
        if (!plan.breaker.allows(now)) {
            stage = CompletableFuture.completedFuture(degrade(steps, now));
        } else {
            stage = onAnswer(evaluateAsync(steps.buffer.toBatch(), now), (result, failure) -> {
                throwIfError(failure);
                Throwable failed = failure;
                if (failed == null) {
                    try {
                        steps.buffer.setOutcomes(result);
                        Decision decision = toDecision(steps, steps.buffer, now);
                        plan.breaker.success();
                        return decision;
                    } catch (RuntimeException e) {
                        // An answer that does not fit the batch is the storage's failure, not the caller's.
                        failed = e;
                    }
                }
                storageFailed(failed, now);
                return degrade(steps, now);
            });
        }
        return stage.thenCompose(decision -> finishAsync(message, decision, steps, now, start));
    }

    /**
     * Wraps {@code handler} so that it runs only for allowed messages. The guarded handler returns the decision and
     * rethrows what the handler throws; rejections go to the reject listeners, not to the handler.
     */
    public GuardedHandler<M> wrap(Handler<? super M> handler) {
        Objects.requireNonNull(handler, "handler must not be null");
        return message -> {
            Decision decision = check(message);
            if (decision.allowed()) {
                handler.handle(message);
            }
            return decision;
        };
    }

    /**
     * This guard with its own limits for one handler: the same user gets separate throttles, buckets, windows,
     * duplicates and cooldowns under {@code scope("search")} and {@code scope("start")}. The blocklist, registration,
     * the sets of {@link #members}, gates and the reject notice's window stay shared: they are about the user, not the
     * handler. Scopes nest: {@code ban} under {@code scope("admin")} keeps limits apart from {@code scope("ban")}.
     * Cheap; no state is copied.
     *
     * @throws IllegalArgumentException if {@code name} is blank or holds control characters
     */
    public Guard<M> scope(String name) {
        Subjects.checkName("scope", name);
        return new Guard<>(plan, handlerPrefix + Subjects.handlerPrefix(name));
    }

    /** The blocklist (users whose messages are rejected with {@link Reason#BLOCKED}), without a tenant. */
    public MemberSet blocklist() {
        return blocklist(null);
    }

    /** The blocklist of {@code tenant} (null: no tenant). */
    public MemberSet blocklist(String tenant) {
        return new MemberSet(plan.storage, plan.ticker, Subjects.tenantPrefix(tenant) + "set:" + BLOCKLIST_SET);
    }

    /**
     * The set of a {@link Membership} filter added with {@link Builder#limit(String, KeyBy, LimitSpec)} or {@link
     * Builder#limit(String, Function, LimitSpec)} (an allowlist of admins, a list of muted chats), without a tenant:
     * its ids are what the filter's key is (user ids for {@link KeyBy#USER}, chat ids for {@link KeyBy#CHAT}, the
     * custom key's values); for {@link KeyBy#GLOBAL} any id stands for the one global key. As with the blocklist and
     * the registrations, while a {@link FailurePolicy#fallbackTo fallback} decides, the set lets everyone through.
     *
     * @throws IllegalArgumentException if the guard has no membership filter named {@code name}
     */
    public MemberSet members(String name) {
        return members(null, name);
    }

    /** {@link #members(String)} of {@code tenant} (null: no tenant). */
    public MemberSet members(String tenant, String name) {
        Stateful<M> set = plan.filter(name, Membership.class, "membership");
        String idName = idName(set);
        return new MemberSet(
                plan.storage,
                plan.ticker,
                Subjects.tenantPrefix(tenant) + set.base,
                idName,
                id -> subjectOf(set, idName, id));
    }

    /**
     * Whether filters of {@code spec} are gates or sets: state that the bot administers by id ({@link #pause}, {@link
     * #members}) rather than counts, so kept under the id as given, one key for all handler scopes.
     */
    private static boolean administeredById(LimitSpec spec) {
        return spec instanceof Gate || spec instanceof Membership;
    }

    /**
     * What errors call an id of {@code filter}'s key: {@code userId} or {@code chatId} for a key by user or by chat,
     * as {@link #forgetUser} and the builder do; {@code id} for a custom or the global key, as {@link #pause} does.
     */
    private static String idName(Stateful<?> filter) {
        if (filter.customKey != null) {
            return "id";
        }
        return switch (filter.keyBy) {
            case USER -> "userId";
            case CHAT -> "chatId";
            case GLOBAL, CHAT_USER -> "id";
        };
    }

    /**
     * The subject under which {@code filter} (not keyed by chat and user) keeps the state of {@code id}, the argument
     * {@code what} of the caller.
     */
    private static String subjectOf(Stateful<?> filter, String what, Object id) {
        if (filter.customKey != null) {
            return Subjects.CUSTOM + Subjects.text(what, Objects.requireNonNull(id, "id must not be null"));
        }
        return switch (filter.keyBy) {
            case USER -> Subjects.user(Subjects.text(what, Objects.requireNonNull(id, "id must not be null")));
            case CHAT -> Subjects.chat(Subjects.text(what, Objects.requireNonNull(id, "id must not be null")));
            case GLOBAL -> StateKey.GLOBAL;
            case CHAT_USER ->
                throw new IllegalArgumentException("filter '" + filter.name
                        + "' is keyed by CHAT_USER: its state is per chat and user, not per id");
        };
    }

    /** The registered users (see {@link Builder#requireRegistration()}), without a tenant. */
    public MemberSet registrations() {
        return registrations(null);
    }

    /** The registered users of {@code tenant} (null: no tenant). */
    public MemberSet registrations(String tenant) {
        return new MemberSet(plan.storage, plan.ticker, Subjects.tenantPrefix(tenant) + "set:" + REGISTERED_SET);
    }

    /**
     * Closes the gate filter {@code gateName} for {@code id} (a user or chat id, as the gate is keyed; for a gate with
     * a custom key, the value its key extractor returns; ignored for a global gate) for {@code duration}: nothing
     * passes it until then. Deadlines merge by maximum, so a shorter pause never shortens a longer one. Messages
     * without a tenant; see {@link #pause(String, String, Object, Duration)} for a tenant's. One storage call; throws
     * {@link dev.guard.spi.GuardStorageException} on failure.
     *
     * @return the deadline now in force
     * @throws IllegalArgumentException if there is no gate of that name, or {@code id}'s {@code toString()} returns
     *     null or throws (it has no text to name its key by)
     */
    public Instant pause(String gateName, Object id, Duration duration) {
        return pause(null, gateName, id, duration);
    }

    /**
     * {@link #pause(String, Object, Duration)} for the messages of {@code tenant} (as the guard's tenant extractor
     * returns it; null: messages without a tenant).
     */
    public Instant pause(String tenant, String gateName, Object id, Duration duration) {
        Durations.positive("duration", duration);
        Stateful<M> gate = plan.filter(gateName, Gate.class, "gate");
        String subject = subjectOf(gate, "id", id);
        long now = plan.ticker.epochMicros();
        long until = plan.storage.raiseGate(
                // Interned, as the steps' scope is without a tenant (see Stateful): a gate raised here is then found by
                // identity. Under a tenant the steps' scope is another instance (TenantScopes), found by its text.
                new StateKey((Subjects.tenantPrefix(tenant) + gate.base).intern(), subject),
                Durations.deadline(now, duration),
                now);
        return Instant.ofEpochSecond(Math.floorDiv(until, 1_000_000L), Math.floorMod(until, 1_000_000L) * 1_000L);
    }

    /**
     * Removes everything the storage keeps about {@code userId}, in every tenant and handler scope: limits,
     * duplicates, set memberships (a block or a registration too: the user is unblocked and unregistered) and the
     * reject notice's window, of the filters keyed by {@link KeyBy#USER} or {@link KeyBy#CHAT_USER}, and the limits
     * of the user's private chat (keyed by {@link KeyBy#CHAT} in the chat whose id is the user's, kept under the
     * user); and what a {@link FailurePolicy#fallbackTo fallback} storage kept while the storage was down. Not the
     * state of other chats, nor a private chat's sets and gates (administered by chat id), nor the global state, nor
     * state under a custom key, even one made of the user's id: see {@link #forgetKey}. One storage call that may
     * scan (and one to the fallback); throws {@link dev.guard.spi.GuardStorageException} on failure.
     *
     * @return how many keys were removed
     * @throws IllegalArgumentException if {@code userId}'s {@code toString()} returns null or throws (it has no text
     *     to name its keys by)
     */
    public long forgetUser(Object userId) {
        return forget(
                Subjects.user(Subjects.text("userId", Objects.requireNonNull(userId, "userId must not be null"))));
    }

    /**
     * Removes everything the storage (and a {@link FailurePolicy#fallbackTo fallback}) keeps under the custom key
     * {@code key}, a value that the key extractor of a filter added with {@link Builder#limit(String, Function,
     * LimitSpec)} returns, in every such filter, tenant and handler scope: for state about a user under a key of your
     * own (a mute per user in one chat, {@code chat + "/" + user}), which {@link #forgetUser} cannot tell is theirs.
     * One storage call that may scan (and one to the fallback); throws {@link dev.guard.spi.GuardStorageException} on
     * failure.
     *
     * @return how many keys were removed
     * @throws IllegalArgumentException if {@code key}'s {@code toString()} returns null or throws
     */
    public long forgetKey(Object key) {
        return forget(Subjects.CUSTOM + Subjects.text("key", Objects.requireNonNull(key, "key must not be null")));
    }

    private long forget(String subject) {
        long removed = plan.storage.forget(subject);
        Storage fallback = plan.failurePolicy.fallback();
        return fallback == null ? removed : removed + fallback.forget(subject);
    }

    // ---------------------------------------------------------------------------------------------------------------

    private Decision decideLocally(M message) {
        for (Local<M> local : plan.locals) {
            boolean allowed;
            try {
                allowed = local.filter.test(message);
            } catch (Error e) {
                throw e;
            } catch (Throwable e) { // checked ones thrown undeclared too, and a bare Throwable: Kotlin may throw either
                Interrupts.keep(e);
                LOG.warn("filter '{}' threw; the message is rejected", local.name, e);
                allowed = false;
            }
            if (!allowed) {
                return Decision.rejected(local.name, local.reason, Decision.NEVER);
            }
        }
        return null;
    }

    /**
     * The stateful steps of one message, in a buffer that the storage evaluates in place. {@link #check} reuses one
     * per thread: a check that runs inside another on the same thread (a listener that checks a message) finds it in
     * use and gets a new one, so that the outer check's steps and results stay intact.
     */
    private static final class Steps {
        private static final int RECENT_AFTER = 64;
        private static final ThreadLocal<Steps> PER_THREAD = ThreadLocal.withInitial(() -> new Steps(8, true));

        final BatchBuffer buffer;
        int[] filterIndex;
        Decision missing;
        String noticeSubject;
        /** The prefix of the tenant the steps were filled under ("" for none), for the notice's key: read once. */
        String noticeTenant;
        /** Whether a check on the owning thread is using this per-thread instance. */
        private boolean inUse;

        /**
         * The subjects of the numeric ids this thread met last: made only once a thread has checked {@link
         * #RECENT_AFTER} messages, so that a thread that checks a few (a virtual thread per update) does not pay for
         * it; never in the steps of an asynchronous check, which are new each time.
         */
        private RecentSubjects recentSubjects;

        /** Whether this instance may keep recent subjects, and how many numeric subjects it has formatted. */
        private final boolean recent;

        private int formatted;

        Steps(int capacity) {
            this(capacity, false);
        }

        private Steps(int capacity, boolean recent) {
            buffer = new BatchBuffer(capacity);
            filterIndex = new int[capacity];
            this.recent = recent;
        }

        /**
         * The numeric ids of the user and the chat of the message being filled, as {@link #noted} met them, and
         * whether it met them (since {@link #forgetIds}): compared as numbers to tell a private chat, where the ids'
         * boxes were already undone (a box kept for a later comparison is one the compiler no longer leaves out).
         * Only the fill of these steps notes them: a check that an id extractor runs on the same thread, between the
         * user's id and the chat's, may read this thread's recent subjects ({@link #subject}, a single filter's
         * check) but notes nothing here.
         */
        private long userNumber;

        private long chatNumber;
        private boolean userNumeric;
        private boolean chatNumeric;

        /** Starts a message: no numeric id met yet. */
        void forgetIds() {
            userNumeric = false;
            chatNumeric = false;
        }

        /**
         * Whether the message's user and chat are one id, as a user's private chat is on Telegram: as numbers when
         * both ids were numeric, otherwise by the subjects' texts ({@link Subjects#sameId}).
         */
        boolean sameId(String userSubject, String chatSubject) {
            return userNumeric && chatNumeric ? userNumber == chatNumber : Subjects.sameId(userSubject, chatSubject);
        }

        /** {@link #subject} of the message being filled, its id noted for {@link #sameId}. */
        String noted(String prefix, long id) {
            if (prefix == Subjects.USER) {
                userNumber = id;
                userNumeric = true;
            } else {
                chatNumber = id;
                chatNumeric = true;
            }
            return subject(prefix, id);
        }

        /** {@code prefix + id}, from the recent subjects when it is there (for {@link Subjects#USER} and CHAT). */
        String subject(String prefix, long id) {
            if (recentSubjects == null) {
                if (!recent || ++formatted < RECENT_AFTER) {
                    return prefix + id;
                }
                recentSubjects = new RecentSubjects();
            }
            return recentSubjects.subject(prefix, id);
        }

        /**
         * {@code scope + "\0" + chatSubject}, the scope of a key per chat and user in a group chat: from the recent
         * subjects when they are kept (see {@link RecentSubjects#chatScope}) and the chat's id was a number, whose
         * subject they keep; a chat's id given as text makes a new subject for every message, which no kept scope
         * matches.
         */
        String chatScope(String scope, String chatSubject) {
            return recentSubjects == null || !chatNumeric
                    ? scope + "\0" + chatSubject
                    : recentSubjects.chatScope(scope, chatSubject);
        }

        /** This thread's steps, emptied, or new ones if a check on this thread already uses them. */
        static Steps acquire(int capacity) {
            Steps steps = PER_THREAD.get();
            if (steps.inUse) {
                return new Steps(capacity);
            }
            steps.inUse = true;
            if (steps.filterIndex.length < capacity) {
                steps.filterIndex = new int[capacity];
            }
            return steps;
        }

        /**
         * Ends a check's use; keeps no message's subjects reachable from the thread, but for the recent subjects (and
         * group chats' scopes) kept on purpose (the buffer keeps the last scopes until the next check overwrites them:
         * see {@link BatchBuffer#clear}).
         */
        void release() {
            buffer.clear();
            missing = null;
            noticeSubject = null;
            noticeTenant = null;
            inUse = false;
        }

        int count() {
            return buffer.size();
        }

        void add(String scope, String subject, LimitSpec spec, int filter, long permits) {
            filterIndex[buffer.size()] = filter;
            buffer.add(scope, subject, spec, permits);
        }
    }

    private void fill(Steps steps, M message) {
        Plan<M> p = plan;
        steps.forgetIds();
        String userSubject = subject(steps, Subjects.USER, p.userId, message);
        String chatSubject = subject(steps, Subjects.CHAT, p.chatId, message);
        // Whether the message comes from the user's private chat, for guards with keys per chat and user or limits per
        // chat.
        boolean privateChat = (p.chatUserKeys || p.chatLimits) && steps.sameId(userSubject, chatSubject);
        String tenant = "";
        String[] stepScopes = scopes;
        if (p.tenant != null) {
            TenantScopes.Tenant t = tenantOf(message);
            if (t == null) {
                steps.missing = UNREADABLE_TENANT;
                return;
            }
            if (t != noTenant) {
                tenant = t.prefix();
                stepScopes = t.scopes();
            }
        }
        steps.noticeSubject = userSubject != null ? userSubject : chatSubject;
        steps.noticeTenant = tenant;
        for (int i = 0; i < p.statefuls.length; i++) {
            Stateful<M> f = p.statefuls[i];
            String scope = stepScopes[i];
            // The chat of a CHAT_USER key is part of its scope, so that its subject stays the user (forget finds it).
            String chatPart = null;
            String subject =
                    switch (f.keyBy) {
                        case USER -> userSubject;
                        // A private chat's limits are its user's: see Stateful.chatLimit.
                        case CHAT -> f.chatLimit && privateChat ? userSubject : chatSubject;
                        case CHAT_USER -> {
                            // A private chat needs no chat part, and no string built per message for it. Still one key
                            // per chat and user: every other chat of the user keeps its part.
                            chatPart = privateChat ? null : chatSubject;
                            yield chatSubject == null ? null : userSubject;
                        }
                        case GLOBAL -> StateKey.GLOBAL;
                    };
            if (f.customKey != null) {
                subject = subject(steps, Subjects.CUSTOM, f.customKey, message);
            }
            if (subject == null) {
                if (p.missingKeys == MissingKeyPolicy.REJECT) {
                    steps.missing = Decision.rejected(f.name, Reason.MISSING_KEY, Decision.NEVER);
                    return;
                }
                continue;
            }
            if (chatPart != null) {
                scope = steps.chatScope(scope, chatPart);
            }
            if (f.content == null) {
                steps.add(scope, subject, f.spec, i, 1);
                continue;
            }
            long fingerprint = fingerprintOf(f, message);
            if (fingerprint < 0) {
                continue; // nothing to compare: a message without the content is never a duplicate
            }
            if (f.spec instanceof DuplicateWindow) {
                // One key per conversation: the content's fingerprint is the window's item.
                steps.add(scope, subject, f.spec, i, fingerprint);
            } else {
                // A key per content (a cooldown), for keys that many people write under.
                steps.add(scope + "\0d:" + Long.toHexString(fingerprint), subject, f.spec, i, 1);
            }
        }
    }

    /**
     * The subject {@code prefix + id} for the id {@code extractor} reads, or null when there is none; a numeric user's
     * or chat's id noted in {@code steps} (those of the message being filled; null: none) for {@link Steps#sameId}.
     */
    private static <M> String subject(Steps steps, String prefix, Function<? super M, ?> extractor, M message) {
        return subjectFor(steps, prefix, readId(extractor, message), true);
    }

    /**
     * The id {@code extractor} reads from {@code message} as a subject is made of it: a {@code Long} or an {@code
     * Integer} as it is, any other id as its text; null when there is none (no extractor, it answered null or threw,
     * or the id's {@code toString()} answered null or threw).
     */
    private static <M> Object readId(Function<? super M, ?> extractor, M message) {
        Object id = extract(extractor, message);
        return id == null || id instanceof Long || id instanceof Integer ? id : text(id);
    }

    /**
     * The subject {@code prefix + id} of an id that {@link #readId} answered, or null for none; a numeric user's or
     * chat's id noted in {@code steps} when {@code note} (see {@link #numericSubject}).
     */
    private static String subjectFor(Steps steps, String prefix, Object id, boolean note) {
        if (id == null) {
            return null;
        }
        // Numeric ids (Telegram's are longs) format straight into the subject, without a string of their own.
        if (id instanceof Long l) {
            return numericSubject(steps, prefix, l, note);
        }
        if (id instanceof Integer n) {
            return numericSubject(steps, prefix, n, note);
        }
        return prefix + id; // readId's text
    }

    /**
     * {@code prefix + id}; a user's or chat's from {@code steps}' recent subjects if given (null: none), and noted in
     * them when {@code note}: only by the fill of those steps, whose notes a check run by its id extractors must not
     * overwrite.
     */
    private static String numericSubject(Steps steps, String prefix, long id, boolean note) {
        if (steps == null || prefix == Subjects.CUSTOM) {
            return prefix + id;
        }
        return note ? steps.noted(prefix, id) : steps.subject(prefix, id);
    }

    /** {@code id.toString()}, or null (no id) when it throws, as an extractor that throws counts. */
    private static String text(Object id) {
        try {
            return id.toString();
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn("an id's toString() threw; the message is treated as having no such id", e);
            return null;
        }
    }

    /**
     * The fingerprint of the content {@code f} reads from {@code message}, or -1 when there is none: the extractor
     * answered null or an empty text or threw, or the content threw as it was read (a lazily decoded text).
     */
    private static <M> long fingerprintOf(Stateful<M> f, M message) {
        try {
            CharSequence content = f.content.apply(message);
            // No content (a photo without a caption read as "") is not a copy of another message without any.
            return content == null || content.length() == 0 ? -1 : Fingerprint.of(content);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn(
                    "content of '{}' could not be read (its extractor or the content threw); the filter does not apply",
                    f.name,
                    e);
            return -1;
        }
    }

    /**
     * The prefix of {@code message}'s tenant: empty for the default tenant (the extractor answered null), null when
     * the tenant cannot be read ({@link #tenantOf}).
     */
    private String tenantPrefix(M message) {
        TenantScopes.Tenant tenant = tenantOf(message);
        return tenant == null ? null : tenant.prefix();
    }

    /**
     * The tenant of {@code message} with its prefix and this view's scopes under it: {@link #noTenant} for the
     * default tenant (the extractor answered null), null when the tenant cannot be read (the extractor threw, or the
     * tenant's {@code toString()} threw or answered null). Such a message belongs to no tenant that it could be
     * counted under: the guard rejects it ({@link #UNREADABLE_TENANT}).
     */
    private TenantScopes.Tenant tenantOf(M message) {
        Object tenant;
        try {
            tenant = plan.tenant.apply(message);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn("tenant extractor threw; the message is rejected", e);
            return null;
        }
        if (tenant == null) {
            return noTenant;
        }
        String text;
        try {
            text = tenant.toString();
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn("a tenant's toString() threw; the message is rejected", e);
            return null;
        }
        if (text == null) {
            LOG.warn("a tenant's toString() returned null; the message is rejected");
            return null;
        }
        return tenantScopes != null ? tenantScopes.of(text) : TenantScopes.built(text, scopes);
    }

    private static <M> Object extract(Function<? super M, ?> extractor, M message) {
        if (extractor == null) {
            return null;
        }
        try {
            return extractor.apply(message);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn("key extractor threw; the message is treated as having no such id", e);
            return null;
        }
    }

    private Decision evaluate(Steps steps, long now) {
        if (steps.count() == 0) {
            return Decision.allowed(Long.MAX_VALUE);
        }
        if (!plan.breaker.allows(now)) {
            return degrade(steps, now);
        }
        try {
            Decision decision;
            BatchBuffer buffer = steps.buffer;
            if (buffer.size() == 1) {
                // The single-step path: no batch, no result object.
                long outcome = plan.storage.acquire(buffer.key(0), buffer.spec(0), buffer.permits(0), now);
                decision = decisionOf(plan.statefuls[steps.filterIndex[0]], outcome, now);
            } else {
                plan.storage.evaluateInPlace(buffer, now);
                decision = toDecision(steps, buffer, now);
            }
            plan.breaker.success();
            return decision;
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: a storage in Kotlin may let its client's through
            return failedOver(e, steps, now);
        }
    }

    /**
     * The failure policy's decision for {@code steps} after the storage's synchronous call failed with {@code
     * failure} (the thread's interrupt kept, the breaker told).
     */
    private Decision failedOver(Throwable failure, Steps steps, long now) {
        Interrupts.keep(failure);
        storageFailed(failure, now);
        return degrade(steps, now);
    }

    private void storageFailed(Throwable failure, long now) {
        boolean wasOpen = plan.breaker.isOpen(now);
        plan.breaker.failure(now);
        if (!wasOpen && plan.breaker.isOpen(now)) {
            LOG.warn("storage failing; breaker open, policy {} applies: {}", plan.failurePolicy, failure.toString());
        } else {
            LOG.debug("storage call failed; policy {} applies", plan.failurePolicy, failure);
        }
    }

    private Decision degrade(Steps steps, long now) {
        FailurePolicy policy = plan.failurePolicy;
        if (policy.kind() == FailurePolicy.Kind.CLOSED) {
            // Retry when the breaker next lets a call try the storage: what is left of its pause, 0 while it is closed.
            Duration retryAfter = retryAfter(plan.breaker.waitMicros(now), now);
            return new Decision(false, STORAGE_FILTER, Reason.STORAGE_UNAVAILABLE, retryAfter, 0, true);
        }
        if (policy.kind() == FailurePolicy.Kind.FALLBACK) {
            try {
                Steps limits = withoutSets(steps);
                if (limits.count() == 0) {
                    return Decision.allowed(Long.MAX_VALUE).asDegraded();
                }
                policy.fallback().evaluateInPlace(limits.buffer, now);
                return toDecision(limits, limits.buffer, now).asDegraded();
            } catch (Error e) {
                throw e;
            } catch (Throwable e) { // undeclared checked ones too: see evaluate
                Interrupts.keep(e);
                LOG.debug("fallback storage failed too; allowing", e);
            }
        }
        // Fail open, also when the fallback failed; no quota applied, so nothing is known to remain.
        return new Decision(true, STORAGE_FILTER, Reason.STORAGE_UNAVAILABLE, Duration.ZERO, Long.MAX_VALUE, true);
    }

    /**
     * {@code steps} without their set checks (blocklist, registration), for the fallback storage: the sets' members
     * live in the storage that fails, so the fallback would find every user unregistered; the sets fail open there.
     * {@code steps} itself when it has none.
     */
    private static Steps withoutSets(Steps steps) {
        BatchBuffer buffer = steps.buffer;
        int sets = 0;
        for (int i = 0; i < buffer.size(); i++) {
            if (buffer.spec(i) instanceof Membership) {
                sets++;
            }
        }
        if (sets == 0) {
            return steps;
        }
        Steps limits = new Steps(buffer.size() - sets);
        for (int i = 0; i < buffer.size(); i++) {
            if (!(buffer.spec(i) instanceof Membership)) {
                limits.add(buffer.scope(i), buffer.subject(i), buffer.spec(i), steps.filterIndex[i], buffer.permits(i));
            }
        }
        return limits;
    }

    /** The decision of a single step of filter {@code f} whose storage call answered {@code outcome}. */
    private Decision decisionOf(Stateful<M> f, long outcome, long now) {
        if (Outcome.isAdmitted(outcome)) {
            return Decision.allowed(f.quota ? Outcome.remaining(outcome) : Long.MAX_VALUE);
        }
        return Decision.rejected(f.name, f.reason, retryAfter(Outcome.retryAfterMicros(outcome), now));
    }

    /**
     * A rejection's wait as a duration: {@link Decision#NEVER} when it would end at the end of time (a gate paused
     * for ever, whose deadline is {@link Long#MAX_VALUE}), since no wait helps then.
     */
    private static Duration retryAfter(long micros, long now) {
        return endless(micros, now) ? Decision.NEVER : Durations.ofMicros(micros);
    }

    /** Whether a wait of {@code micros} from {@code now} ends at the end of time: {@link #retryAfter}'s NEVER. */
    private static boolean endless(long micros, long now) {
        return micros >= Long.MAX_VALUE - Math.max(0, now);
    }

    private Decision toDecision(Steps steps, BatchBuffer result, long now) {
        if (result.admitted()) {
            // Only quotas have a meaningful remainder: a passed duplicate check or cooldown is not "0 left".
            long remaining = Long.MAX_VALUE;
            for (int i = 0; i < result.size(); i++) {
                if (plan.statefuls[steps.filterIndex[i]].quota) {
                    remaining = Math.min(remaining, Outcome.remaining(result.outcome(i)));
                }
            }
            return Decision.allowed(remaining);
        }
        Stateful<M> f = plan.statefuls[steps.filterIndex[result.firstRejected()]];
        return Decision.rejected(f.name, f.reason, retryAfter(result.retryAfterMicros(), now));
    }

    /**
     * Runs the reject listeners, the reject notice and the decision listeners for {@code decision}; the notice's
     * subject and tenant prefix as the decision's steps found them (null: none found, or no steps; read again).
     */
    private void finish(M message, Decision decision, String noticeSubject, String noticeTenant, long now, long start) {
        long nanos = decisionNanos(start);
        rejected(message, decision);
        StateKey noticeKey = noticeKey(message, decision, noticeSubject, noticeTenant);
        if (noticeGoesToFallback(decision, noticeKey, now)) {
            noticeOnFallback(message, decision, noticeKey, now);
        } else if (noticeKey != null) {
            long outcome = acquireOne(noticeKey, plan.notice.spec, now);
            boolean send = Outcome.isAdmitted(outcome);
            if (outcome == DEGRADE) {
                // The storage failed on the notice's own call: the fallback keeps its cooldown, as for a decision
                // made there (nothing without one).
                noticeOnFallback(message, decision, noticeKey, now);
            }
            if (send && fallbackAdmitsToo(noticeKey, now)) {
                sendNotice(message, decision);
            }
        }
        decided(message, decision, nanos);
    }

    /**
     * {@link #finish} for {@link #checkAsync}: the notice's storage call does not block the thread that completed
     * the decision (for a remote storage, its client's network thread); the stage completes once the notice is
     * sent or skipped, with {@code decision}.
     */
    private CompletionStage<Decision> finishAsync(M message, Decision decision, Steps steps, long now, long start) {
        long nanos = decisionNanos(start);
        rejected(message, decision);
        StateKey noticeKey = noticeKey(
                message,
                decision,
                steps == null ? null : steps.noticeSubject,
                steps == null ? null : steps.noticeTenant);
        boolean onFallback = noticeGoesToFallback(decision, noticeKey, now);
        if (onFallback) {
            noticeOnFallback(message, decision, noticeKey, now);
        }
        if (noticeKey == null || onFallback) {
            decided(message, decision, nanos);
            return CompletableFuture.completedFuture(decision);
        }
        return onAnswer(evaluateAsync(Batch.of(new Step(noticeKey, plan.notice.spec, 1)), now), (result, failure) -> {
            throwIfError(failure); // as finish lets one from the notice's storage call through
            if (failure == null && (result == null || result.size() != 1)) {
                // An answer that does not fit the one-step batch is the storage's failure.
                failure = new IllegalStateException("storage answered " + result + " for one step");
            }
            if (failure != null) {
                storageFailed(failure, now);
                noticeOnFallback(message, decision, noticeKey, now); // as finish does
            } else {
                plan.breaker.success();
                if (result.admitted() && fallbackAdmitsToo(noticeKey, now)) {
                    sendNotice(message, decision);
                }
            }
            decided(message, decision, nanos);
            return decision;
        });
    }

    /**
     * Whether the notice under {@code noticeKey} (null: none due) goes to the fallback storage: the fallback decided
     * the rejection, or the breaker refuses the storage (asked once per notice: a half-open breaker lets one call
     * through).
     */
    private boolean noticeGoesToFallback(Decision decision, StateKey noticeKey, long now) {
        return noticeKey != null && (decision.degraded() || !plan.breaker.allows(now));
    }

    /**
     * The notice of a rejection that the fallback storage decided (the configured storage failing), that a local
     * filter decided while the breaker refuses the storage, or whose own call to the storage failed: its cooldown is
     * kept on the fallback, so that the user still hears once per window, and the failing storage gets no (further)
     * call for it. Nothing without a fallback.
     */
    private void noticeOnFallback(M message, Decision decision, StateKey noticeKey, long now) {
        Storage fallback = plan.failurePolicy.fallback();
        // Without a fallback, storage failures skip the notice; a fallback that fails too skips it as well.
        if (fallback != null && fallbackAdmits(fallback, noticeKey, now, false)) {
            sendNotice(message, decision);
        }
    }

    /**
     * Whether a notice that the storage let through is sent: with a {@link FailurePolicy#fallbackTo fallback}, only
     * if the fallback's window lets it through too (and starts there). The two keep one window between them: the
     * storage knows nothing of a notice sent on the fallback while it failed, and a notice it lets through is recorded
     * on the fallback here, for when it fails next; a user told on one is not told again within the window on the
     * other. A fallback that fails holds nothing back.
     */
    private boolean fallbackAdmitsToo(StateKey noticeKey, long now) {
        Storage fallback = plan.failurePolicy.fallback();
        return fallback == null || fallbackAdmits(fallback, noticeKey, now, true);
    }

    /**
     * Whether {@code fallback}'s window lets the notice at {@code key} through, starting it there; {@code ifFailed}
     * when the fallback throws.
     */
    private boolean fallbackAdmits(Storage fallback, StateKey key, long now, boolean ifFailed) {
        try {
            return Outcome.isAdmitted(fallback.acquire(key, plan.notice.spec, 1, now));
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see evaluate
            Interrupts.keep(e);
            LOG.debug("fallback storage failed on a reject notice; {}", ifFailed ? "sending it" : "no notice", e);
            return ifFailed;
        }
    }

    /**
     * The storage's answer to {@code batch}, or a failed stage if the storage threw or returned null instead of
     * answering one.
     */
    private CompletionStage<BatchResult> evaluateAsync(Batch batch, long now) {
        CompletionStage<BatchResult> stage;
        try {
            stage = plan.storage.evaluateAsync(batch, now);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see evaluate
            Interrupts.keep(e);
            return CompletableFuture.failedFuture(e);
        }
        return stage != null
                ? stage
                : CompletableFuture.failedFuture(new IllegalStateException("storage answered no stage"));
    }

    /**
     * {@code stage}'s answer handed to {@code then}: on the thread that completed it, or on the {@link
     * Builder#asyncExecutor} when one is set; in place when that executor refuses the task (shut down) or throws
     * otherwise, since the decision must still reach the listeners and the caller; {@code then} runs once.
     */
    private <T, U> CompletionStage<U> onAnswer(
            CompletionStage<T> stage, BiFunction<? super T, Throwable, ? extends U> then) {
        Executor executor = plan.asyncExecutor;
        if (executor == null) {
            return stage.handle(then);
        }
        CompletableFuture<U> next = new CompletableFuture<>();
        stage.whenComplete((value, failure) -> {
            AtomicBoolean ran = new AtomicBoolean();
            Runnable task = () -> {
                if (!ran.compareAndSet(false, true)) {
                    return; // an executor that ran it and threw all the same: the listeners and notice ran once
                }
                try {
                    next.complete(then.apply(value, failure));
                } catch (Throwable e) { // as handle would: the stage fails with it
                    next.completeExceptionally(e);
                }
            };
            try {
                executor.execute(task);
            } catch (Throwable e) { // refused (shut down), or failed otherwise: nothing else would complete the stage
                Interrupts.keep(e);
                if (!(e instanceof RejectedExecutionException)) {
                    LOG.warn("asyncExecutor threw; the decision goes on in the thread that completed the stage", e);
                }
                task.run();
            }
        });
        return next;
    }

    /**
     * Throws the {@link Error} that failed a storage's stage ({@code failure}, or its cause when a {@link
     * CompletionException} wraps it; nothing for another failure or none): not a storage failure, it fails the stage
     * of {@link #checkAsync}, as {@link #check} lets it through.
     */
    private static void throwIfError(Throwable failure) {
        Throwable cause =
                failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
        if (cause instanceof Error e) {
            throw e;
        }
    }

    /** Runs the reject listeners if {@code decision} rejects. */
    private void rejected(M message, Decision decision) {
        if (!decision.rejected()) {
            return;
        }
        for (RejectListener<? super M> listener : plan.rejectListeners) {
            try {
                listener.onReject(message, decision);
            } catch (Error e) {
                throw e;
            } catch (Throwable e) { // undeclared checked ones too: see decideLocally
                Interrupts.keep(e);
                LOG.warn("reject listener threw", e);
            }
        }
    }

    /**
     * How long the decision of a check begun at {@code start} took, now that it is made: before the reject listeners
     * and the reject notice run (the bot's own work, a reply sent, say, which the decision's latency must not hold).
     * Zero without decision listeners, which read no clock then.
     */
    private long decisionNanos(long start) {
        return plan.listeners.length == 0 ? 0 : System.nanoTime() - start;
    }

    /** Runs the decision listeners. */
    private void decided(M message, Decision decision, long nanos) {
        if (plan.listeners.length > 0) {
            for (GuardListener<? super M> listener : plan.listeners) {
                try {
                    listener.onDecision(message, decision, nanos);
                } catch (Error e) {
                    throw e;
                } catch (Throwable e) { // undeclared checked ones too: see decideLocally
                    Interrupts.keep(e);
                    LOG.warn("listener threw", e);
                }
            }
        }
    }

    /**
     * The key of the reject notice's cooldown for {@code message} (its user, else its chat, under its tenant), or
     * null when no notice applies: none configured, an allowed decision, a storage failure, a tenant that could not
     * be read (not read again here: a second look that finds one would send the notice under it), or no id. The
     * subject and the tenant's prefix are those the decision found ({@code noticeSubject}, {@code noticeTenant}),
     * read again from the message where it found none (null).
     */
    private StateKey noticeKey(M message, Decision decision, String noticeSubject, String noticeTenant) {
        if (plan.notice == null
                || !decision.rejected()
                || decision.reason() == Reason.STORAGE_UNAVAILABLE
                || decision == UNREADABLE_TENANT) {
            return null;
        }
        String subject = noticeSubject;
        if (subject == null) {
            subject = subject(null, Subjects.USER, plan.userId, message);
            if (subject == null) {
                subject = subject(null, Subjects.CHAT, plan.chatId, message);
            }
        }
        if (subject == null) {
            return null;
        }
        // The tenant the decision was made under: read again only for a decision made before the steps (a local
        // filter's), so that a tenant that reads otherwise a second time does not move the notice's window.
        String tenant = noticeTenant != null ? noticeTenant : plan.tenant == null ? "" : tenantPrefix(message);
        return tenant == null ? null : new StateKey(tenant + NOTICE_SCOPE, subject);
    }

    /** Calls the notice listener: the notice's cooldown admitted it. */
    private void sendNotice(M message, Decision decision) {
        try {
            plan.notice.listener.onReject(message, decision);
        } catch (Error e) {
            throw e;
        } catch (Throwable e) { // undeclared checked ones too: see decideLocally
            Interrupts.keep(e);
            LOG.warn("reject notice threw", e);
        }
    }

    // ---------------------------------------------------------------------------------------------------------------

    static final String BLOCKLIST_SET = "blocklist";
    static final String REGISTERED_SET = "registered";
    static final String NOTICE_SCOPE = "notice";

    /**
     * {@link #plainOutcome}'s answer when the decision is not the storage's: not an outcome a storage gives, since a
     * rejection waits at least a microsecond.
     */
    private static final long DEGRADE = -1;

    /**
     * The time at which {@link #plainOutcome} last answered {@link #DEGRADE} on this thread for a guard with a {@link
     * #plainKey}, for {@link #checkOtherwise}, which reads it right after (nothing runs between the two): the failure
     * policy decides at the time the breaker refused or the storage call failed, as on the other paths. Set only when
     * the failure policy decides; one {@code long[1]} per thread that met such a decision.
     */
    private static final ThreadLocal<long[]> DEGRADED_AT = ThreadLocal.withInitial(() -> new long[1]);

    /**
     * The decision for a message whose tenant cannot be read (see {@link Builder#tenant}): under the default tenant
     * it would meet that tenant's limits and blocklist, or escape its own.
     */
    private static final Decision UNREADABLE_TENANT = Decision.rejected("tenant", Reason.MISSING_KEY, Decision.NEVER);

    private record Local<M>(String name, Predicate<? super M> filter, Reason reason) {}

    private record Notice<M>(Cooldown spec, RejectListener<? super M> listener) {}

    private static final class Stateful<M> {
        final String name;
        /** The filter's part of its keys' scope: "f:" + name for the user's filters, so none can collide with ours. */
        final String base;

        final KeyBy keyBy;
        final Function<? super M, ?> customKey;
        final LimitSpec spec;
        final Reason reason;
        final boolean scoped;
        final Function<? super M, ? extends CharSequence> content;
        /** Whether the filter counts permits (a bucket, a window), as opposed to a check or a cooldown. */
        final boolean quota;

        /**
         * Whether the filter is a limit keyed by {@link KeyBy#CHAT} (not a gate or a set, whose keys are administered
         * by chat id): in a private chat, whose id is its user's, it keeps its state under the user's subject, with
         * the user's other keys (one cache entry, one Redis slot), and {@link Guard#forgetUser} removes it with them.
         */
        final boolean chatLimit;

        Stateful(
                String name,
                KeyBy keyBy,
                Function<? super M, ?> customKey,
                LimitSpec spec,
                Reason reason,
                boolean scoped,
                Function<? super M, ? extends CharSequence> content) {
            this.name = name;
            // Interned, as a MemberSet's scope is: the steps of a set and the set's administration (a registration
            // added as the user signs up) then name the set with one instance, which a storage compares by identity
            // first. Not under a tenant: a tenant's scopes are built (see TenantScopes), not interned.
            this.base = (spec instanceof Membership ? "set:" + name : "f:" + name).intern();
            this.keyBy = keyBy;
            this.customKey = customKey;
            this.spec = spec;
            this.reason = reason;
            this.scoped = scoped;
            this.content = content;
            this.quota = spec instanceof TokenBucket
                    || spec instanceof FixedWindow
                    || spec instanceof SlidingWindowLog
                    || spec instanceof SlidingWindowCounter;
            this.chatLimit = keyBy == KeyBy.CHAT && customKey == null && !administeredById(spec);
        }
    }

    private static final class Plan<M> {
        final Storage storage;
        final Ticker ticker;
        final Function<? super M, ?> userId;
        final Function<? super M, ?> chatId;
        final Function<? super M, ?> tenant;
        final MissingKeyPolicy missingKeys;
        final Local<M>[] locals;
        final Stateful<M>[] statefuls;
        final RejectListener<? super M>[] rejectListeners;
        final GuardListener<? super M>[] listeners;
        final Notice<M> notice;
        final FailurePolicy failurePolicy;
        final Breaker breaker;
        final Executor asyncExecutor;
        /**
         * Whether {@link #check} takes the path of one storage call without a buffer: one stateful filter, keyed by
         * the user, the chat or nothing, with no content (a fingerprint) and no custom key, and no tenant.
         */
        final boolean single;
        /** Whether anybody hears of decisions: listeners, reject listeners or a reject notice. */
        final boolean observed;
        /** Whether a stateful filter is keyed by {@link KeyBy#CHAT_USER}. */
        final boolean chatUserKeys;
        /** Whether a stateful filter is a {@linkplain Stateful#chatLimit chat's limit}. */
        final boolean chatLimits;
        /**
         * With a tenant extractor, the tenants' scopes per handler scope (by its prefix), so that views made per
         * message ({@link Guard#scope} is cheap) share what the first one kept; at most {@link #KEPT_HANDLER_SCOPES}.
         */
        private final ConcurrentHashMap<String, TenantScopes> tenantScopes = new ConcurrentHashMap<>();

        @SuppressWarnings({"unchecked", "rawtypes"}) // generic arrays, filled only with elements of the right type
        Plan(Builder<M> b) {
            storage = b.storage;
            ticker = b.ticker;
            userId = b.userId;
            chatId = b.chatId;
            tenant = b.tenant;
            missingKeys = b.missingKeys;
            locals = b.locals.toArray(new Local[0]);
            statefuls = b.statefuls.toArray(new Stateful[0]);
            rejectListeners = b.rejectListeners.toArray(new RejectListener[0]);
            listeners = b.listeners.toArray(new GuardListener[0]);
            notice = b.notice;
            failurePolicy = b.failurePolicy;
            breaker = new Breaker(b.breakerFailures, Durations.toMicrosSaturated(b.breakerOpen));
            asyncExecutor = b.asyncExecutor;
            Stateful<M> only = statefuls.length == 1 ? statefuls[0] : null;
            single = only != null
                    && tenant == null
                    && only.content == null
                    && only.customKey == null
                    && (only.keyBy == KeyBy.GLOBAL || only.keyBy == KeyBy.USER || only.keyBy == KeyBy.CHAT);
            observed = listeners.length > 0 || rejectListeners.length > 0 || notice != null;
            chatUserKeys = Arrays.stream(statefuls).anyMatch(f -> f.keyBy == KeyBy.CHAT_USER);
            chatLimits = Arrays.stream(statefuls).anyMatch(f -> f.chatLimit);
        }

        /** How many handler scopes keep their tenants' scopes: names made from user input would be countless. */
        static final int KEPT_HANDLER_SCOPES = 16;

        /**
         * The tenants' scopes of the view of {@code handlerPrefix}, whose own scopes are {@code scopes}: the ones kept
         * for that handler scope, or new ones kept from now on; null once {@link #KEPT_HANDLER_SCOPES} are kept
         * (that view builds a tenant's scopes for every message). The bound is checked before the handler scope is
         * added, not with it: views of new handler scopes made at once on several threads may each add one past it.
         */
        TenantScopes tenantScopes(String handlerPrefix, String[] scopes) {
            TenantScopes kept = tenantScopes.get(handlerPrefix);
            if (kept != null || tenantScopes.size() >= KEPT_HANDLER_SCOPES) {
                return kept;
            }
            return tenantScopes.computeIfAbsent(handlerPrefix, prefix -> new TenantScopes(scopes));
        }

        /** The filter named {@code name} whose spec is a {@code kind}, described as {@code what} when there is none. */
        Stateful<M> filter(String name, Class<? extends LimitSpec> kind, String what) {
            for (Stateful<M> f : statefuls) {
                if (f.name.equals(name) && kind.isInstance(f.spec)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("there is no " + what + " filter named '" + name + "'");
        }
    }

    /**
     * Builds a {@link Guard}. Every setter checks its arguments at once and throws {@link IllegalArgumentException}
     * naming the setting and the value ({@link NullPointerException} naming the argument for a null extractor,
     * listener or spec); {@link #build()} checks the whole. Not thread-safe; the guard it builds is.
     *
     * @param <M> the bot's update type
     */
    public static final class Builder<M> {
        /** How many recent messages a {@link #duplicates} filter remembers per key unless told otherwise. */
        public static final int DEFAULT_DUPLICATE_CAPACITY = 32;

        private Storage storage;
        private Ticker ticker = Ticker.system();
        private Function<? super M, ?> userId;
        private Function<? super M, ?> chatId;
        private Function<? super M, ?> tenant;
        private MissingKeyPolicy missingKeys = MissingKeyPolicy.SKIP_FILTER;
        private final List<Local<M>> locals = new ArrayList<>();
        private final List<Stateful<M>> statefuls = new ArrayList<>();
        private final List<RejectListener<? super M>> rejectListeners = new ArrayList<>();
        private final List<GuardListener<? super M>> listeners = new ArrayList<>();
        private final Set<String> names = new HashSet<>();
        private Notice<M> notice;
        private FailurePolicy failurePolicy = FailurePolicy.failOpen();
        private int breakerFailures = 5;
        private Duration breakerOpen = Duration.ofSeconds(5);
        private Executor asyncExecutor;

        private Builder() {}

        /** Where the state lives, for example {@code MemoryStorage.create()}. Required. */
        public Builder<M> storage(Storage storage) {
            this.storage = Objects.requireNonNull(storage, "storage must not be null");
            return this;
        }

        /** The clock; the system clock by default, a {@link ManualTicker} in tests. */
        public Builder<M> ticker(Ticker ticker) {
            this.ticker = Objects.requireNonNull(ticker, "ticker must not be null");
            return this;
        }

        /** How to read the sender's user id from a message; {@code null} results mean "no user". */
        public Builder<M> userId(Function<? super M, ?> userId) {
            this.userId = Objects.requireNonNull(userId, "userId must not be null");
            return this;
        }

        /** How to read the chat id from a message; {@code null} results mean "no chat". */
        public Builder<M> chatId(Function<? super M, ?> chatId) {
            this.chatId = Objects.requireNonNull(chatId, "chatId must not be null");
            return this;
        }

        /**
         * How to read a tenant (a bot, a customer) from a message: every key, the blocklist and the registrations
         * are kept apart per tenant, by the tenant's {@code toString()}. A {@code null} result means the default
         * tenant. A message whose tenant cannot be read (the extractor throws, or the tenant's {@code toString()}
         * throws or returns null) is rejected with {@link Reason#MISSING_KEY} by the filter named {@code "tenant"},
         * whatever the {@link #missingKeys missing-key policy}, and gets no reject notice: it belongs to no tenant it
         * could be counted under.
         */
        public Builder<M> tenant(Function<? super M, ?> tenant) {
            this.tenant = Objects.requireNonNull(tenant, "tenant must not be null");
            return this;
        }

        /** What filters do with messages that lack the id they are keyed by; {@link MissingKeyPolicy#SKIP_FILTER}. */
        public Builder<M> missingKeys(MissingKeyPolicy policy) {
            this.missingKeys = Objects.requireNonNull(policy, "missingKeys must not be null");
            return this;
        }

        /**
         * Rejects users on the blocklist ({@link Guard#blocklist()}) with {@link Reason#BLOCKED}. Filter name
         * {@code blocklist}; keyed by user.
         */
        public Builder<M> blocklist() {
            return stateful(new Stateful<>(
                    BLOCKLIST_SET, KeyBy.USER, null, Membership.MUST_BE_ABSENT, Reason.BLOCKED, false, null));
        }

        /**
         * Rejects users that are not registered ({@link Guard#registrations()}) with {@link Reason#UNREGISTERED}.
         * Filter name {@code registered}; keyed by user.
         */
        public Builder<M> requireRegistration() {
            return stateful(new Stateful<>(
                    REGISTERED_SET, KeyBy.USER, null, Membership.MUST_BE_PRESENT, Reason.UNREGISTERED, false, null));
        }

        /**
         * Rejects messages for which {@code registry} (the bot's own user registry, checked locally) answers false,
         * with {@link Reason#UNREGISTERED}. Filter name {@code registration}.
         */
        public Builder<M> requireRegistration(Predicate<? super M> registry) {
            Objects.requireNonNull(registry, "registry must not be null");
            claim("registration");
            locals.add(new Local<>("registration", registry, Reason.UNREGISTERED));
            return this;
        }

        /**
         * Drops copies of the same content from the same user in the same chat within {@code window} (leading edge:
         * the first copy passes, later copies are rejected with {@link Reason#DUPLICATE} and do not extend the
         * window). Filter name {@code duplicates}. Messages whose content is {@code null} or empty (a photo without a
         * caption, read as {@code ""}) are not checked: they are not copies of each other. Each user
         * in each chat has one storage key that remembers their last {@value #DEFAULT_DUPLICATE_CAPACITY} messages
         * ({@link DuplicateWindow}), however many they send.
         */
        public Builder<M> duplicates(Duration window, Function<? super M, ? extends CharSequence> content) {
            return duplicates("duplicates", KeyBy.CHAT_USER, window, content);
        }

        /**
         * {@link #duplicates(Duration, Function)} with a name and a key of your choice. For a conversation ({@link
         * KeyBy#CHAT_USER} or {@link KeyBy#USER}) one key remembers the last {@value #DEFAULT_DUPLICATE_CAPACITY}
         * messages, as there. For a key that many people write under ({@link KeyBy#CHAT}, {@link KeyBy#GLOBAL}: "the
         * same text from anyone in the chat"), whose window may hold any number of messages, every distinct content
         * gets a key of its own, which expires with its window: no copy within the window passes, however busy the
         * chat.
         */
        public Builder<M> duplicates(
                String name, KeyBy key, Duration window, Function<? super M, ? extends CharSequence> content) {
            Durations.positivePeriod("window", window);
            if (key == KeyBy.CHAT || key == KeyBy.GLOBAL) {
                Objects.requireNonNull(content, "content must not be null");
                return duplicates(name, key, new Cooldown(window), content);
            }
            return duplicates(name, key, window, DEFAULT_DUPLICATE_CAPACITY, content);
        }

        /**
         * {@link #duplicates(String, KeyBy, Duration, Function)} with one key per {@code key} that remembers at most
         * {@code capacity} messages, whatever the key: when it holds that many, a new message makes it forget the
         * oldest early, so that a copy of that one would pass (see {@link DuplicateWindow}).
         *
         * @throws IllegalArgumentException if {@code capacity} is not in 1..{@value DuplicateWindow#MAX_CAPACITY}
         */
        public Builder<M> duplicates(
                String name,
                KeyBy key,
                Duration window,
                int capacity,
                Function<? super M, ? extends CharSequence> content) {
            Objects.requireNonNull(content, "content must not be null");
            Durations.positive("window", window);
            return duplicates(name, key, new DuplicateWindow(window, capacity), content);
        }

        /** A duplicates filter of {@code spec} (a window of items or a cooldown per content); callers check content. */
        private Builder<M> duplicates(
                String name, KeyBy key, LimitSpec spec, Function<? super M, ? extends CharSequence> content) {
            return stateful(new Stateful<>(checkedName(name), key(key), null, spec, Reason.DUPLICATE, true, content));
        }

        /** At most {@code limit} messages per aligned {@code window} ({@link FixedWindow}); {@link Reason#THROTTLED} */
        public Builder<M> throttle(String name, KeyBy key, long limit, Duration window) {
            return limit(name, key, new FixedWindow(limit, window));
        }

        /**
         * A {@link TokenBucket} of {@code capacity} refilled by {@code refillTokens} per {@code refillPeriod};
         * {@link Reason#RATE_LIMITED}.
         */
        public Builder<M> tokenBucket(String name, KeyBy key, long capacity, long refillTokens, Duration refillPeriod) {
            return limit(name, key, new TokenBucket(capacity, refillTokens, refillPeriod));
        }

        /**
         * At most {@code limit} messages in any interval of {@code window}, exactly ({@link SlidingWindowLog}); for
         * large limits pass a {@link SlidingWindowCounter} to {@link #limit(String, KeyBy, LimitSpec)}.
         */
        public Builder<M> slidingWindow(String name, KeyBy key, long limit, Duration window) {
            return limit(name, key, new SlidingWindowLog(limit, window));
        }

        /** After a message passes, nothing more passes for the key during {@code period}; {@link Reason#COOLDOWN}. */
        public Builder<M> cooldown(String name, KeyBy key, Duration period) {
            return limit(name, key, new Cooldown(period));
        }

        /**
         * A gate that nothing passes while it is closed by {@link Guard#pause}, for example after a platform's
         * retry_after or a moderator's timeout; {@link Reason#COOLDOWN}. Not scoped per handler.
         *
         * @throws IllegalArgumentException if {@code key} is {@link KeyBy#CHAT_USER}: {@link Guard#pause} takes one
         *     id, so nothing could close such a gate; key a gate per user in each chat by a custom key instead
         *     ({@link #limit(String, Function, LimitSpec)} with {@link Gate#INSTANCE})
         */
        public Builder<M> gate(String name, KeyBy key) {
            return stateful(
                    new Stateful<>(checkedName(name), key(key), null, Gate.INSTANCE, Reason.COOLDOWN, false, null));
        }

        /**
         * Any {@link LimitSpec} but a {@link DuplicateWindow} (whose steps carry the message's fingerprint: use {@link
         * #duplicates(String, KeyBy, Duration, int, Function)}), keyed by {@code key}. The reason follows the kind of
         * limit. Scoped per handler, but for a {@link Gate} or a {@link Membership}: those are about the user, as
         * {@link #gate} and the sets are.
         *
         * @throws IllegalArgumentException for a {@link DuplicateWindow}, a {@link Gate} or a {@link Membership} keyed
         *     by {@link KeyBy#CHAT_USER} (see {@link #gate}), or a {@link Membership} named {@code blocklist} or {@code
         *     registered}, whose set would be the blocklist's or the registrations'
         */
        public Builder<M> limit(String name, KeyBy key, LimitSpec spec) {
            return stateful(new Stateful<>(
                    limitName(name, spec), key(key), null, spec(spec), reasonOf(spec), scopedPerHandler(spec), null));
        }

        /**
         * Any {@link LimitSpec} but a {@link DuplicateWindow}, keyed by what {@code key} extracts from the message (a
         * {@code null} result means the message has no such key).
         *
         * @throws IllegalArgumentException for a {@link DuplicateWindow}, or a {@link Membership} named {@code
         *     blocklist} or {@code registered}, whose set would be the blocklist's or the registrations'
         */
        public Builder<M> limit(String name, Function<? super M, ?> key, LimitSpec spec) {
            Objects.requireNonNull(key, "key must not be null");
            return stateful(new Stateful<>(
                    limitName(name, spec),
                    KeyBy.GLOBAL,
                    key,
                    spec(spec),
                    reasonOf(spec),
                    scopedPerHandler(spec),
                    null));
        }

        /** Whether a filter of {@code spec} gets its own keys per handler scope: all but gates and sets. */
        private static boolean scopedPerHandler(LimitSpec spec) {
            return !administeredById(spec);
        }

        /** A custom local filter; runs before the stateful filters, in the order added; {@link Reason#CUSTOM}. */
        public Builder<M> filter(String name, Filter<? super M> filter) {
            Objects.requireNonNull(filter, "filter must not be null");
            claim(checkedName(name));
            locals.add(new Local<>(name, filter::allows, Reason.CUSTOM));
            return this;
        }

        /** Called for every rejected message. */
        public Builder<M> onReject(RejectListener<? super M> listener) {
            rejectListeners.add(Objects.requireNonNull(listener, "listener must not be null"));
            return this;
        }

        /**
         * Called for a rejected message at most once per {@code window} per user (or per chat for messages without a
         * user), through the storage so that every process agrees: the place to answer "slow down, try again in 7 s"
         * without answering every message of a flood. Storage failures skip the notice, unless a {@link
         * FailurePolicy#fallbackTo fallback} is set: it keeps the notice's cooldown while the storage is down, and
         * records the notices the storage lets through as well, so that a user told once is not told again within
         * the window when the storage fails or comes back (while it is down, each process's fallback keeps a window
         * of its own).
         */
        public Builder<M> rejectNotice(Duration window, RejectListener<? super M> listener) {
            Objects.requireNonNull(listener, "listener must not be null");
            if (notice != null) {
                throw new IllegalArgumentException("rejectNotice is already configured");
            }
            notice = new Notice<>(new Cooldown(Durations.positivePeriod("window", window)), listener);
            return this;
        }

        /** Observes every decision, for metrics. */
        public Builder<M> listener(GuardListener<? super M> listener) {
            listeners.add(Objects.requireNonNull(listener, "listener must not be null"));
            return this;
        }

        /** What to decide while the storage is unavailable; {@link FailurePolicy#failOpen()} by default. */
        public Builder<M> onStorageFailure(FailurePolicy policy) {
            this.failurePolicy = Objects.requireNonNull(policy, "policy must not be null");
            return this;
        }

        /**
         * Where {@link Guard#checkAsync} goes on once the storage answered: the decision listeners, the reject
         * listeners, the reject notice, the {@link FailurePolicy#fallbackTo fallback}'s calls, and the completion of
         * the stage it returned, so the caller's own continuations (a handler run in {@code thenAccept}) too, when
         * attached before the stage completed (one attached to a stage already complete runs in the caller's thread,
         * as with any {@code CompletableFuture}).
         * Without one (the default) they run on the thread that completed the storage's stage: for {@code
         * RedisStorage} a Lettuce event-loop thread, which the storage's other calls share, so that code there which
         * blocks (a notice sent with a blocking HTTP client, a database call, a slow log appender) holds up every
         * Redis call of the process meanwhile, and they time out. Set one when any of that code may block. An
         * executor that refuses a task (shut down), or throws anything else, is passed by: that code then runs where
         * it would without one, once, even if the executor ran the task before throwing.
         * {@link Guard#check} is not affected.
         */
        public Builder<M> asyncExecutor(Executor executor) {
            this.asyncExecutor = Objects.requireNonNull(executor, "executor must not be null");
            return this;
        }

        /**
         * The breaker: after {@code consecutiveFailures} failed storage calls, stop calling the storage for {@code
         * openFor}, then let one probe through. Defaults: 5 failures, 5 seconds.
         */
        public Builder<M> breaker(int consecutiveFailures, Duration openFor) {
            if (consecutiveFailures <= 0) {
                throw new IllegalArgumentException(
                        "consecutiveFailures must be positive but was " + consecutiveFailures);
            }
            this.breakerOpen = Durations.positive("openFor", openFor);
            this.breakerFailures = consecutiveFailures;
            return this;
        }

        /**
         * Builds the guard.
         *
         * @throws IllegalStateException if no storage was set, or a filter is keyed by an id that has no extractor
         */
        public Guard<M> build() {
            if (storage == null) {
                throw new IllegalStateException(
                        "storage must be set, for example MemoryStorage.create() from guard-storage-memory");
            }
            for (Stateful<M> f : statefuls) {
                if (f.customKey != null) {
                    continue;
                }
                if ((f.keyBy == KeyBy.USER || f.keyBy == KeyBy.CHAT_USER) && userId == null) {
                    throw new IllegalStateException(
                            "filter '" + f.name + "' is keyed by " + f.keyBy + " but no userId extractor is set");
                }
                if ((f.keyBy == KeyBy.CHAT || f.keyBy == KeyBy.CHAT_USER) && chatId == null) {
                    throw new IllegalStateException(
                            "filter '" + f.name + "' is keyed by " + f.keyBy + " but no chatId extractor is set");
                }
            }
            if (notice != null && userId == null && chatId == null) {
                throw new IllegalStateException("rejectNotice needs a userId or chatId extractor");
            }
            if (failurePolicy.fallback() == storage) {
                // It would fail whenever the storage does: the fallback would never decide anything.
                throw new IllegalStateException("the fallback storage must not be the guard's own storage " + storage);
            }
            return new Guard<>(new Plan<>(this), "");
        }

        private Builder<M> stateful(Stateful<M> filter) {
            if (filter.spec instanceof Gate && filter.customKey == null && filter.keyBy == KeyBy.CHAT_USER) {
                // pause(...) closes a gate for one id; a key of two ids would be a gate that never closes.
                throw new IllegalArgumentException("key of gate '" + filter.name + "' must not be CHAT_USER: pause"
                        + " closes a gate for one id; for one per user in each chat, use a custom key, as in limit(\""
                        + filter.name + "\", m -> chat + \"/\" + user, Gate.INSTANCE)");
            }
            if (filter.spec instanceof Membership && filter.customKey == null && filter.keyBy == KeyBy.CHAT_USER) {
                // members(name) fills a set with ids; a key of two ids would be a set nobody can fill.
                throw new IllegalArgumentException("key of membership filter '" + filter.name + "' must not be"
                        + " CHAT_USER: members(name) adds one id; for one entry per user in each chat, use a custom"
                        + " key, as in limit(\"" + filter.name + "\", m -> chat + \"/\" + user, spec)");
            }
            claim(filter.name);
            statefuls.add(filter);
            return this;
        }

        private void claim(String name) {
            if (name.equals(STORAGE_FILTER) || name.equals(UNREADABLE_TENANT.filter())) {
                // Decisions of a failing storage and of an unreadable tenant carry these names: a filter of the same
                // name could not be told apart from them (in a decision, or in the metrics' filter tag).
                throw new IllegalArgumentException("filter name must not be '" + name
                        + "', which Guard gives the decisions of a failing storage ('storage') and of a message whose"
                        + " tenant cannot be read ('tenant'), but was '" + name + "'");
            }
            if (!names.add(name)) {
                throw new IllegalArgumentException("filter '" + name + "' is already configured");
            }
        }

        private static String checkedName(String name) {
            return Subjects.checkName("filter name", name);
        }

        /**
         * The name of a filter added by {@code limit(...)}: a {@link Membership} keeps its set under {@code "set:" +
         * name}, as the blocklist and the registrations do, so it must not take their names (it would be their set).
         */
        private static String limitName(String name, LimitSpec spec) {
            checkedName(name);
            if (spec instanceof Membership && name.equals(BLOCKLIST_SET)) {
                throw new IllegalArgumentException("membership filter name must not be '" + BLOCKLIST_SET
                        + "', the name of the blocklist's set (blocklist(), guard.blocklist()), but was '" + name
                        + "'");
            }
            if (spec instanceof Membership && name.equals(REGISTERED_SET)) {
                throw new IllegalArgumentException("membership filter name must not be '" + REGISTERED_SET
                        + "', the name of the registrations' set (requireRegistration(), guard.registrations()), but"
                        + " was '" + name + "'");
            }
            return name;
        }

        private static KeyBy key(KeyBy key) {
            return Objects.requireNonNull(key, "key must not be null");
        }

        private static LimitSpec spec(LimitSpec spec) {
            Objects.requireNonNull(spec, "spec must not be null");
            if (spec instanceof DuplicateWindow) {
                // Its steps carry each message's fingerprint, which only a duplicates filter computes.
                throw new IllegalArgumentException("a DuplicateWindow needs the message's content: use duplicates(name,"
                        + " key, window, capacity, content) instead of limit(...) for " + spec);
            }
            return spec;
        }

        private static Reason reasonOf(LimitSpec spec) {
            if (spec instanceof FixedWindow) {
                return Reason.THROTTLED;
            }
            if (spec instanceof Cooldown || spec instanceof Gate) {
                return Reason.COOLDOWN;
            }
            if (spec instanceof Membership m) {
                return m.required() ? Reason.UNREGISTERED : Reason.BLOCKED;
            }
            return Reason.RATE_LIMITED;
        }
    }
}
