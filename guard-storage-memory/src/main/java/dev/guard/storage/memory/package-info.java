/**
 * Guard's in-memory storage, {@link dev.guard.storage.memory.MemoryStorage}: the embedded default.
 *
 * <p>Design notes (why it looks the way it does):
 *
 * <ul>
 *   <li><b>One holder per key, shaped by its kind.</b> A token bucket lives as a GCRA theoretical arrival time, a
 *       cooldown, gate or membership as one deadline: one {@code long} each, changed by compare-and-set while the key
 *       is its subject's only one, so the common single-limit decision takes no lock and allocates nothing (a key of
 *       a subject with several is changed owning the subject's entry, one compare-and-set too). Everything else keeps the reference's own
 *       {@code long[]} and runs the reference functions. A key whose spec changes (or whose time leaves the range
 *       where the encodings are exact) is converted to that general form, so the answers stay the reference's.
 *   <li><b>One cache entry per subject.</b> A subject's keys live in one entry: its only holder, or a group whose
 *       slots (scope, holder) are an array that its owner appends to in place, with room up to the next prune, and
 *       replaces as a whole to drop expired slots. A message touching five keys of a user and one of a chat makes
 *       two cache lookups, and a new key (a user's key in a new chat) is a new slot, not a cache insertion with its
 *       expiry bookkeeping. Expired slots are dropped when their group is rewritten, or by a sweep that the
 *       additions drive, for groups that a permanent key keeps alive.
 *   <li><b>One owner per subject, batches without deadlock.</b> One word owns all of a subject's keys, which a
 *       thread swaps for a busy marker to own them: the only holder's own word, or its group's (a slot's word is
 *       then plain state), so that a batch on five keys of a user makes one compare-and-set. A lone holder whose
 *       subject gains a key is copied into the new group and retired, since a lock-free caller may be about to
 *       change its word. A batch first tries its subjects' entries in step order without waiting for any, and only
 *       when one is owned elsewhere lets go and takes them in one order of subjects, waiting for each; then it
 *       evaluates all steps and commits all or none. A batch whose subjects all have entries and whose committing
 *       keys all exist in the form they run on (a chain's, from a user's second message on) first tries a single
 *       pass: it tries its subjects' entries, then finds and evaluates each key while it owns them all, so that
 *       nothing it read before owning needs a second look. Critical sections are a few arithmetic operations and never
 *       wait for the cache, which is what makes the spin of the other side short and the whole deadlock free.
 *   <li><b>The cache's clock is the callers' time.</b> Caffeine's variable expiry runs on the newest {@code
 *       nowMicros} seen, so tests with a manual clock see eviction exactly as production does. Eviction must never
 *       come before a state's ttl (that would grant quota), so every holder's cache lifetime is an upper bound of
 *       its state's ttl measured from the cache's clock, plus the clock's lag.
 *   <li><b>Reads go around Caffeine's bookkeeping.</b> A variable-expiry read through Caffeine costs several times
 *       the rest of a decision (about 50 ns against 5 ns for a plain map read, measured on the development machine),
 *       so holders are read quietly and the cache hears of a use only once per interval, which keeps every holder at
 *       least one interval ahead of expiry.
 *   <li><b>Removal is atomic with retirement.</b> A holder that leaves the cache is owned and marked dead inside the
 *       cache's removal of its key; anyone holding a reference to it then looks the key up again instead of
 *       updating state the cache no longer has.
 * </ul>
 */
package dev.guard.storage.memory;
