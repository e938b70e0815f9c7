-- Guard's limit kinds: the reference semantics of dev.guard.limit.* in Lua, step for step. The operations' files
-- follow this one: as a Redis Functions library, created once per server (FUNCTION LOAD), or, where Redis has no
-- Functions, as one script per operation that ends by calling its function (RedisScript assembles both).
--
-- Lua numbers are IEEE-754 doubles. Every value here is an integer below 2^53 in magnitude, where doubles are
-- exact, and every division goes through fdiv, which corrects the off-by-one of a rounded quotient.
-- A state is a list of numbers stored as decimal text separated by spaces, "max" standing for Long.MAX_VALUE; the one
-- number of a gate, a cooldown or a set membership carries a mark of its kind (see mark).

local tonumber, floor, max, byte, find, sub, match, format, concat, unpack =
  tonumber, math.floor, math.max, string.byte, string.find, string.sub, string.match, string.format, table.concat,
  unpack
local call = redis.call

local EXACT = 9007199254740992 -- 2^53
local UNLIMITED = EXACT -- reply: admitted with Long.MAX_VALUE remaining (gates and sets)
local NEVER = -EXACT - 4 -- reply: Outcome.NEVER (below every rejection's reply, which is at least -2^53)
local SHUT = -EXACT - 2 -- reply: rejected until Long.MAX_VALUE, a gate's or a cooldown's (Java computes the wait)
local INF = math.huge -- Long.MAX_VALUE as a deadline or a ttl: never
local LEAD = 86400000000 -- LimitSpec.MAX_LEAD_MICROS: a state dated later after now is another limit's: absent

local function fdiv(a, b)
  local q = floor(a / b)
  local r = a - q * b
  if r < 0 then
    q = q - 1
  elseif r >= b then
    q = q + 1
  end
  return q
end

local function cdiv(a, b)
  return -fdiv(-a, b)
end

local function fmod(a, b)
  return a - fdiv(a, b) * b
end

-- Outcome.admitted and Outcome.rejected.
local function admitted(remaining)
  if remaining < 0 then
    return 0
  end
  return remaining
end

local function rejected(wait)
  if wait < 1 then
    wait = 1
  end
  return -wait - 1
end

local function decode(raw)
  if not raw then
    return nil
  end
  local s, n, from = {}, 0, 1
  while true do
    local space = find(raw, ' ', from, true)
    local word = sub(raw, from, (space or 0) - 1)
    n = n + 1
    -- tonumber reads a deadline's mark too ("+5", "5.", and "inf" and "+inf" through the C library's strtod).
    local v = tonumber(word)
    if not v and (word == 'max' or word == 'inf' or word == '+inf') then
      v = INF
    end
    s[n] = v
    if not space then
      return s
    end
    from = space + 1
  end
end

local function encode(s)
  local n = #s
  -- %d, not tostring: tostring keeps only 14 significant digits and epoch micros have 16.
  if n == 2 and s[1] ~= INF and s[2] ~= INF then
    return format('%d %d', s[1], s[2])
  end
  local words = {}
  for i = 1, n do
    if s[i] == INF then
      words[i] = 'max'
    else
      words[i] = format('%d', s[i])
    end
  end
  return concat(words, ' ')
end

-- Gates, cooldowns and set memberships keep one number, a deadline, marked with the kind that wrote it: '+' before a
-- gate's ("+1767225600000000", "+inf" for never), '.' after a cooldown's or a membership's ("1767225600000000.", "inf"
-- for never). A deadline is over at its time whoever reads it, as the reference expires every state at its writer's
-- ttl, and only a gate's merges with a gate raised over it. One number without a mark is a sliding log's one
-- timestamp, or a deadline that an earlier version wrote for any of those kinds (it merges with a gate as it did
-- then). Lua's tonumber reads every mark as the number itself, and so does the decode of earlier versions, which
-- therefore read these deadlines as they read their own: processes of both versions can share the keys.
local DEADLINE = { d = true, g = true, a = true, p = true } -- the kinds whose state is one deadline
local PLUS, DOT, I = 43, 46, 105 -- '+', '.', 'i'

-- The mark of the text raw, of a state of one number: '+' a gate's, '.' a cooldown's or a membership's, nil none.
local function mark(raw)
  local first = byte(raw, 1)
  if first == PLUS then
    return '+'
  elseif first == I or byte(raw, -1) == DOT then
    return '.'
  end
  return nil
end

