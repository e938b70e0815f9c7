-- Guard's limit kinds: the reference semantics of dev.guard.limit.* in Lua, step for step. Every script of this
-- backend starts with this file (RedisScript concatenates them).
--
-- Lua numbers are IEEE-754 doubles. Every value here is an integer below 2^53 in magnitude, where doubles are
-- exact, and every division goes through fdiv, which corrects the off-by-one of a rounded quotient.
-- A state is a list of numbers stored as decimal text separated by spaces, "max" standing for Long.MAX_VALUE.

local tonumber, floor, max, find, sub, format, concat =
  tonumber, math.floor, math.max, string.find, string.sub, string.format, table.concat
local call = redis.call

local EXACT = 9007199254740992 -- 2^53
local UNLIMITED = EXACT -- reply: admitted with Long.MAX_VALUE remaining (gates and sets)
local NEVER = -EXACT -- reply: Outcome.NEVER
local SHUT = -EXACT - 2 -- reply: rejected by a gate raised to Long.MAX_VALUE (Java computes the wait)
local INF = math.huge -- Long.MAX_VALUE as a deadline or a ttl: never

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
    if word == 'max' then
      s[n] = INF
    else
      s[n] = tonumber(word)
    end
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

-- The server's clock in microseconds when arg is empty, else the caller's.
local function clock(arg)
  if arg ~= '' then
    return tonumber(arg)
  end
  local t = call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A deadline's ttl, for gates and set memberships: {untilMicros}, INF for never.
local function deadline(s, now)
  if s[1] == INF then
    return INF
  end
  return max(0, s[1] - now)
end

