/**
 * The outbound sender pool: routes a bot's outgoing messages over several sender accounts within every platform
 * limit, warms new senders up, and backs off when the platform pushes back. Start at {@link
 * dev.guard.route.SenderPool}.
 *
 * <h2>Why it is built this way</h2>
 *
 * <ul>
 *   <li><b>Exact where it must be, local where it may be.</b> What two processes must agree on lives in the storage
 *       and is decided there atomically: quotas, gates, blocks, warm-up allowances (one {@link
 *       dev.guard.spi.Storage#evaluate} per permit, all-or-nothing). What only steers the choice stays in local
 *       memory: health, risk, pacing, hints of when a sender is free. Routing therefore costs one storage call, and
 *       a stale local hint can only cost an extra call, never an extra message.
 *   <li><b>Every quota is a {@link dev.guard.limit.SlidingWindowCounter}.</b> Its state does not depend on its limit,
 *       so a limit that changes at run time (AIMD pacing, a warm-up stage, an operator's bulk change) keeps the key
 *       and its counts: nothing already sent is forgotten, and no interval of the window ever holds more than the
 *       limit (the counter errs on the safe side, rejecting at most one sub-bucket early: a message counts for its
 *       window and up to a tenth of it more for the per-second quotas and the warm-up allowances, an hour more for
 *       the daily ones, so a sender that sent its full 30 in one instant takes more 1.1 s later). The chat limits,
 *       which never change at run time, are exact {@link dev.guard.limit.SlidingWindowLog}s.
 *   <li><b>Shared records, refreshed on a timer; decreases guarded by a gate.</b> A sender's status, warm-up stage
 *       and run-time limits are a versioned record changed by compare-and-set and re-read every sync interval. The
 *       only change that lowers an allowance, a step back after a block, happens while the sender is held by a set
 *       membership that every permit checks, and a sender set active again waits behind a gate longer than the sync
 *       interval, while no permit goes out on a record read longer ago than that (a thread that routes while another
 *       syncs re-reads the sender itself), so no process sends on a stale, larger allowance.
 *   <li><b>Chat limits per recipient.</b> The recipient chat's limit is keyed by the chat alone, so spreading one
 *       chat's messages over several senders never multiplies what a person receives.
 *   <li><b>Honest with the platforms.</b> The pool keeps a bot inside the limits that the platforms publish and honours
 *       their pushback exactly. It never fabricates conversations or otherwise deceives a platform's abuse detection:
 *       recipient blocks brake the whole pool, not only the sender blocked, so that the pool cannot keep a campaign
 *       that people block at full speed by spreading the blocks thin over its senders.
 * </ul>
 *
 * <p>Keys in the storage are {@code route/<pool name>/<what>} with the sender's or the chat's id as subject, so
 * {@link dev.guard.spi.Storage#forget} of a chat id removes that chat's limits and gates, and its recipient's block
 * ({@link dev.guard.route.SenderPool#recipientBlocked}), after which the pool writes to the chat again; it removes the
 * state of a sender whose id is the same text too (its record, gate and hold), so give senders ids that no chat has
 * ({@code "bot-7"}, not a bare number). The inbound {@link dev.guard.Guard}'s keys never share a scope with these, and
 * its {@link dev.guard.Guard#forgetUser} does not reach them.
 */
package dev.guard.route;