-- The text of the deadline d that kind (a deadline kind) writes, with its mark.
local function deadlineText(kind, d)
  if kind == 'g' then
    if d == INF then
      return '+inf'
    end
    return format('+%d', d)
  elseif d == INF then
    return 'inf'
  end
  return format('%d.', d)
end

-- Micros from now until the deadline d passes; INF for never.
local function deadlineTtl(d, now)
  if d == INF then
    return INF
  end
  return max(0, d - now)
end

-- The server's clock in microseconds when arg is empty, else the caller's.
local function clock(arg)
  if arg ~= '' then
    return tonumber(arg)
  end
  local t = call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The deadline d that a caller set on its own clock, whose now was caller, on the server's clock at now: as long after
-- now as d is after caller, so that with the server's TIME a retry_after or a ban lasts as long as the caller meant
-- whatever its clock says. One that has passed for the caller is now (passed here too); never stays never, and so does
-- a deadline past 2^53 here (over two centuries away), as RedisStorage clamps the callers'. left and now are below
-- 2^53, so their sum is exact below 2^53 and rounds to at least 2^53 above.
local function onServer(d, caller, now)
  if d == INF then
    return INF
  end
  local left = d - caller
  if left <= 0 then
    return now
  end
  if now + left >= EXACT then
    return INF
  end
  return now + left
end

-- The reply for the deadline d, in force on the server's clock at now (after now), on the clock of a caller whose now
-- is caller: as long after caller as d is after now; UNLIMITED (never) for never, or past 2^53 there.
local function onCaller(d, now, caller)
  if d == INF then
    return UNLIMITED
  end
  local at = caller + (d - now)
  if at >= EXACT then
    return UNLIMITED
  end
  return at
end

-- The kinds, one function per operation and one branch per kind, in the order of dev.guard.limit. A kind is a
-- one-letter code: t TokenBucket, f FixedWindow, l SlidingWindowLog, c SlidingWindowCounter, d Cooldown, w
-- DuplicateWindow, g Gate, a Membership.MUST_BE_ABSENT, p Membership.MUST_BE_PRESENT; a, b, c are its parameters, as
-- each branch says. TokenBucket, the most common kind, has a path of its own below (bucketEval, bucketPut) that works
-- on two numbers instead of a state table; DuplicateWindow, on every message of a conversation, one (windowEval,
-- windowPut) that works on the state's text.

-- TokenBucket's level in ticks at now for a state {lvl, last}: refilled since the last update, capped at cap (a level
-- above it, another bucket's with fewer ticks to a token, is full too). A full bucket is absent: its ttl is 0.
local function level(lvl, last, now, cap, rate)
  if lvl > cap then
    lvl = cap
  end
  local elapsed = now - last
  if elapsed <= 0 then
    return lvl
  end
  -- Compare before multiplying, as the Java code does, so that the product stays below 2^53.
  if elapsed >= cdiv(cap - lvl, rate) then
    return cap
  end
  return lvl + elapsed * rate
end

-- Micros from now until a bucket at level lvl (its level at now) whose last update is last is full again.
local function bucketTtl(lvl, last, now, cap, rate)
  local missing = cap - lvl
  if missing == 0 then
    return 0
  end
  -- A clock that went backwards leaves last ahead of now: keep the state until then too.
  return max(0, last - now) + cdiv(missing, rate)
end

-- SlidingWindowLog's index of the first timestamp still counted at now.
local function firstLive(s, now, w)
  local i = 1
  while i <= #s and s[i] + w <= now do
    i = i + 1
  end
  return i
end

-- SlidingWindowCounter's count of bucket i: state {newestIndex, count of bucket i at 2 + (i mod slots) ...}.
local function countOf(s, i, slots)
  local newest = s[1]
  if i > newest or i <= newest - slots then
    return 0
  end
  return s[2 + fmod(i, slots)]
end

-- Whether s has the shape of kind's state (a, b: its parameters): two numbers for a bucket or a fixed window, b + 2
-- for a counter, any number in ascending order for a log, pairs for a duplicate window (at most a of them), one for the rest.
local function shaped(kind, s, a, b)
  local n = #s
  if kind == 't' or kind == 'f' then
    return n == 2
  elseif kind == 'c' then
    return n == b + 2
  elseif kind == 'l' then
    -- Timestamps, ascending: numbers out of that order are another limit's (a duplicate window's item and time).
    for i = 2, n do
      if s[i] < s[i - 1] then
        return false
      end
    end
    return true
  elseif kind == 'w' then
    return n % 2 == 0 and n <= 2 * a
  end
  return n == 1
end

