package dev.guard.storage.redis;

import dev.guard.limit.DuplicateWindow;
import dev.guard.limit.LimitSpec;
import dev.guard.spi.Batch;
import dev.guard.spi.BatchResult;
import dev.guard.spi.GuardStorageException;
import dev.guard.spi.StateKey;
import dev.guard.spi.Step;
import dev.guard.spi.Storage;
import dev.guard.spi.StorageHealth;
import dev.guard.spi.VersionedRecord;
import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.KeyScanCursor;
import io.lettuce.core.KeyValue;
import io.lettuce.core.LettuceFutures;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.ScanArgs;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.SlotHash;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisAdvancedClusterAsyncCommands;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.cluster.models.partitions.RedisClusterNode;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import io.netty.util.internal.ThreadExecutorMap;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Guard's state in Redis, through Lettuce: standalone, Sentinel (the master it names) or Cluster. Several bot
 * processes that share one Redis share one set of limits.
 *
 * <pre>{@code
 * Storage storage = RedisStorage.create("redis://127.0.0.1:6379");
 *
 * Storage tuned = RedisStorage.builder("redis://127.0.0.1:6379")
 *         .keyPrefix("mybot:")
 *         .timeout(Duration.ofMillis(200))
 *         .build();
 * }</pre>
 *
 * <p><b>One round trip per decision.</b> {@link #evaluate} sends the whole batch to one Lua function that evaluates
 * every step with the reference semantics of its {@link LimitSpec} and commits all-or-nothing, atomically: one {@code
 * FCALL} of Guard's Redis Functions library, which {@link Builder#build()} loads (on every master of a Cluster) and
 * which is loaded again when a server answers {@code Function not found}. On a server without Functions (before Redis
 * 7) the same code runs as scripts, one {@code EVALSHA} each, sent in full only when a server answers {@code
 * NOSCRIPT}. In a Cluster a batch whose keys span slots runs one call per slot at once, with a refund when a slot
 * rejects: see the package documentation. The functions are registered as writing (decisions write), so a server
 * that refuses writes (at {@code maxmemory} with {@code noeviction}, or short of {@code min-replicas-to-write})
 * refuses every call, rejections and membership reads included, where scripts failed only on an actual write: the
 * {@link dev.guard.FailurePolicy} then decides.
 *
 * <p><b>Busy threads can share calls.</b> With {@link Builder#concurrentCalls(int)} set low (1 suits many threads on
 * a Redis nearby), at most that many decision calls are in flight at once; a decision that arrives while they are
 * waits, and when a call returns, the decisions waiting then go together in one {@code FCALL}, which decides each
 * all-or-nothing, one after the other in the order they came, as if each had been a call of its own (a decision that
 * fails there, on a key of another type say, fails alone). Redis and the connection then handle one command for many
 * decisions, at the price of a wait for the decisions that arrive while the calls are busy (until a call returns,
 * longer when more wait than a call takes). By default (1024 calls) in practice nothing waits. Either way the calls go
 * out in the order their decisions came, so a later decision of a key never overtakes an earlier one (a batch across
 * Cluster slots takes its turn too).
 *
 * <p><b>Time.</b> Decisions use the {@code nowMicros} the caller passes, unless {@link Builder#serverTime(boolean)}
 * is set: then every call reads the Redis server's {@code TIME}, so processes with skewed clocks agree, and the
 * deadlines callers set (gates, memberships) count from the caller's {@code nowMicros} on Redis' clock. Every key
 * expires when its state would equal absent ({@code SET ... PX}, rounded up to the millisecond) plus a {@link
 * Builder#expiryMargin margin} that absorbs clock differences between the callers and Redis.
 *
 * <p><b>Failures.</b> Every command answers or throws {@link GuardStorageException} within the {@link
 * Builder#timeout(Duration) timeout} (500 ms by default); a batch that spans Cluster slots may take up to twice it
 * plus 100 ms (its refund), a call that loads Guard's code into a Redis that lost it twice it, and {@code forget}
 * one timeout per page of keys. When the storage opens its own client (from a URI), a lost connection rejects
 * commands at once instead of queueing them, and a command in flight when the connection broke fails instead of being
 * replayed later; Lettuce reconnects in the background, so the storage recovers by itself when Redis is back. A client
 * or a connection you pass in keeps the options you gave it; with Lettuce's defaults it queues commands while
 * disconnected and sends them after reconnecting, but never a Lua call whose caller the storage already failed (timed
 * out): that call is cancelled, so it cannot take permits later.
 *
 * <p>Thread-safe: one storage serves every thread of a process over one multiplexed connection.
 */
public final class RedisStorage implements Storage {
    static final String BACKEND = "redis";
    private static final byte[] VERSION = LuaArgs.ascii("v");
    private static final byte[] DATA = LuaArgs.ascii("d");
    private static final int SCAN_PAGE = 1_000;

    /**
     * The longest {@link #close()} waits for each part the storage opened (its connection, its client, the client's
     * threads) to shut down. Netty's shutdown of an event loop can stall for ever (a known Lettuce and Netty hang, seen
     * here once after Redis was restarted); the part is then left to finish in the background rather than hold the
     * caller's thread.
     */
    static final Duration RELEASE_WAIT = Duration.ofSeconds(5);

    private static final Logger LOG = LoggerFactory.getLogger(RedisStorage.class);

    private final RedisClusterAsyncCommands<byte[], byte[]> commands;
    private final LuaCalls lua;
    private final boolean cluster;
    private final RedisKeys keys;
    private final long timeoutNanos;
    private final byte[] margin;
    private final boolean serverTime;
    private final CombinedCalls calls;
    private final String description;
    private final List<Runnable> owned;
    private final ClientResources resources;
    private final AtomicBoolean closed = new AtomicBoolean();

    private RedisStorage(Builder builder, Connected connected, LuaCalls lua) {
        this.commands = connected.commands;
        this.lua = lua;
        this.cluster = connected.cluster;
        this.description = connected.description;
        this.owned = connected.owned;
        this.resources = connected.resources;
        this.keys = new RedisKeys(builder.keyPrefix, builder.singleSlot);
        this.timeoutNanos = builder.timeout.toNanos();
        this.margin = LuaArgs.number(builder.expiryMargin.toMillis());
        this.serverTime = builder.serverTime;
        this.calls = new CombinedCalls(lua, margin, builder.concurrentCalls, connected.cluster);
    }

    /**
     * A storage on the Redis at {@code uri} with the defaults: {@code redis://host:port} (standalone, or any node of a
     * Cluster, which is detected), {@code rediss://} for TLS, {@code redis-sentinel://host:port#master} for Sentinel;
     * a user name or password that holds {@code #}, {@code ?} or {@code /} percent-encoded ({@code %23}, {@code %3F},
     * {@code %2F}).
     *
     * @throws IllegalArgumentException if {@code uri} is not a Redis URI (one host with a port from 1 to 65535, if any:
     *     for a Cluster any one of its nodes), or holds one of those characters unencoded before its {@code @}
     * @throws GuardStorageException if Redis cannot be reached, or refuses the login (the message then gives Redis'
     *     answer, such as {@code WRONGPASS}); the failure policy applies to decisions, not to building
     */
    public static RedisStorage create(String uri) {
        return builder(uri).build();
    }

    /**
     * A builder for a storage on the Redis at {@code uri} (see {@link #create(String)}); the storage owns its client.
     */
    public static Builder builder(String uri) {
        if (uri == null || uri.isBlank()) {
            throw new IllegalArgumentException(
                    "uri must not be blank but was " + (uri == null ? "null" : "'" + uri + "'"));
        }
        return new Builder(b -> b.connectUri(uri));
    }

    /**
     * A builder for a storage over a connection it opens from {@code client} (standalone or Sentinel, per the client's
     * URI). Closing the storage closes that connection, not the client. The client's options apply: for quick failure
     * when Redis is down, give it {@code ClientOptions.disconnectedBehavior(REJECT_COMMANDS)}.
     */
    public static Builder builder(RedisClient client) {
        Objects.requireNonNull(client, "client must not be null");
        return new Builder(b -> {
            StatefulRedisConnection<byte[], byte[]> c = client.connect(ByteArrayCodec.INSTANCE);
            return new Connected(
                    c.async(), false, "redis standalone", List.of(closing("the Redis connection", c)), null);
        });
    }

    /**
     * A builder for a storage over a connection it opens from the Cluster {@code client}; see {@link
     * #builder(RedisClient)}.
     */
    public static Builder builder(RedisClusterClient client) {
        Objects.requireNonNull(client, "client must not be null");
        return new Builder(b -> {
            StatefulRedisClusterConnection<byte[], byte[]> c = client.connect(ByteArrayCodec.INSTANCE);
            return new Connected(
                    c.async(), true, "redis cluster", List.of(closing("the Redis Cluster connection", c)), null);
        });
    }

    /**
     * Closes {@code connection} (which {@code StatefulConnection.close()} would wait for without a bound), waiting at
     * most {@link #RELEASE_WAIT}.
     */
    private static Runnable closing(String what, StatefulConnection<?, ?> connection) {
        return () -> awaitReleased(what, connection.closeAsync(), RELEASE_WAIT);
    }

    /**
     * Shuts down {@code client} (no quiet period, Netty's 2 s to finish), the storage's own, waiting at most {@link
     * #RELEASE_WAIT}.
     */
    private static Runnable shuttingDown(String what, AbstractRedisClient client) {
        return () -> awaitReleased(what, client.shutdownAsync(0, 2, TimeUnit.SECONDS), RELEASE_WAIT);
    }

    /** A builder for a storage over {@code connection}, which stays yours: closing the storage leaves it open. */
    public static Builder builder(StatefulRedisConnection<byte[], byte[]> connection) {
        Objects.requireNonNull(connection, "connection must not be null");
        return new Builder(b -> new Connected(connection.async(), false, "redis standalone", List.of(), null));
    }

    /** A builder for a storage over the Cluster {@code connection}, which stays yours. */
    public static Builder builder(StatefulRedisClusterConnection<byte[], byte[]> connection) {
        Objects.requireNonNull(connection, "connection must not be null");
        return new Builder(b -> new Connected(connection.async(), true, "redis cluster", List.of(), null));
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Decisions

    /**
     * {@inheritDoc}
     *
     * <p>One {@code FCALL} ({@code EVALSHA} before Redis 7; in a Cluster: one per slot the keys span, sent at once).
     *
     * @throws IllegalArgumentException if {@code nowMicros} is not between 0 and 2<sup>53</sup>, or {@code nowMicros}
     *     plus a step's window or period (a sliding counter's window and one bucket) reaches 2<sup>53</sup>, past which
     *     Lua's numbers are not exact (with {@link Builder#serverTime(boolean)}, checked on {@code nowMicros}), or a
     *     {@link DuplicateWindow}'s item (the step's permits) is not below 2<sup>53</sup>
     */
    @Override
    public BatchResult evaluate(Batch batch, long nowMicros) {
        Objects.requireNonNull(batch, "batch must not be null");
        checkNow(nowMicros);
        checkExact(batch, nowMicros);
        byte[][] stateKeys = stateKeys(batch);
        if (cluster && batch.size() > 1) {
            int[][] groups = CrossSlotBatch.groups(stateKeys);
            if (groups.length > 1) {
                return decodeOutcomes(
                        submitAndWait(acrossSlots(batch, stateKeys, groups, nowMicros), crossSlotTimeoutNanos()),
                        nowMicros);
            }
        }
        return decodeOutcomes(decide(decision("evaluate", stateKeys, batch, nowMicros)), nowMicros);
    }

    /**
     * {@inheritDoc} Never waits for Redis (at most, briefly, for another thread that is handing calls to the
     * connection); the stage completes on a Lettuce thread, or when it times out or its call failed as it was sent on
     * a thread of {@link CompletableFuture}'s default async pool (never on the JDK's one timer thread, which a
     * continuation that blocked would hold up for every timeout of the process).
     *
     * @throws IllegalArgumentException as {@link #evaluate} does, before sending
     */
    @Override
    public CompletionStage<BatchResult> evaluateAsync(Batch batch, long nowMicros) {
        Objects.requireNonNull(batch, "batch must not be null");
        checkNow(nowMicros);
        checkExact(batch, nowMicros);
        byte[][] stateKeys = stateKeys(batch);
        try {
            if (cluster && batch.size() > 1) {
                int[][] groups = CrossSlotBatch.groups(stateKeys);
                if (groups.length > 1) {
                    return async(
                            acrossSlots(batch, stateKeys, groups, nowMicros),
                            crossSlotTimeoutNanos(),
                            "evaluate",
                            outcomes -> decodeOutcomes(outcomes, nowMicros));
                }
            }
            return async(
                    decision("evaluate", stateKeys, batch, nowMicros),
                    timeoutNanos,
                    "evaluate",
                    r -> decodeOutcomes(r, nowMicros));
        } catch (RuntimeException e) {
            // Lettuce may refuse a command by throwing instead of failing its future (a closed client's timer).
            return CompletableFuture.failedFuture(failure("evaluate", e));
        }
    }

    /**
     * {@inheritDoc} One {@code FCALL} ({@code EVALSHA} before Redis 7), answering one integer, or a share of a call
     * with other decisions (see the class's notes).
     *
     * @throws IllegalArgumentException as {@link #evaluate} does
     */
    @Override
    public long acquire(StateKey key, LimitSpec spec, long permits, long nowMicros) {
        Step step = new Step(key, spec, permits);
        checkNow(nowMicros);
        checkExact(0, step, nowMicros);
        byte[][] stateKeys = {keys.state(key)};
        CombinedCalls.Decision decision = new CombinedCalls.Decision(
                "acquire", stateKeys, new byte[][] {LuaArgs.step(step)}, nowArg(nowMicros), slot(stateKeys));
        return LuaArgs.outcome(decide(decision)[0], nowMicros);
    }

    /** A decision for the combined calls: {@code batch}'s steps on {@code stateKeys}, all in one slot. */
    private CombinedCalls.Decision decision(String operation, byte[][] stateKeys, Batch batch, long nowMicros) {
        byte[][] steps = new byte[batch.size()][];
        for (int i = 0; i < steps.length; i++) {
            steps[i] = LuaArgs.step(batch.step(i));
        }
        return new CombinedCalls.Decision(operation, stateKeys, steps, nowArg(nowMicros), slot(stateKeys));
    }

    /**
     * A batch across Cluster slots ({@code groups}), which takes its turn among the combined calls so that it never
     * overtakes an earlier decision of one of its keys, and then goes alone.
     */
    private CombinedCalls.Decision acrossSlots(Batch batch, byte[][] stateKeys, int[][] groups, long nowMicros) {
        byte[] now = nowArg(nowMicros);
        return CombinedCalls.Decision.acrossSlots(
                "evaluate",
                batch.size(),
                () -> CrossSlotBatch.evaluate(lua, batch, stateKeys, groups, now, margin, timeoutNanos));
    }

    /** The Cluster slot of {@code stateKeys} (all in one), 0 outside a Cluster. */
    private int slot(byte[][] stateKeys) {
        return cluster ? SlotHash.getSlot(stateKeys[0]) : 0;
    }

    /**
     * Sends {@code decision} in a call of its own or shared, and waits for its raw outcomes at most the timeout; a
     * decision still waiting for its call then (or when the thread is interrupted) is withdrawn, never sent.
     */
    private long[] decide(CombinedCalls.Decision decision) {
        if (calls.claim()) {
            try {
                Object reply = script(
                        decision.operation,
                        RedisScript.EVALUATE,
                        CombinedCalls.aloneType(decision),
                        decision.keys,
                        calls.aloneArgs(decision));
                return CombinedCalls.outcomes(reply, 0, decision.steps.length);
            } catch (IllegalStateException e) {
                throw failure(decision.operation, e);
            } finally {
                calls.release();
            }
        }
        return submitAndWait(decision, timeoutNanos);
    }

    /**
     * Submits {@code decision} and waits for its raw outcomes at most {@code withinNanos}; a decision still waiting
     * for its call then (or when the thread is interrupted) is withdrawn.
     */
    private long[] submitAndWait(CombinedCalls.Decision decision, long withinNanos) {
        CompletableFuture<long[]> reply = calls.submit(decision);
        String operation = decision.operation;
        try {
            return reply.get(withinNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            CombinedCalls.giveUp(decision, e);
            Thread.currentThread().interrupt();
            throw failure(operation, e);
        } catch (TimeoutException e) {
            CombinedCalls.giveUp(decision, e);
            throw failure(operation, e);
        } catch (ExecutionException e) {
            throw failure(operation, e);
        }
    }

    private byte[][] stateKeys(Batch batch) {
        byte[][] stateKeys = new byte[batch.size()][];
        for (int i = 0; i < stateKeys.length; i++) {
            stateKeys[i] = keys.state(batch.step(i).key());
        }
        return stateKeys;
    }

    private static BatchResult decodeOutcomes(long[] replies, long nowMicros) {
        for (int i = 0; i < replies.length; i++) {
            replies[i] = LuaArgs.outcome(replies[i], nowMicros);
        }
        return BatchResult.of(replies);
    }

    private byte[] nowArg(long nowMicros) {
        return serverTime ? LuaArgs.EMPTY : LuaArgs.number(nowMicros);
    }

    private static void checkNow(long nowMicros) {
        if (nowMicros < 0 || nowMicros >= LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException("nowMicros must be between 0 and 2^53 but was " + nowMicros);
        }
    }

    private static void checkExact(Batch batch, long nowMicros) {
        for (int i = 0; i < batch.size(); i++) {
            checkExact(i, batch.step(i), nowMicros);
        }
    }

    /**
     * Refuses a step whose Lua arithmetic would pass 2^53 (a period of decades at today's clock), where Lua's doubles
     * round: Redis would store a deadline off by some micros where the reference is exact. Both terms are below 2^53,
     * so their sum cannot overflow. Refuses a duplicate window's item (its permits) outside [0, 2^53) as the reference
     * does, naming the value: Lua would compare it rounded.
     */
    private static void checkExact(int index, Step step, long nowMicros) {
        if (step.spec() instanceof DuplicateWindow) {
            DuplicateWindow.item(step.permits());
        }
        long reach = LuaArgs.reach(step.spec());
        if (nowMicros + reach >= LimitSpec.EXACT_LIMIT) {
            throw new IllegalArgumentException("step " + index + " (" + step.spec() + ") reaches nowMicros " + nowMicros
                    + " + " + reach + " = " + (nowMicros + reach)
                    + " micros, past 2^53 where Redis' Lua numbers are not exact; use a shorter period");
        }
    }

    /** Deadlines past 2^53 micros (the year 2255) mean never; long before the epoch, long over. */
    private static long clampDeadline(long micros) {
        if (micros >= LimitSpec.EXACT_LIMIT) {
            return Long.MAX_VALUE;
        }
        return Math.max(micros, 1 - LimitSpec.EXACT_LIMIT);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Gates, sets, records

    /**
     * {@inheritDoc}
     *
     * <p>The key expires after the deadline minus {@code nowMicros}, plus the {@link Builder#expiryMargin margin}; a
     * deadline past 2<sup>53</sup> microseconds (the year 2255) means never. One round trip.
     *
     * <p>With {@link Builder#serverTime(boolean)} the gate lives on Redis' clock, where decisions read it: it closes
     * {@code untilMicros - nowMicros} after Redis' {@code TIME} (a 429's retry_after of 10 s gates for 10 s however far
     * the caller's clock is off), merges there with the deadline in force, and expires that long after {@code TIME}
     * plus the margin. The answer is on the caller's clock again: {@code untilMicros} itself when it is the later
     * one, else the deadline in force as long after {@code nowMicros} as it is after {@code TIME}, so that the caller
     * can keep its own books in its own time. A deadline that lands past 2<sup>53</sup> microseconds on Redis' clock
     * (over two centuries away) means never, and so does an answer that would land past it on the caller's.
     *
     * <p>Only a gate's deadline in force merges, as on every backend: the stored text of a deadline carries a mark of
     * the kind that wrote it, and a cooldown's or a membership's at the key (where a deploy changed the filter's kind)
     * is replaced. One number without a mark merges too, where the other backends would not merge: a deadline that a
     * version before the mark wrote, for a gate or for those kinds alike, merges as it did then, so that an upgrade
     * never ends a gate early; and a sliding log's one timestamp merges when it lies after both {@code nowMicros} and
     * {@code untilMicros} (a caller whose clock is behind the log's).
     *
     * @throws IllegalArgumentException if {@code nowMicros} is not between 0 and 2<sup>53</sup>
     */
    @Override
    public long raiseGate(StateKey key, long untilMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        checkNow(nowMicros);
        long clamped = clampDeadline(untilMicros);
        byte[] deadline = LuaArgs.deadline(clamped);
        Long reply = script(
                "raiseGate",
                RedisScript.GATE,
                ScriptOutputType.INTEGER,
                new byte[][] {keys.state(key)},
                serverTime
                        ? new byte[][] {deadline, LuaArgs.EMPTY, margin, LuaArgs.number(nowMicros)}
                        : new byte[][] {deadline, LuaArgs.number(nowMicros), margin});
        long merged = LuaArgs.deadlineOf(reply);
        // A deadline before -2^53 went as -2^53+1. Redis never holds a deadline that low (it keeps none at or before a
        // now, which is never negative), so that answer means nothing later was set: the deadline in force is the one
        // passed, exactly, as the reference answers it.
        return untilMicros < clamped && merged == clamped ? untilMicros : merged;
    }

    /**
     * {@inheritDoc}
     *
     * <p>The key expires after {@code expiresAtMicros} minus {@code nowMicros}, plus the {@link Builder#expiryMargin
     * margin}; a membership that is already over is not stored (and an earlier one is deleted); an expiry past
     * 2<sup>53</sup> microseconds (the year 2255) means never. One round trip.
     *
     * <p>With {@link Builder#serverTime(boolean)} the membership lives on Redis' clock, where decisions and {@link
     * #isMember} read it: it ends {@code expiresAtMicros - nowMicros} after Redis' {@code TIME} (a ban of an hour lasts
     * an hour however far the caller's clock is off), and one whose expiry is at or before {@code nowMicros} is not
     * stored, as without; an expiry that lands past 2<sup>53</sup> microseconds on Redis' clock (over two centuries
     * away) means never.
     *
     * @throws IllegalArgumentException if {@code nowMicros} is not between 0 and 2<sup>53</sup>
     */
    @Override
    public void addMember(StateKey key, long expiresAtMicros, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        checkNow(nowMicros);
        byte[] expiry = LuaArgs.deadline(clampDeadline(expiresAtMicros));
        script(
                "addMember",
                RedisScript.MEMBER,
                ScriptOutputType.INTEGER,
                new byte[][] {keys.state(key)},
                serverTime
                        ? new byte[][] {LuaArgs.ADD, expiry, LuaArgs.EMPTY, margin, LuaArgs.number(nowMicros)}
                        : new byte[][] {LuaArgs.ADD, expiry, LuaArgs.number(nowMicros), margin});
    }

    /** {@inheritDoc} One {@code DEL}. */
    @Override
    public boolean removeMember(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        return this.<Long>call("removeMember", () -> commands.del(keys.state(key))) > 0;
    }

    /** {@inheritDoc} One round trip. */
    @Override
    public boolean isMember(StateKey key, long nowMicros) {
        Objects.requireNonNull(key, "key must not be null");
        checkNow(nowMicros);
        Long reply = script(
                "isMember",
                RedisScript.MEMBER,
                ScriptOutputType.INTEGER,
                new byte[][] {keys.state(key)},
                LuaArgs.IS,
                nowArg(nowMicros));
        return reply == 1;
    }

    /** {@inheritDoc} One {@code HMGET}. */
    @Override
    public Optional<VersionedRecord> getRecord(StateKey key) {
        Objects.requireNonNull(key, "key must not be null");
        List<KeyValue<byte[], byte[]>> fields =
                call("getRecord", () -> commands.hmget(keys.record(key), VERSION, DATA));
        if (fields.size() < 2 || !fields.get(0).hasValue() || !fields.get(1).hasValue()) {
            return Optional.empty();
        }
        long version = Long.parseLong(new String(fields.get(0).getValue(), StandardCharsets.US_ASCII));
        return Optional.of(new VersionedRecord(fields.get(1).getValue(), version));
    }

    /** {@inheritDoc} One round trip; a compare-and-set inside Redis. */
    @Override
    public long putRecord(StateKey key, byte[] value, long expectedVersion) {
        Objects.requireNonNull(key, "key must not be null");
        Objects.requireNonNull(value, "value must not be null");
        if (expectedVersion < 0) {
            throw new IllegalArgumentException("expectedVersion must not be negative but was " + expectedVersion);
        }
        Long reply = script(
                "putRecord",
                RedisScript.RECORD,
                ScriptOutputType.INTEGER,
                new byte[][] {keys.record(key)},
                LuaArgs.number(expectedVersion),
                value);
        return reply;
    }

    /**
     * {@inheritDoc}
     *
     * <p>{@code SCAN}s for the subject's keys (over every master of a Cluster) and deletes them page by page: a
     * round trip per page of 1,000 keys scanned, each within the timeout. Not atomic: state that a concurrent decision
     * writes while the scan runs may survive.
     */
    @Override
    public long forget(String subject) {
        Objects.requireNonNull(subject, "subject must not be null");
        ScanArgs args = ScanArgs.Builder.matches(keys.subjectPattern(subject)).limit(SCAN_PAGE);
        long removed = 0;
        KeyScanCursor<byte[]> cursor = call("forget", () -> commands.scan(args));
        while (true) {
            List<byte[]> found = cursor.getKeys();
            if (!found.isEmpty()) {
                byte[][] batch = found.toArray(new byte[0][]);
                removed += this.<Long>call("forget", () -> commands.del(batch));
            }
            if (cursor.isFinished()) {
                return removed;
            }
            KeyScanCursor<byte[]> previous = cursor;
            cursor = call("forget", () -> commands.scan(previous, args));
        }
    }

    /**
     * {@inheritDoc} One {@code PING}, within the timeout. In a Cluster one {@code PING} to every master that serves
     * slots in the client's view of the topology, all sent at once and awaited together within the timeout: down when
     * any of them fails or does not answer, naming each such master by host and port, since every decision on its
     * slots fails.
     */
    @Override
    public StorageHealth health() {
        long start = System.nanoTime();
        if (cluster && commands instanceof RedisAdvancedClusterAsyncCommands<byte[], byte[]> clusterCommands) {
            return clusterHealth(clusterCommands, start);
        }
        try {
            call("health", commands::ping);
            return StorageHealth.up(Duration.ofNanos(System.nanoTime() - start), description);
        } catch (GuardStorageException e) {
            return down(start, e);
        }
    }

    /** A down report of a health check begun at {@code start} that failed with {@code failure}. */
    private StorageHealth down(long start, GuardStorageException failure) {
        return StorageHealth.down(
                Duration.ofNanos(System.nanoTime() - start), description + ": " + failure.getMessage());
    }

    /** Pings every master that serves slots, through the cluster connection's own connections to them. */
    private StorageHealth clusterHealth(RedisAdvancedClusterAsyncCommands<byte[], byte[]> clusterCommands, long start) {
        // Sorted by address, so that a report names the same masters in the same order every time.
        Map<String, CompletableFuture<String>> pings = new TreeMap<>();
        try {
            clusterCommands
                    .nodes(node -> node.is(RedisClusterNode.NodeFlag.UPSTREAM) && !node.hasNoSlots())
                    .commands()
                    .ping()
                    .asMap()
                    .forEach((node, ping) -> pings.put(address(node), ping));
            CompletableFuture.allOf(pings.values().toArray(new CompletableFuture<?>[0]))
                    .get(Math.max(0, timeoutNanos - (System.nanoTime() - start)), TimeUnit.NANOSECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // Some master failed or is still silent: each ping is read below.
        } catch (InterruptedException | RuntimeException e) {
            // Interrupted, or a closed client that refuses to select nodes or to send.
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            return down(start, failure("health", e));
        }
        Map<String, String> unreachable = new LinkedHashMap<>();
        pings.forEach((address, ping) -> {
            if (!ping.isDone()) {
                unreachable.put(address, reason(new TimeoutException(), timeoutNanos));
            } else if (ping.isCompletedExceptionally()) {
                unreachable.put(
                        address,
                        reason(LuaCalls.unwrap(ping.handle((ok, e) -> e).join()), timeoutNanos));
            }
        });
        if (!unreachable.isEmpty() && closed.get()) {
            return down(start, new GuardStorageException(BACKEND, "health", "the storage is closed", null));
        }
        return clusterHealth(description, pings.size(), unreachable, Duration.ofNanos(System.nanoTime() - start));
    }

    /**
     * The health of a Cluster whose {@code masters} masters were pinged, of which {@code unreachable} (address to
     * reason) failed: up when none did.
     */
    static StorageHealth clusterHealth(
            String description, int masters, Map<String, String> unreachable, Duration latency) {
        if (masters == 0) {
            return StorageHealth.down(
                    latency, description + ": redis health failed: no master serves slots in the client's topology");
        }
        if (unreachable.isEmpty()) {
            return StorageHealth.up(latency, description);
        }
        StringBuilder detail = new StringBuilder(description)
                .append(": redis health failed: ")
                .append(unreachable.size())
                .append(" of ")
                .append(masters)
                .append(" masters unreachable: ");
        String separator = "";
        for (Map.Entry<String, String> master : unreachable.entrySet()) {
            detail.append(separator)
                    .append(master.getKey())
                    .append(" (")
                    .append(master.getValue())
                    .append(')');
            separator = ", ";
        }
        return StorageHealth.down(latency, detail.toString());
    }

    /** A master's host and port (never its URI, which may hold a password); its id when the topology has no address. */
    private static String address(RedisClusterNode node) {
        RedisURI uri = node.getUri();
        return uri == null ? "node " + node.getNodeId() : uri.getHost() + ":" + uri.getPort();
    }

    /**
     * Closes the connection and the client the storage opened itself; a connection or client you passed in stays open.
     * Idempotent. Calls that fail after it (all of them, on a storage that opened its own client) throw {@link
     * GuardStorageException} saying {@code the storage is closed}, and {@link #health()} reports it down so.
     *
     * <p>Waits at most 5 s for each part to shut down (Netty's shutdown can stall), and not at all when called on a
     * Netty event loop (in a callback of Lettuce's, say), whose thread the shutdown may need: the parts then shut
     * down in the background.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            calls.close();
            releaseAll(owned);
        }
    }

    /** Runs each release in order; one that throws is logged, and the ones after it still run. */
    static void releaseAll(List<Runnable> releases) {
        for (Runnable release : releases) {
            try {
                release.run();
            } catch (RuntimeException e) {
                LOG.warn("closing the Redis storage: a part failed to close ({}); closing the rest", e.toString());
            }
        }
    }

    /**
     * Waits up to {@code within} for {@code what} to have shut down: true when it did (or failed to, which is logged),
     * false when the wait ended first (timed out or interrupted; the interrupt is kept) or did not begin (the caller
     * runs on a Netty event loop, which the shutdown may need), and the shutdown goes on in the background.
     */
    static boolean awaitReleased(String what, Future<?> shutdown, Duration within) {
        if (ThreadExecutorMap.currentExecutor() != null && !shutdown.isDone()) {
            // On a Netty event loop (a bot that closes the storage in a callback of Lettuce's): the loop may be the
            // one that has to finish the shutdown, which it cannot do while this waits. Waiting would only end at
            // the bound.
            LOG.info("closing {} on a Netty event loop: not waiting for it; it shuts down in the background", what);
            return false;
        }
        try {
            shutdown.get(within.toNanos(), TimeUnit.NANOSECONDS);
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            LOG.warn("closing {}: interrupted before it shut down; it goes on shutting down in the background", what);
            return false;
        } catch (TimeoutException e) {
            LOG.warn("closing {}: not shut down within {}; it goes on shutting down in the background", what, within);
            return false;
        } catch (ExecutionException | CancellationException e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            LOG.warn("closing {} failed: {}", what, cause.toString());
            return true;
        }
    }

    @Override
    public String toString() {
        return "RedisStorage[" + description + "]";
    }

    /** How many decisions wait for a call now (see {@link Builder#concurrentCalls}). For tests. */
    int waitingDecisions() {
        return calls.waitingCount();
    }

    /** The Lettuce resources the storage created (their event bus reports reconnections), or null. For tests. */
    ClientResources resources() {
        return resources;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Calls

    private <T> T script(
            String operation, RedisScript script, ScriptOutputType type, byte[][] scriptKeys, byte[]... args) {
        try {
            if (lua.reloading()) {
                // Behind the calls that wait for the library to be loaded again (see LuaCalls.run).
                return lua.<T>run(script, type, scriptKeys, args)
                        .orTimeout(timeoutNanos, TimeUnit.NANOSECONDS)
                        .join();
            }
            try {
                return await(lua.<T>send(script, type, scriptKeys, args));
            } catch (RuntimeException e) {
                if (!lua.recoverable(e)) {
                    throw e;
                }
                return lua.<T>resend(script, type, scriptKeys, args)
                        .orTimeout(timeoutNanos, TimeUnit.NANOSECONDS)
                        .join();
            }
        } catch (RuntimeException e) {
            throw failure(operation, e);
        }
    }

    private <T> T call(String operation, Supplier<RedisFuture<T>> command) {
        try {
            return await(command.get());
        } catch (RuntimeException e) {
            throw failure(operation, e);
        }
    }

    private <T> T await(RedisFuture<T> future) {
        return LettuceFutures.awaitOrCancel(future, timeoutNanos, TimeUnit.NANOSECONDS);
    }

    /** Each command of a cross-slot batch has the timeout; the refunds after a rejection may add one more. */
    private long crossSlotTimeoutNanos() {
        return 2 * timeoutNanos + TimeUnit.MILLISECONDS.toNanos(100);
    }

    /**
     * Submits {@code decision}, given up if it has no outcomes within {@code withinNanos} (one timer, on the decision
     * itself: it is withdrawn before its answer fails, see {@link CombinedCalls#submit}), and maps its outcomes.
     */
    private <R> CompletionStage<R> async(
            CombinedCalls.Decision decision, long withinNanos, String operation, Function<long[], R> map) {
        CompletableFuture<R> result = new CompletableFuture<>();
        CompletableFuture<long[]> answer = calls.submit(decision);
        CombinedCalls.timeOut(decision, withinNanos);
        answer.whenComplete((value, error) -> {
            if (error != null) {
                GuardStorageException failure = failure(operation, error);
                if (LuaCalls.unwrap(error) instanceof TimeoutException) {
                    // The timeout fails the decision on the JDK's one delay thread, which every orTimeout of the JVM
                    // shares: a caller's continuation that blocked there would hold up every other call's timeout.
                    result.defaultExecutor().execute(() -> result.completeExceptionally(failure));
                } else {
                    result.completeExceptionally(failure);
                }
                return;
            }
            completeWith(result, map, value, e -> failure(operation, e));
        });
        return result;
    }

    /**
     * Completes {@code result} with what {@code map} makes of {@code value}: its failure if it throws (an exception as
     * {@code failure} makes it a storage failure, an {@link Error} as it is), never leaving {@code result} pending (a
     * throwable that escaped the callback would be lost in the answer's own stage, and the caller would wait for ever).
     */
    static <R> void completeWith(
            CompletableFuture<R> result,
            Function<long[], R> map,
            long[] value,
            Function<RuntimeException, ? extends Throwable> failure) {
        try {
            result.complete(map.apply(value));
        } catch (RuntimeException e) {
            result.completeExceptionally(failure.apply(e));
        } catch (Error e) {
            result.completeExceptionally(e);
        }
    }

    private GuardStorageException failure(String operation, Throwable error) {
        if (closed.get()) {
            // What Lettuce says of a client shut down ("cannot be started once stopped", a NullPointerException's text
            // in a Cluster) does not tell a bot that closed its storage too early what happened.
            return new GuardStorageException(BACKEND, operation, "the storage is closed", LuaCalls.unwrap(error));
        }
        return failure(operation, error, timeoutNanos);
    }

    private static GuardStorageException failure(String operation, Throwable error, long timeoutNanos) {
        Throwable cause = LuaCalls.unwrap(error);
        if (cause instanceof GuardStorageException g) {
            return g;
        }
        return new GuardStorageException(BACKEND, operation, reason(cause, timeoutNanos), cause);
    }

    /** What went wrong, in words: a timeout as the time waited, anything else as its message. */
    private static String reason(Throwable cause, long timeoutNanos) {
        if (cause instanceof TimeoutException || cause instanceof RedisCommandTimeoutException) {
            return "no answer within " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms";
        }
        if (cause instanceof InterruptedException) {
            return "interrupted while waiting for Redis";
        }
        return cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Building

    /** An open connection, and what closing the storage releases, in order. */
    private record Connected(
            RedisClusterAsyncCommands<byte[], byte[]> commands,
            boolean cluster,
            String description,
            List<Runnable> owned,
            ClientResources resources) {}

    /**
     * Configures a {@link RedisStorage}. Setters check their argument at once; {@link #build()} connects. Not
     * thread-safe; build once and share the storage.
     */
    public static final class Builder {
        /**
         * Below this, a margin added to an expiry (itself below 2^53 micros) stays exact in Lua and within the PX that
         * Redis takes; longer ones overflowed Duration.toMillis or made Redis refuse every write.
         */
        private static final Duration MAX_MARGIN = Duration.of(LimitSpec.EXACT_LIMIT, ChronoUnit.MICROS);

        /**
         * The connect timeout goes to Netty in whole milliseconds as an int (Lettuce converts it exactly), so from 2^31
         * ms on every build failed with "integer overflow". Below it the command timeout (a timer in nanoseconds) and
         * the cross-slot wait (twice the timeout plus 100 ms, in nanoseconds) are far from overflowing.
         */
        private static final Duration MAX_TIMEOUT = Duration.ofMillis(1L << 31);

        /** The default of {@link #concurrentCalls(int)}. */
        public static final int DEFAULT_CONCURRENT_CALLS = 1024;

        private final Function<Builder, Connected> connector;
        private String keyPrefix = "guard:";
        private Duration timeout = Duration.ofMillis(500);
        private Duration expiryMargin = Duration.ofSeconds(1);
        private boolean serverTime;
        private boolean singleSlot;
        private boolean functions = true;
        private int concurrentCalls = DEFAULT_CONCURRENT_CALLS;

        private Builder(Function<Builder, Connected> connector) {
            this.connector = connector;
        }

        /**
         * The namespace every key starts with; {@code guard:} by default. Several bots (or environments) can share a
         * Redis under different prefixes: their keys never meet, and {@link #forget} removes only its own prefix's
         * keys. Every key starts with the prefix and one {@code :}, which the prefix may end with or leave out
         * ({@code mybot:} and {@code mybot} are the same prefix) but holds nowhere else, so that the first {@code :}
         * of a key ends its prefix: use {@code mybot-prod}, not {@code mybot:prod:}.
         *
         * @throws IllegalArgumentException if {@code prefix} is null, empty, holds a brace (braces choose Cluster
         *     slots) or a {@code :} before its last character
         */
        public Builder keyPrefix(String prefix) {
            RedisKeys.checkPrefix(prefix);
            this.keyPrefix = prefix;
            return this;
        }

        /**
         * How long each command may take before the call fails with {@link GuardStorageException}; 500 ms by default
         * (see the class's notes on failures for the calls that send more than one). A storage that opens its own
         * client also waits this long (at least a second) for a connection to open.
         *
         * @throws IllegalArgumentException if {@code timeout} is null, zero, negative, or 2<sup>31</sup> milliseconds
         *     (about 24.8 days) or longer: the connect timeout reaches Netty as an {@code int} of milliseconds, and a
         *     longer one failed every {@link #build()}
         */
        public Builder timeout(Duration timeout) {
            if (timeout == null || timeout.isZero() || timeout.isNegative()) {
                throw new IllegalArgumentException("timeout must be positive but was " + timeout);
            }
            if (timeout.compareTo(MAX_TIMEOUT) >= 0) {
                throw new IllegalArgumentException(
                        "timeout must be shorter than 2^31 milliseconds (about 24.8 days) but was " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /**
         * How long a key outlives its ttl in Redis; one second by default. Redis expires keys on its own clock while
         * decisions run on the callers' clocks, so a caller whose clock lags Redis' (or another bot process's) could
         * find its state expired early and admit too much; the margin absorbs that difference. State read after its
         * ttl is absent all the same, so the margin changes no decision, only how long a key stays in memory; except
         * when the limit at a key changes (see {@link dev.guard.limit.LimitSpec}): the new limit may read the old
         * state up to one margin past its old ttl. Tests
         * whose manual clock stands still while real time passes want a margin as long as the test.
         *
         * @throws IllegalArgumentException if {@code margin} is null, negative, or 2<sup>53</sup> microseconds (about
         *     285 years) or longer, past what a key's expiry in Redis holds exactly
         */
        public Builder expiryMargin(Duration margin) {
            if (margin == null || margin.isNegative()) {
                throw new IllegalArgumentException("expiryMargin must not be negative but was " + margin);
            }
            if (margin.compareTo(MAX_MARGIN) >= 0) {
                throw new IllegalArgumentException(
                        "expiryMargin must be shorter than 2^53 microseconds (about 285 years) but was " + margin);
            }
            this.expiryMargin = margin;
            return this;
        }

        /**
         * Whether decisions use the Redis server's {@code TIME} instead of the {@code nowMicros} callers pass; false by
         * default. Turn it on when bot processes' clocks may disagree: Redis is then the one clock they all share.
         *
         * <p>A deadline that a caller sets, {@link RedisStorage#raiseGate raiseGate}'s {@code untilMicros} and {@link
         * RedisStorage#addMember addMember}'s {@code expiresAtMicros}, is on the caller's clock: it counts from the
         * {@code nowMicros} passed with it. Redis keeps it as long after its {@code TIME} as the deadline is after that
         * {@code nowMicros}, so a 429's retry_after of 10 s gates a sender for 10 s of Redis' time whether the caller's
         * clock is behind or ahead, and {@code raiseGate} answers the deadline in force on the caller's clock. Give
         * every storage that shares the keys the same setting: one without it writes and reads deadlines on its
         * callers' clocks.
         */
        public Builder serverTime(boolean serverTime) {
            this.serverTime = serverTime;
            return this;
        }

        /**
         * How many decision calls are in flight at once at most (default {@value #DEFAULT_CONCURRENT_CALLS}, from 1 to
         * 1024). A decision that arrives while that many are waits, and when a call returns the decisions waiting then
         * go together, up to 64 (and 256 steps; in a Cluster, those of one slot), in the next call: one command for all
         * of them, which decides each all-or-nothing, one after the other, in the order they came. A decision that
         * arrives while fewer are in flight goes at once, alone.
         *
         * <p>Fewer calls make busy threads share more of them: less work per decision for Redis and for the client.
         * On a loopback Redis with sixteen threads on one key, 1 decided 1.32 times as many single limits and 1.16
         * times as many chains of three as the default in paired runs, and 2 about as many as the default. But a
         * decision that waits takes its own call's time and then some, which costs throughput where the round trip is
         * long beside Redis' work (a Redis on another host, few threads); the default shares nothing in practice.
         *
         * @throws IllegalArgumentException if {@code calls} is not between 1 and 1024
         */
        public Builder concurrentCalls(int calls) {
            if (calls < 1 || calls > 1024) {
                throw new IllegalArgumentException("concurrentCalls must be between 1 and 1024 but was " + calls);
            }
            this.concurrentCalls = calls;
            return this;
        }

        /**
         * Whether every key shares one Cluster slot (hash tag {@code {g}}) instead of one slot per subject; false by
         * default. In one slot every batch is a single atomic script, at the price of putting all of Guard's state on
         * one master. No effect outside a Cluster.
         */
        public Builder singleSlot(boolean singleSlot) {
            this.singleSlot = singleSlot;
            return this;
        }

        /**
         * Connects and returns the storage. From a URI it opens its own client and detects a Cluster with {@code INFO
         * cluster}. Loads the Lua code: the Functions library ({@code FUNCTION LOAD REPLACE}, on every master of a
         * Cluster), or on a server without Functions the scripts into its script cache.
         *
         * @throws IllegalArgumentException if the URI is not a Redis URI (see {@link RedisStorage#create(String)})
         * @throws GuardStorageException if Redis cannot be reached, or refuses the login (the message then gives
         *     Redis' answer, such as {@code WRONGPASS})
         */
        public RedisStorage build() {
            Connected connected;
            try {
                connected = connector.apply(this);
            } catch (GuardStorageException | IllegalArgumentException e) {
                throw e;
            } catch (RuntimeException e) {
                throw new GuardStorageException(BACKEND, "connect", connectFailure(e), e);
            }
            LuaCalls lua;
            try {
                lua = loadCode(connected.commands, functions, timeout.toNanos());
            } catch (RuntimeException e) {
                releaseAll(connected.owned);
                throw e;
            }
            return new RedisStorage(this, connected, lua);
        }

        /**
         * Whether to call the Lua code as Redis Functions where the server has them; true by default. Off, or on a
         * server without Functions (before Redis 7, or an ACL that denies {@code FUNCTION}), the storage calls scripts
         * by their SHA-1 instead. For tests of the script path.
         */
        Builder functions(boolean functions) {
            this.functions = functions;
            return this;
        }

        private Connected connectUri(String text) {
            if (userInfoCut(text)) {
                // Parsed, the part of the password before the '#', '?' or '/' became the host or the port, which every
                // connect failure names.
                throw new IllegalArgumentException("uri is not a Redis URI (percent-encode '#', '?' and '/' in a user"
                        + " name or password: %23, %3F, %2F): " + redact(text));
            }
            RedisURI uri;
            try {
                uri = RedisURI.create(text);
            } catch (RuntimeException e) {
                throw new IllegalArgumentException("uri is not a Redis URI: " + redact(text));
            }
            String host = uri.getHost();
            if (host != null && host.indexOf(':') >= 0 && !host.startsWith("[")) {
                // Lettuce reads an authority whose port is not a number ("host:6379x", a list of Cluster nodes) as a
                // host named all of it, on port 6379: the typo then failed to connect, as if Redis were down.
                throw new IllegalArgumentException("uri is not a Redis URI (one host, and a port from 1 to 65535; any"
                        + " one node of a Cluster will do): " + redact(text));
            }
            // The URI's timeout bounds the handshake (HELLO, AUTH, SELECT) and a Cluster's first topology load; left at
            // Lettuce's default of 60 s, a server that accepted the connection and answered nothing held build() that
            // long.
            Duration connect = connectTimeout();
            uri.setTimeout(connect);
            uri.getSentinels().forEach(s -> s.setTimeout(connect));
            boolean sentinel = !uri.getSentinels().isEmpty();
            String where =
                    sentinel ? "sentinel master " + uri.getSentinelMasterId() : uri.getHost() + ":" + uri.getPort();
            ClientResources resources = ClientResources.builder()
                    .reconnectDelay(
                            Delay.exponential(Duration.ofMillis(10), Duration.ofSeconds(1), 2, TimeUnit.MILLISECONDS))
                    .build();
            // What is open so far, most recent first: closing releases in this order.
            List<Runnable> open = new ArrayList<>();
            open.add(() -> awaitReleased(
                    "the Redis client's threads", resources.shutdown(0, 2, TimeUnit.SECONDS), RELEASE_WAIT));
            try {
                RedisClient client = RedisClient.create(resources, uri);
                client.setOptions(clientOptions(ClientOptions.builder()).build());
                open.add(0, shuttingDown("the Redis client", client));
                StatefulRedisConnection<byte[], byte[]> standalone = client.connect(ByteArrayCodec.INSTANCE);
                open.add(0, closing("the Redis connection", standalone));
                if (sentinel || !isCluster(standalone)) {
                    return new Connected(
                            standalone.async(), false, "redis standalone " + where, List.copyOf(open), resources);
                }
                // A Cluster node: keep only the threads, and connect again as a Cluster client.
                open.remove(0).run();
                open.remove(0).run();
                RedisClusterClient clusterClient = RedisClusterClient.create(resources, uri);
                ClusterClientOptions.Builder options = clientOptions(ClusterClientOptions.builder());
                options.topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                        .enableAllAdaptiveRefreshTriggers()
                        .build());
                clusterClient.setOptions(options.build());
                open.add(0, shuttingDown("the Redis Cluster client", clusterClient));
                StatefulRedisClusterConnection<byte[], byte[]> c = clusterClient.connect(ByteArrayCodec.INSTANCE);
                open.add(0, closing("the Redis Cluster connection", c));
                return new Connected(c.async(), true, "redis cluster " + where, List.copyOf(open), resources);
            } catch (RuntimeException e) {
                releaseAll(open);
                throw new GuardStorageException(BACKEND, "connect", connectFailure(e), e);
            }
        }

        /**
         * Whether an {@code @} of {@code text} lies past the authority that the first {@code #}, {@code ?} or {@code /}
         * after the scheme ends: a user name or password holding one of those, unencoded.
         */
        private static boolean userInfoCut(String text) {
            int scheme = text.indexOf("://");
            if (scheme < 0) {
                return false; // no authority: the parse fails, and its message is redacted
            }
            int end = scheme + 3;
            while (end < text.length() && "#?/".indexOf(text.charAt(end)) < 0) {
                end++;
            }
            return text.indexOf('@', end) >= 0;
        }

        private static boolean isCluster(StatefulRedisConnection<byte[], byte[]> connection) {
            String info = connection.sync().info("cluster");
            return info != null && info.contains("cluster_enabled:1");
        }

        /**
         * Options for clients the storage owns: reject commands while disconnected (which also fails the commands in
         * flight when the connection breaks, instead of replaying them after a reconnect for a caller that gave up),
         * and time out every command.
         */
        private <B extends ClientOptions.Builder> B clientOptions(B options) {
            options.autoReconnect(true);
            options.disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS);
            options.timeoutOptions(
                    TimeoutOptions.builder().fixedTimeout(timeout).build());
            options.socketOptions(
                    SocketOptions.builder().connectTimeout(connectTimeout()).build());
            return options;
        }

        /** How long a storage that opens its own client waits for a connection to open: the timeout, at least 1 s. */
        private Duration connectTimeout() {
            return timeout.compareTo(Duration.ofSeconds(1)) > 0 ? timeout : Duration.ofSeconds(1);
        }
    }

    /**
     * Puts the Lua code on the server: the Functions library (on every master of a Cluster) when {@code functions}
     * and the server has Functions, else every script into the script cache.
     */
    private static LuaCalls loadCode(
            RedisClusterAsyncCommands<byte[], byte[]> commands, boolean functions, long timeoutNanos) {
        if (functions) {
            try {
                new LuaCalls(commands, true).loadLibrary().get(timeoutNanos, TimeUnit.NANOSECONDS);
                return new LuaCalls(commands, true);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw failure("loadScripts", e, timeoutNanos);
            } catch (ExecutionException | TimeoutException | RuntimeException e) {
                if (!LuaCalls.unsupported(e)) {
                    throw failure("loadScripts", e, timeoutNanos);
                }
            }
        }
        for (RedisScript script : new RedisScript[] {
            RedisScript.EVALUATE, RedisScript.REFUND, RedisScript.GATE, RedisScript.MEMBER, RedisScript.RECORD
        }) {
            String sha;
            try {
                sha = LettuceFutures.awaitOrCancel(
                        commands.scriptLoad(script.body()), timeoutNanos, TimeUnit.NANOSECONDS);
            } catch (RuntimeException e) {
                throw failure("loadScripts", e, timeoutNanos);
            }
            if (!script.sha().equals(sha)) {
                throw new GuardStorageException(
                        BACKEND,
                        "loadScripts",
                        "script " + script.name() + " has digest " + sha + " on the server, expected " + script.sha(),
                        null);
            }
        }
        return new LuaCalls(commands, false);
    }

    private static String describe(Throwable e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    /**
     * Why a connection failed, with Redis' own answer when it refused the handshake ({@code WRONGPASS}, {@code
     * NOAUTH}, an ACL's {@code NOPERM}): Lettuce says only "Unable to connect to host:port", as for a Redis that is
     * down. Redis' error replies never repeat the password they refused.
     */
    private static String connectFailure(Throwable e) {
        for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
            if (cause instanceof RedisCommandExecutionException && cause.getMessage() != null) {
                return describe(e) + ": " + cause.getMessage();
            }
        }
        return describe(e);
    }

    /** {@code text} without the user-info part of a URI, which may hold a password. */
    static String redact(String text) {
        // Whatever stands before the last '@' may be a user and password, also in a URI too malformed to parse
        // ("redis:/:pw@host"); a password may also come as a query parameter.
        int at = text.lastIndexOf('@');
        String shown = text;
        if (at >= 0) {
            int scheme = text.indexOf("://");
            shown = (scheme >= 0 && scheme < at ? text.substring(0, scheme + 3) : "") + "***" + text.substring(at);
        }
        return PASSWORD_PARAMETER.matcher(shown).replaceAll("$1***");
    }

    private static final Pattern PASSWORD_PARAMETER = Pattern.compile("(?i)(password=)[^&#]*");
}