-- Each kind: eval(s, now, p, a, b, c) -> reply; commit(...) -> next state or nil; ttl(s, now, a, b, c) -> micros
-- (0: equals absent, INF: never expires); refund(s, written, now, p, a, b, c) -> s without this batch's permits;
-- size(b) -> the length of a well-formed state (nil: any). Gates and sets have no commit: others write them.
-- The kinds are built the first time a call needs them: a script's closures are created anew on every call, so a
-- call pays only for the kinds it uses.
local K = setmetatable({}, {
  __index = function(kinds, code)
    local kind
    if code == 't' then
      -- TokenBucket. a = ticksPerMicro, b = ticksPerToken, c = capacity. State {levelTicks, lastMicros}.
      local function level(s, now, cap, rate)
        if not s then
          return cap
        end
        local lvl, elapsed = s[1], now - s[2]
        if elapsed <= 0 then
          return lvl
        end
        -- Compare before multiplying, as the Java code does, so that the product stays below 2^53.
        if elapsed >= cdiv(cap - lvl, rate) then
          return cap
        end
        return lvl + elapsed * rate
      end

      kind = {
        size = function()
          return 2
        end,
        eval = function(s, now, p, a, b, c)
          if p > c then
            return NEVER
          end
          local lvl, need = level(s, now, c * b, a), p * b
          if lvl >= need then
            return admitted(fdiv(lvl - need, b))
          end
          -- A clock that went backwards leaves lastMicros ahead of now, and refill resumes only from there.
          local ahead = 0
          if s and s[2] > now then
            ahead = s[2] - now
          end
          return rejected(ahead + cdiv(need - lvl, a))
        end,
        commit = function(s, now, p, a, b, c)
          local lvl = level(s, now, c * b, a) - p * b
          if not s then
            return { lvl, now }
          end
          return { lvl, max(s[2], now) }
        end,
        ttl = function(s, now, a, b, c)
          local missing = c * b - level(s, now, c * b, a)
          if missing == 0 then
            return 0
          end
          return max(0, s[2] - now) + cdiv(missing, a)
        end,
        refund = function(s, written, now, p, a, b, c)
          local cap = c * b
          local lvl = level(s, now, cap, a) + p * b
          if lvl > cap then
            lvl = cap
          end
          return { lvl, max(s[2], now) }
        end,
      }
    elseif code == 'f' then
      -- FixedWindow. a = limit, b = windowMicros. State {windowIndex, count}.
      local function window(s, now, w)
        local index = fdiv(now, w)
        -- A clock that went backwards stays in the newest window seen.
        if s and s[1] > index then
          index = s[1]
        end
        return index
      end

      kind = {
        size = function()
          return 2
        end,
        eval = function(s, now, p, a, b)
          if p > a then
            return NEVER
          end
          local index = window(s, now, b)
          local count = 0
          if s and s[1] == index then
            count = s[2]
          end
          if count + p <= a then
            return admitted(a - count - p)
          end
          return rejected((index + 1) * b - now)
        end,
        commit = function(s, now, p, a, b)
          local index = window(s, now, b)
          local count = 0
          if s and s[1] == index then
            count = s[2]
          end
          return { index, count + p }
        end,
        ttl = function(s, now, a, b)
          return max(0, (s[1] + 1) * b - now)
        end,
        refund = function(s, written, now, p)
          if s[1] == written[1] then
            s[2] = max(0, s[2] - p)
          end
          return s
        end,
      }
    elseif code == 'l' then
      -- SlidingWindowLog. a = limit, b = windowMicros. State: the counted permits' timestamps, ascending.
      local function firstLive(s, now, w)
        local i = 1
        while i <= #s and s[i] + w <= now do
          i = i + 1
        end
        return i
      end

      kind = {
        eval = function(s, now, p, a, b)
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
        end,
        commit = function(s, now, p, a, b)
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
        end,
        ttl = function(s, now, a, b)
          if #s == 0 then
            return 0
          end
          return max(0, s[#s] + b - now)
        end,
        refund = function(s, written, now, p)
          -- Drop p copies of the stamp this batch appended; copies are equal, so which ones does not matter.
          local stamp, left, drop = written[#written], p, {}
          for i = #s, 1, -1 do
            if left > 0 and s[i] == stamp then
              drop[i] = true
              left = left - 1
            end
          end
          local nxt, n = {}, 0
          for i = 1, #s do
            if not drop[i] then
              n = n + 1
              nxt[n] = s[i]
            end
          end
          return nxt
        end,
      }
    elseif code == 'c' then
      -- SlidingWindowCounter. a = limit, b = buckets, c = bucketMicros. State {newestIndex, count of bucket i at
      -- 2 + (i mod (buckets + 1)) ...}.
      local function countOf(s, i, slots)
        local newest = s[1]
        if i > newest or i <= newest - slots then
          return 0
        end
        return s[2 + fmod(i, slots)]
      end

      local function current(s, now, c)
        local index = fdiv(now, c)
        if s and s[1] > index then
          index = s[1]
        end
        return index
      end

      kind = {
        size = function(b)
          return b + 2
        end,
        eval = function(s, now, p, a, b, c)
          if p > a then
            return NEVER
          end
          local slots, cur, counted = b + 1, current(s, now, c), 0
          if s then
            for i = cur - b, cur do
              counted = counted + countOf(s, i, slots)
            end
          end
          local excess = counted + p - a
          if excess <= 0 then
            return admitted(-excess)
          end
          -- Step forward bucket by bucket until enough old counts have left the counted span.
          local dropped = 0
          for m = 1, slots do
            dropped = dropped + countOf(s, cur - b + m - 1, slots)
            if dropped >= excess then
              return rejected((cur + m) * c - now)
            end
          end
          return redis.error_reply('guard: sliding counter state holds more than its limit')
        end,
        commit = function(s, now, p, a, b, c)
          local slots, cur = b + 1, current(s, now, c)
          local nxt = s
          if s then
            -- Clear the slots of buckets that fell out between the newest held bucket and the current one.
            for i = max(s[1] + 1, cur - b), cur do
              s[2 + fmod(i, slots)] = 0
            end
          else
            nxt = {}
            for i = 1, slots + 1 do
              nxt[i] = 0
            end
          end
          nxt[1] = cur
          local at = 2 + fmod(cur, slots)
          nxt[at] = nxt[at] + p
          return nxt
        end,
        ttl = function(s, now, a, b, c)
          -- The newest bucket stops counting once bucket newest + buckets + 1 begins.
          return max(0, (s[1] + b + 1) * c - now)
        end,
        refund = function(s, written, now, p, a, b)
          local slots, index = b + 1, written[1]
          if index <= s[1] and index > s[1] - slots then
            local at = 2 + fmod(index, slots)
            s[at] = max(0, s[at] - p)
          end
          return s
        end,
      }
    elseif code == 'd' then
      -- Cooldown. a = periodMicros. State {untilMicros}.
      kind = {
        size = function()
          return 1
        end,
        eval = function(s, now, p)
          if not s or now >= s[1] then
            if p == 0 then
              return 1
            end
            return 0
          end
          return rejected(s[1] - now)
        end,
        commit = function(s, now, p, a)
          if p == 0 then
            return s
          end
          return { now + a }
        end,
        ttl = function(s, now)
          return max(0, s[1] - now)
        end,
        refund = function(s)
          -- A different deadline is a newer cooldown that somebody else started legitimately: keep it.
          return s
        end,
      }
    elseif code == 'g' then
      -- Gate. State {untilMicros}, raised by gate.lua.
      kind = {
        size = function()
          return 1
        end,
        ttl = deadline,
        eval = function(s, now)
          if not s or now >= s[1] then
            return UNLIMITED
          end
          if s[1] == INF then
            return SHUT
          end
          return rejected(s[1] - now)
        end,
      }
    elseif code == 'a' then
      -- Membership: 'a' admits non-members (a blocklist), 'p' admits members (registration). State {expiresAtMicros}.
      kind = {
        size = function()
          return 1
        end,
        ttl = deadline,
        eval = function(s, now)
          if not s or now >= s[1] then
            return UNLIMITED
          end
          if s[1] == INF then
            return NEVER
          end
          return rejected(s[1] - now)
        end,
      }
    elseif code == 'p' then
      kind = {
        size = function()
          return 1
        end,
        ttl = deadline,
        eval = function(s, now)
          if s and now < s[1] then
            return UNLIMITED
          end
          return NEVER
        end,
      }
    end
    kinds[code] = kind
    return kind
  end,
})

-- Reads the state at key; a state past its ttl (or of another shape: the limit was reconfigured) is deleted and
-- reads as absent, as ReferenceStorage drops expired entries when it reads them. Returns the state and its text.
local function load(key, kind, now, a, b, c)
  local raw = call('GET', key)
  if not raw then
    return nil, false
  end
  local s = decode(raw)
  if (kind.size and #s ~= kind.size(b)) or kind.ttl(s, now, a, b, c) <= 0 then
    call('DEL', key)
    return nil, false
  end
  return s, raw
end

-- How many milliseconds a key outlives its ttl in Redis, so that callers whose clocks lag Redis' (or each other's)
-- never find their state gone early; every script that writes sets it from its arguments. A key read after its ttl
-- on the caller's clock is absent anyway (see load).
local margin = 0

-- Writes s at key to expire at its ttl (rounded up to whole milliseconds: never earlier) plus the margin, or deletes
-- the key when s equals absent. Returns the text written, or false.
local function put(key, kind, s, now, existed, a, b, c)
  local ttl = 0
  if s then
    ttl = kind.ttl(s, now, a, b, c)
  end
  if ttl <= 0 then
    if existed then
      call('DEL', key)
    end
    return false
  end
  local text = encode(s)
  if ttl == INF then
    call('SET', key, text)
  else
    call('SET', key, text, 'PX', cdiv(ttl, 1000) + margin)
  end
  return text
end