-- Whether a kind writes its state when a batch is admitted; gates and sets are written by others.
local function writes(kind)
  return kind ~= 'g' and kind ~= 'a' and kind ~= 'p'
end

-- Whether kind is one of the codes above.
local function known(kind)
  return #kind == 1 and find('tflcdwgap', kind, 1, true) ~= nil
end

-- Step texts already parsed: text -> { kind, permits, a, b, c }. A step is one argument, its text "kind permits a b
-- c" (LuaArgs), and most calls repeat a few limits, so a text seen before costs one table lookup. The library's
-- functions share the table across calls (a script's is its own call's); it is emptied when it holds STEPS_KEPT
-- texts, so that limits which vary without end cannot grow it without bound. A duplicate window's texts are not kept:
-- their permits are a message's fingerprint, new nearly every time, and would only push out the texts that repeat.
local STEPS_KEPT = 1000
local parsed, parsedCount = {}, 0

-- The step that text stands for, { kind, p, a, b, c } and for a duplicate window p's text (not to be modified), or
-- nil when text is not a step of a known kind.
local function step(text)
  local s = parsed[text]
  if s then
    return s
  end
  local kind, p, a, b, c = match(text, '^(%a) (%-?%d+) (%-?%d+) (%-?%d+) (%-?%d+)$')
  if not kind or not known(kind) then
    return nil
  end
  s = { kind, tonumber(p), tonumber(a), tonumber(b), tonumber(c) }
  if kind == 'w' then
    s[6] = p -- the item's text, which windowEval searches for
  else
    if parsedCount >= STEPS_KEPT then
      parsed, parsedCount = {}, 0
    end
    parsed[text] = s
    parsedCount = parsedCount + 1
  end
  return s
end

local function malformed(text)
  return redis.error_reply('guard: not a limit step of a known kind: ' .. text)
end

-- A table whose array part already holds n slots (false), so that filling slots 1 to n never resizes it; a plain
-- table past 64.
local FALSES = {}
for i = 1, 64 do
  FALSES[i] = false
end

local function slots(n)
  if n <= 64 then
    return { unpack(FALSES, 1, n) }
  end
  return {}
end

