/**
 * Guard's Redis storage, {@link dev.guard.storage.redis.RedisStorage}: limits shared by every bot process that uses one
 * Redis (standalone, Sentinel or Cluster), each decision one round trip (under load, in a call it shares with other
 * decisions: {@link dev.guard.storage.redis.RedisStorage.Builder#concurrentCalls(int)}).
 *
 * <h2>Lua code</h2>
 *
 * <p>Every limit kind of {@code dev.guard.limit} has a Lua twin in {@code kinds.lua} that follows the Java reference
 * step for step: the same state layout, the same integer arithmetic (every value stays below 2<sup>53</sup>, where
 * Lua's doubles are exact; divisions are corrected for rounding), the same handling of a clock that goes backwards. A
 * batch is one call of {@code evaluate}: it reads every step's state, evaluates every step against the state before the
 * batch, and only when every step admits writes every step's new state, atomically. A step whose now plus its window or
 * period reaches 2<sup>53</sup> (a period of decades) would round in Lua, so {@code RedisStorage} refuses it with an
 * {@code IllegalArgumentException} before sending, where the reference would compute exactly; so it refuses a {@link
 * dev.guard.limit.DuplicateWindow}'s item (the step's permits) of 2<sup>53</sup> or more, as the reference does. Token
 * buckets, the most common kind, take a path of their own that works on two numbers instead of a state table. Duplicate
 * windows, checked on every message, take one that works on the state's text, pairs {@code item admittedAt}: it finds
 * the words by their spaces, parses only the times it needs (up to the first pair in the window, and the last),
 * searches the text for the item once rather than reading every item, and a commit keeps the text of the pairs it keeps
 * and appends the new pair, so only that pair is formatted. Their step texts are not kept parsed on the server: the
 * permits are a message's fingerprint, new nearly every time, and would push out the texts that repeat. The
 * differential tests run random operation sequences against Redis and {@link dev.guard.spi.ReferenceStorage} and demand
 * identical answers.
 *
 * <p>What Guard sends: on Redis 7 and later, the code is one Redis Functions library, {@code guard_} and a digest of
 * the code, loaded once per server with {@code FUNCTION LOAD REPLACE} (on every master of a Cluster) when the storage
 * is built; each call is one {@code FCALL guard_<digest>_evaluate} (or {@code _refund}, {@code _gate}, {@code
 * _member}, {@code _record}), which runs only the operation: a script body would define every helper function again
 * on every call, a measurable part of its time in Redis. A server that answers {@code Function not
 * found} (it restarted without persistence, its functions were flushed, a master joined) gets the library again, on
 * every master, and the call is repeated once. Storages of different Guard versions use different libraries, so they
 * never replace each other's code; a library that no storage uses any more stays until {@code FUNCTION DELETE}. On a
 * server without Functions (or whose ACL denies {@code FUNCTION}), the same code runs as one script per operation,
 * called by its SHA-1 ({@code EVALSHA}); a server that answers {@code NOSCRIPT} gets the script's text once ({@code
 * EVAL}).
 *
 * <p>Replies are integers: an {@link dev.guard.limit.Outcome} as is, with three sentinels for what a double cannot
 * hold: 2<sup>53</sup> for the {@code Long.MAX_VALUE} "remaining" of gates and sets, -2<sup>53</sup>-4 for {@link
 * dev.guard.limit.Outcome#NEVER}, and -2<sup>53</sup>-2 for a wait until {@code Long.MAX_VALUE} (a gate raised to
 * it, or a cooldown reading such a deadline).
 *
 * <h2>Keys</h2>
 *
 * <p>{@code <prefix>:s:<scope>{<subject>}} for limit, gate and set state, {@code <prefix>:r:<scope>{<subject>}} for
 * records (a hash of version and bytes), where {@code <prefix>} is the configured key prefix ({@code guard:} by
 * default) without its trailing {@code :}. A prefix holds no other {@code :}, so the first {@code :} of a key ends it:
 * storages with different prefixes on one Redis never share a key and never {@code forget} each other's. Scope and
 * subject are escaped ({@code %}, braces and the glob characters as {@code %XX}, unpaired surrogates as {@code
 * %uXXXX}), so keys of any content are distinct and safe, the subject is the only hash tag, and {@code forget(subject)}
 * finds exactly that subject's keys with one {@code SCAN MATCH} pattern (over every master of a Cluster).
 *
 * <p>Each key expires with {@code SET ... PX} when its state would equal absent (rounded up to the next millisecond,
 * never earlier), plus a margin (one second by default, {@link
 * dev.guard.storage.redis.RedisStorage.Builder#expiryMargin}): Redis expires keys on its own clock while decisions run
 * on the callers' clocks, and the margin keeps a caller whose clock lags from finding its state gone early, which would
 * grant extra permits. Redis thus holds only recently active state. A state read after its ttl on the caller's clock
 * counts as absent and is deleted (unless the same call writes it anyway), as the reference drops it, so the margin
 * changes no decision, except when the limit at a key changes: the new limit may then read the old state (not a
 * deadline, which ends at its time whoever reads it) up to one margin past its old ttl ({@link
 * dev.guard.limit.LimitSpec}). A state that the limit reading it cannot read (of another shape, or dated: another
 * limit's; or a log's one timestamp that a gate, a cooldown or a set reads as a deadline passed) also counts as absent,
 * but stays until its own expiry, as the reference keeps it. Gates and set
 * memberships carry absolute deadlines; their expiry is the deadline minus the {@code nowMicros} the caller passes with
 * it, plus the margin. With server time Redis keeps them on its own clock, as long after its {@code TIME} as the
 * caller's deadline is after the caller's {@code nowMicros}, and answers a gate's deadline in force on the caller's
 * clock ({@link dev.guard.storage.redis.RedisStorage.Builder#serverTime}).
 *
 * <p>The text of a deadline, a gate's, a cooldown's or a membership's, is one number with a mark of its kind: {@code
 * +} before a gate's ({@code +1767225600000000}, {@code +inf} for never), {@code .} after a cooldown's or a
 * membership's ({@code 1767225600000000.}, {@code inf}). So a gate raised over a cooldown's or a membership's deadline
 * replaces it, as on the other backends, and a deadline read by another limit (a log) ends at its time. Versions
 * before the mark wrote the bare number; Lua's {@code tonumber} reads each marked text as that number (through the C
 * library's {@code strtod} for {@code inf}), so their code reads these texts as it read its own, and processes of both
 * versions can share a Redis during an upgrade. A bare number that they left is read as they read it, and a gate
 * raised over it merges with it whatever kind wrote it (see {@link
 * dev.guard.storage.redis.RedisStorage#raiseGate}).
 *
 * <h2>Cluster</h2>
 *
 * <p>One function call may only touch keys of one slot, so the hash tag is chosen on purpose: the subject. All state of
 * one user (or one chat, one sender) lives in one slot, so a chain of per-user limits is one atomic call, and users
 * spread over the masters. A batch whose keys span slots (a per-user limit with a per-chat or global one) is evaluated
 * per slot:
 *
 * <ol>
 *   <li>one call per slot, all sent at once (still one round trip of latency), each atomic and all-or-nothing within
 *       its slot, each journaling the text of every state it wrote, before and after;
 *   <li>when every slot admits, the batch is admitted;
 *   <li>when a slot rejects, every slot that committed runs {@code refund.lua}: a key nobody wrote since gets its
 *       previous text back exactly (another limit's state, which the batch read as absent, with its expiry too); a
 *       key others wrote since loses only this batch's permits (tokens back, a count or log entry out, a duplicate
 *       window's item forgotten again if the key still holds it as the batch wrote it, a cooldown that is someone
 *       else's kept). The outcomes are those each slot computed against its state before the batch, as one call
 *       would have.
 * </ol>
 *
 * <p>A duplicate window's refund leaves the pairs the key would hold had the batch never committed, as far as the
 * state tells: when the batch's pair took the room of a pair of the state the batch read (its commit, or a later one,
 * forgot that pair early), that pair comes back in front, unless its window has ended. A known limit: a pair
 * equal to the batch's (same item, same admittedAt) that another caller added after the batch's pair was pushed out
 * is taken for the batch's. That takes {@code capacity} admissions on the key within the microsecond of the batch's
 * pair (a flood of {@code capacity} messages of one conversation in one clock tick, or callers whose clocks lag it).
 * Two more, both needing a full window and a conversation whose messages a limit in another slot keeps rejecting (a
 * flood): when two such batches on the same key are refunded in the order they committed, the second refund finds
 * the pairs in front of its own changed by the first and cannot tell which pair its commit pushed out, so the window
 * may forget one pair for good; and during a refund's round trip, the pair the batch pushed out is missing. Either way
 * a copy of that one message may pass; the other limits still hold.
 *
 * <p>The difference from one call: during the refund's round trip other callers see the refunded permits as taken,
 * so under contention a cross-slot batch may reject a request that one call would have admitted. It never admits
 * more than a limit allows (but for the duplicate window's limits above). If a slot fails or times out, the slots that
 * committed are refunded and the call fails ({@link dev.guard.spi.GuardStorageException}); the failed slot's own commit
 * is then unknown. A failed refund leaves its permits taken until the state expires. {@link
 * dev.guard.storage.redis.RedisStorage.Builder#singleSlot(boolean)} puts every key in one slot instead ({@code {g}}):
 * every batch is one call, and one master holds all of Guard's state.
 *
 * <h2>Failures</h2>
 *
 * <p>Every command has a timeout (500 ms by default; a cross-slot batch may take twice it plus 100 ms, a call that
 * loads Guard's code again twice it) and fails with {@link dev.guard.spi.GuardStorageException}; the
 * clients the storage creates reject commands at once while disconnected (so a dead Redis costs nothing per call and
 * nothing is replayed late), reconnect in the background with a backoff capped at one second, and time out every
 * command. {@link dev.guard.Guard}'s failure policy and breaker turn the exceptions into decisions.
 *
 * <p>{@code health()} sends one {@code PING} within the timeout; in a Cluster one to every master that serves slots
 * in the client's view of the topology, all at once, and reports down, naming each master (host and port) that failed
 * or did not answer in time: with one master of three down, a third of the decisions fail while the others answer.
 */
package dev.guard.storage.redis;