-- Micros from now until s equals absent; 0 when it already does, INF when it never expires on its own.
local function ttl(kind, s, now, a, b, c)
  if kind == 't' then
    -- TokenBucket. a = ticksPerMicro, b = ticksPerToken, c = capacity. State {levelTicks, lastMicros}.
    return bucketTtl(level(s[1], s[2], now, c * b, a), s[2], now, c * b, a)
  elseif kind == 'f' then
    -- FixedWindow. a = limit, b = windowMicros. State {windowIndex, count}.
    return max(0, (s[1] + 1) * b - now)
  elseif kind == 'l' or kind == 'w' then
    -- SlidingWindowLog. a = limit, b = windowMicros. State: the counted permits' timestamps, ascending.
    -- DuplicateWindow. a = capacity, b = windowMicros. State: pairs {item, admittedAtMicros}, oldest first.
    -- Either lives until the window of its last number, a time, ends.
    if #s == 0 then
      return 0
    end
    return max(0, s[#s] + b - now)
  elseif kind == 'c' then
    -- SlidingWindowCounter. a = limit, b = buckets, c = bucketMicros. The newest bucket stops counting once bucket
    -- newest + buckets + 1 begins.
    return max(0, (s[1] + b + 1) * c - now)
  end
  -- Cooldown, gates and sets: {untilMicros}, INF for never.
  return deadlineTtl(s[1], now)
end

-- Micros from now until the state s, the text raw read by kind, equals absent: a deadline kind's state that carries
-- its mark by its writer's measure, whoever reads it; any other by kind's.
local function lifetime(raw, s, kind, now, a, b, c)
  if #s == 1 and mark(raw) then
    return deadlineTtl(s[1], now)
  end
  return ttl(kind, s, now, a, b, c)
end

-- The outcome of p permits against s at now, changing nothing. Every kind but the token bucket.
local function eval(kind, s, now, p, a, b, c)
  if kind == 'f' then
    if p > a then
      return NEVER
    end
    -- Windows are aligned to the epoch; a clock that went backwards stays in the newest window seen.
    local index, count = fdiv(now, b), 0
    if s and s[1] >= index then
      index, count = s[1], s[2]
    end
    if count + p <= a then
      return admitted(a - count - p)
    end
    return rejected((index + 1) * b - now)
  elseif kind == 'l' then
    if p > a then
      return NEVER
    end
    local first, count = 1, 0
    if s then
      first = firstLive(s, now, b)
      count = #s - first + 1
    end
    local excess = count + p - a
    if excess <= 0 then
      return admitted(-excess)
    end
    -- The excess-th oldest live permit must leave the window first.
    return rejected(s[first + excess - 1] + b - now)
  elseif kind == 'c' then
    if p > a then
      return NEVER
    end
    local slots, current, counted = b + 1, fdiv(now, c), 0
    if s then
      current = max(current, s[1])
      for i = current - b, current do
        counted = counted + countOf(s, i, slots)
      end
    end
    -- counted - (a - p), not counted + p - a: the sum may pass 2^53 (a limit near it) and round, an excess one off.
    local excess = counted - (a - p)
    if excess <= 0 then
      return admitted(-excess)
    end
    -- Step forward bucket by bucket until enough old counts have left the counted span.
    local dropped = 0
    for m = 1, slots do
      dropped = dropped + countOf(s, current - b + m - 1, slots)
      if dropped >= excess then
        return rejected((current + m) * c - now)
      end
    end
    return redis.error_reply('guard: sliding counter state holds more than its limit')
  elseif kind == 'd' then
    -- Cooldown. a = periodMicros. Permits above one count as one; zero permits only look.
    if not s or now >= s[1] then
      if p == 0 then
        return 1
      end
      return 0
    end
    -- A deadline that never ends (a gate's or a set's, read as this cooldown's own): as a gate answers it.
    if s[1] == INF then
      return SHUT
    end
    return rejected(s[1] - now)
  elseif kind == 'g' then
    -- Gate: nothing passes until the deadline that gate.lua raised.
    if not s or now >= s[1] then
      return UNLIMITED
    end
    if s[1] == INF then
      return SHUT
    end
    return rejected(s[1] - now)
  elseif kind == 'a' then
    -- Membership.MUST_BE_ABSENT: a blocklist.
    if not s or now >= s[1] then
      return UNLIMITED
    end
    if s[1] == INF then
      return NEVER
    end
    return rejected(s[1] - now)
  elseif kind == 'p' then
    -- Membership.MUST_BE_PRESENT: required registration.
    if s and now < s[1] then
      return UNLIMITED
    end
    return NEVER
  end
  return redis.error_reply('guard: unknown limit kind ' .. tostring(kind))
end

-- The state after admitting p permits at now (may change s itself), or nil for absent. Only kinds that write, but
-- the token bucket.
local function commit(kind, s, now, p, a, b, c)
  if kind == 'f' then
    local index, count = fdiv(now, b), 0
    if s and s[1] >= index then
      index, count = s[1], s[2]
    end
    return { index, count + p }
  elseif kind == 'l' then
    local nxt, n = {}, 0
    if s then
      for i = firstLive(s, now, b), #s do
        n = n + 1
        nxt[n] = s[i]
      end
    end
    -- A clock that went backwards must not break the ascending order.
    local stamp = now
    if n > 0 and nxt[n] > stamp then
      stamp = nxt[n]
    end
    for _ = 1, p do
      n = n + 1
      nxt[n] = stamp
    end
    return nxt
  elseif kind == 'c' then
    local slots, current = b + 1, fdiv(now, c)
    if s then
      current = max(current, s[1])
      -- Clear the slots of buckets that fell out between the newest held bucket and the current one.
      for i = max(s[1] + 1, current - b), current do
        s[2 + fmod(i, slots)] = 0
      end
    else
      s = {}
      for i = 1, slots + 1 do
        s[i] = 0
      end
    end
    s[1] = current
    local at = 2 + fmod(current, slots)
    s[at] = s[at] + p
    return s
  elseif kind == 'd' then
    if p == 0 then
      return s
    end
    return { now + a }
  end
  return s
end

-- Whether index, of windows unit micros long, is a window that begins more than LEAD after now: floor((now + LEAD) /
-- unit) from terms below 2^53, since the rounded sum could be off by one window near 2^53.
local function indexDated(index, now, unit)
  return index > fdiv(now, unit) + fdiv(fmod(now, unit) + LEAD, unit)
end

-- Whether s (of kind's shape) carries a time more than LEAD after now: a window's index, a timestamp at either end of a
-- log or of a duplicate window's pairs, a bucket's last update. Another limit wrote it (a shorter window, a deadline
-- that never ends) or a clock more than a day ahead did; it reads as absent. Deadlines are not dated.
local function dated(kind, s, now, a, b, c)
  local latest = now + LEAD -- may round above 2^53, which changes no comparison with a value below it
  if kind == 't' then
    return s[2] > latest
  elseif kind == 'f' then
    return indexDated(s[1], now, b)
  elseif kind == 'c' then
    return indexDated(s[1], now, c)
  elseif kind == 'l' then
    return #s > 0 and (s[1] > latest or s[#s] > latest)
  elseif kind == 'w' then
    return #s > 0 and (s[2] > latest or s[#s] > latest)
  end
  return false
end

-- The state that the text raw (false: no key) holds at now, or nil when it is absent, past its ttl (its writer's, for
-- a marked deadline), of another shape (the limit was reconfigured) or dated. A key whose text reads as absent must be
-- deleted unless the caller writes it anyway, as ReferenceStorage drops expired entries when it reads them: see
-- evaluate.
local function state(raw, kind, now, a, b, c)
  if not raw then
    return nil
  end
  local s = decode(raw)
  if not shaped(kind, s, a, b) or dated(kind, s, now, a, b, c) or lifetime(raw, s, kind, now, a, b, c) <= 0 then
    return nil
  end
  return s
end

-- Whether the text raw at a key, which reads as absent for kind at now, is expired state to drop on reading, as
-- ReferenceStorage drops what expired: a marked deadline that has passed, whoever reads it; else state of kind's shape,
-- not dated, its ttl run out. State of another shape, or dated, is another limit's: it reads as absent but stays, as
-- the reference keeps it, until its own expiry in Redis. So does one number without a mark that a deadline kind reads:
-- a sliding log's timestamp that may still be in its window, or a deadline that a version before the mark wrote,
-- which Redis expires within the margin.
-- (State of the same shape that a bucket, a window or a log wrote is judged by kind's measure: a ten-second window
-- drops an hour window's state whose hour is still running, which the reference keeps; their text does not say who
-- wrote it.)
local function stale(raw, kind, now, a, b, c)
  local s = decode(raw)
  if #s == 1 then
    if mark(raw) then
      return deadlineTtl(s[1], now) <= 0
    elseif DEADLINE[kind] then
      return false
    end
  end
  return shaped(kind, s, a, b) and not dated(kind, s, now, a, b, c) and ttl(kind, s, now, a, b, c) <= 0
end

-- How many milliseconds a key outlives its ttl in Redis, so that callers whose clocks lag Redis' (or each other's)
-- never find their state gone early; every script that writes sets it from its arguments. A key read after its ttl
-- on the caller's clock is absent anyway (see state).
local margin = 0

-- Writes text at key to expire in left micros (rounded up to whole milliseconds: never earlier) plus the margin, or
-- never when left is INF; deletes the key instead when left <= 0 (the state equals absent). Returns what it wrote, or
-- false.
local function store(key, existed, left, text)
  if left <= 0 then
    if existed then
      call('DEL', key)
    end
    return false
  end
  if left == INF then
    call('SET', key, text)
  else
    -- The milliseconds as text: the server turns a Lua number into text through a double format, slower than %d.
    call('SET', key, text, 'PX', format('%d', cdiv(left, 1000) + margin))
  end
  return text
end

-- Writes s at key (existed: the key holds text) to expire at its ttl, or deletes the key when s equals absent; a
-- deadline kind's with its mark. Returns the text written, or false.
local function put(key, kind, s, now, existed, a, b, c)
  local left, text = 0, false
  if s then
    left = ttl(kind, s, now, a, b, c)
  end
  if left > 0 then
    if DEADLINE[kind] then
      text = deadlineText(kind, s[1])
    else
      text = encode(s)
    end
  end
  return store(key, existed, left, text)
end

-- TokenBucket's path. a = rate (ticksPerMicro), per = ticksPerToken, cap = capacity. The state's text is
-- "levelTicks lastMicros", as encode writes it.

-- The outcome of p permits against the text raw (false: no key) at now, the level in ticks at now, and the last
-- update of a live state (nil when absent, past its ttl or of another shape).
local function bucketEval(raw, now, p, rate, per, cap)
  local capT = cap * per
  local lvl, last = capT, nil
  if raw then
    local space = find(raw, ' ', 1, true)
    if space then
      local l, t = tonumber(sub(raw, 1, space - 1)), tonumber(sub(raw, space + 1))
      if l and t and t <= now + LEAD then
        l = level(l, t, now, capT, rate)
        if bucketTtl(l, t, now, capT, rate) > 0 then
          lvl, last = l, t
        end
      end
    end
  end
  if p > cap then
    return NEVER, lvl, last
  end
  local need = p * per
  if lvl >= need then
    return admitted(fdiv(lvl - need, per)), lvl, last
  end
  -- A clock that went backwards leaves last ahead of now, and refill resumes only from there.
  local ahead = 0
  if last and last > now then
    ahead = last - now
  end
  return rejected(ahead + cdiv(need - lvl, rate)), lvl, last
end

-- Takes p permits from a bucket at level lvl (last: its last update, nil when absent) and writes it at key as put
-- does (existed: the key holds text). Returns the text written, or false.
local function bucketPut(key, existed, now, lvl, last, p, rate, per, cap)
  lvl = lvl - p * per
  if not last or last < now then
    last = now
  end
  local left = bucketTtl(lvl, last, now, cap * per, rate)
  return store(key, existed, left, left > 0 and format('%d %d', lvl, last))
end

-- DuplicateWindow's path. cap = capacity, w = windowMicros. The state's text is pairs "item admittedAt", oldest first,
-- as windowPut writes it. Every state's words are decimal numbers (a word that is not, "max", stands alone in the
-- state of a gate or a set, which has an odd number of words), so the pairs are read by their spaces, a plain search
-- each, without making a string of every word: only the admittedAt of the pairs up to the first live one and of the
-- last one are parsed, and the item's text is searched for once, so that the item words are compared only where it
-- occurs. A commit keeps the text of the pairs it keeps and appends the new one: only that pair is formatted.

-- The outcome of the item whose decimal text is text (as LuaArgs writes it and %d would) against the text raw (false:
-- no key) at now; then, for a live state (nil when absent, past its ttl or of another shape), where the text of the
-- pairs that a commit keeps begins (false: none) and the last pair's admittedAt.
local function windowEval(raw, now, text, cap, w)
  if not raw then
    return 0
  end
  -- The next place where the item's text occurs (nil: nowhere, the common case).
  local seen = find(raw, text, 1, true)
  -- n pairs so far, the current one's words beginning at `at` and after `space`, ending before `stop` (nil: at the
  -- end); the first live pair is pair `live`, its text beginning at `from` and the next one's at `second`; t: the
  -- admittedAt last parsed, of pair `parsed`; hit: the admittedAt of the first live pair that holds the item.
  local n, at, space, stop, live, from, second, t, parsed, hit = 0, 1, nil, nil, nil, nil, nil, nil, 0, nil
  local oldest -- the first pair's admittedAt
  repeat
    space = find(raw, ' ', at, true)
    if not space then
      return 0 -- an odd number of words: another limit's state
    end
    stop = find(raw, ' ', space + 1, true)
    n = n + 1
    if n > cap then
      return 0 -- more pairs than the capacity: another limit's state
    end
    if not live then
      t, parsed = tonumber(sub(raw, space + 1, (stop or 0) - 1)), n
      if n == 1 then
        oldest = t
      end
      if not t then
        return 0 -- not a number: no limit writes such a state
      elseif t + w > now then
        live, from, second = n, at, stop and stop + 1
      end
    end
    if live and seen and not hit then
      if seen < at then
        seen = find(raw, text, at, true)
      end
      if seen == at and space - at == #text then
        hit = tonumber(sub(raw, space + 1, (stop or 0) - 1))
      end
    end
    at = stop and stop + 1
  until not stop
  local last = t
  if parsed < n then
    last = tonumber(sub(raw, space + 1))
  end
  if not last or last + w <= now then
    return 0 -- past its ttl (or not a number)
  end
  if oldest > now + LEAD or last > now + LEAD then
    return 0 -- dated: another limit's state, read as absent
  end
  if hit then
    return rejected(hit + w - now), from, last
  end
  if n - live + 1 == cap then
    from = second or false -- full: the oldest item is forgotten early
  end
  return 0, from, last
end

-- Appends item at now to the pairs of raw that windowEval kept (from: where their text begins, false: none; last: the
-- last one's admittedAt), and writes the text at key to expire as put does (raw: the key's text, false: none).
-- Returns the text written.
local function windowPut(key, raw, now, from, last, item, w)
  local stamp, text = now, nil
  if from then
    -- A clock that went backwards must not break the oldest-first order.
    if last > now then
      stamp = last
    end
    local kept = raw
    if from > 1 then
      kept = sub(raw, from)
    end
    text = format('%s %d %d', kept, item, stamp)
  else
    text = format('%d %d', item, stamp)
  end
  return store(key, raw, stamp + w - now, text)
end
