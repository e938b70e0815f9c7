
-- The journal's text for another limit's state at key, raw, that a commit is about to overwrite (of another shape, or
-- dated: it reads as absent but stays, as the reference keeps it): '@', the Redis time in milliseconds when the key
-- expires (-1: never), a space, then raw, so that a refund can put back the text and its expiry.
local function another(key, raw)
  local at = redis.pcall('PEXPIRETIME', key)
  if type(at) ~= 'number' then
    -- Before Redis 7: the time left, from the server's clock.
    local left, t = call('PTTL', key), call('TIME')
    at = -1
    if left >= 0 then
      at = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000) + left
    end
  end
  return format('@%d %s', at, raw)
end

-- One step alone, its key key and its text text (see step): its outcome, or an error reply when text is malformed.
local function single(key, text, now)
  local st = step(text)
  if not st then
    return malformed(text)
  end
  local kind, p, a, b, c = st[1], st[2], st[3], st[4], st[5]
  local raw = call('GET', key)
  if kind == 't' then
    local out, lvl, last = bucketEval(raw, now, p, a, b, c)
    if out >= 0 then
      bucketPut(key, raw, now, lvl, last, p, a, b, c)
    elseif raw and not last and stale(raw, kind, now, a, b, c) then
      call('DEL', key)
    end
    return out
  elseif kind == 'w' then
    local out, from, last = windowEval(raw, now, st[6], a, b)
    -- An admitted item is always written; a rejected one was found in a live state.
    if out >= 0 then
      windowPut(key, raw, now, from, last, p, b)
    end
    return out
  end
  local s = state(raw, kind, now, a, b, c)
  local out = eval(kind, s, now, p, a, b, c)
  if out >= 0 and writes(kind) then
    put(key, kind, commit(kind, s, now, p, a, b, c), now, raw, a, b, c)
  elseif raw and not s and stale(raw, kind, now, a, b, c) then
    call('DEL', key)
  end
  return out
end

-- Evaluates n steps all-or-nothing: every step is evaluated against the state before the batch, and only when every
-- step admits does every step commit. Step i's key is keys[k + i] and its text args[a + i]; its outcome goes to
-- out[o + i]. With journal, out[o + n + 1] is now, then out[o + n + 2i] and out[o + n + 2i + 1] step i's text before
-- and after the commit (false when absent or not written; another limit's state as `another` writes it), so that a
-- cross-slot batch can be refunded. Answers nil, or an error reply when a step's text is malformed (nothing written).
-- A key whose state reads as absent because it expired is deleted, unless the batch writes it anyway; another limit's
-- state (of another shape, or dated, or one number without a deadline's mark read by a gate, a cooldown or a set)
-- stays: see stale.
local function batch(keys, k, args, a0, n, now, journal, out, o)
  -- held[4i-3 .. 4i]: step i's parsed step, its key's text (false: none), its state (for a token bucket its level
  -- at now, for a duplicate window where the text it keeps begins; false: absent or none), and for a token bucket its
  -- last update, for a duplicate window its last admittedAt, else whether its state is live (false: absent).
  local held = slots(4 * n)
  local admit = true
  for i = 1, n do
    local st = step(args[a0 + i])
    if not st then
      return malformed(args[a0 + i])
    end
    local kind, p, a, b, c = st[1], st[2], st[3], st[4], st[5]
    local raw, h = call('GET', keys[k + i]), 4 * i
    held[h - 3], held[h - 2] = st, raw
    local r
    if kind == 't' then
      local lvl, last
      r, lvl, last = bucketEval(raw, now, p, a, b, c)
      held[h - 1], held[h] = lvl, last or false
    elseif kind == 'w' then
      local from, last
      r, from, last = windowEval(raw, now, st[6], a, b)
      held[h - 1], held[h] = from or false, last or false
    else
      local s = state(raw, kind, now, a, b, c)
      r = eval(kind, s, now, p, a, b, c)
      held[h - 1], held[h] = s or false, s ~= nil
    end
    out[o + i] = r
    if r < 0 then
      admit = false
    end
  end
  if journal then
    out[o + n + 1] = now
  end
  for i = 1, n do
    local h, key = 4 * i, keys[k + i]
    local st, raw, live = held[h - 3], held[h - 2], held[h] ~= false
    local kind, before, written = st[1], false, false
    if admit and writes(kind) then
      local p, a, b, c = st[2], st[3], st[4], st[5]
      if live then
        before = raw
      elseif journal and raw and not stale(raw, kind, now, a, b, c) then
        before = another(key, raw)
      end
      if kind == 't' then
        written = bucketPut(key, raw, now, held[h - 1], held[h], p, a, b, c)
      elseif kind == 'w' then
        written = windowPut(key, raw, now, held[h - 1], held[h], p, b)
      else
        written = put(key, kind, commit(kind, held[h - 1] or nil, now, p, a, b, c), now, raw, a, b, c)
      end
    elseif raw and not live and stale(raw, kind, now, st[3], st[4], st[5]) then
      call('DEL', key)
    end
    if journal then
      out[o + n + 2 * i], out[o + n + 2 * i + 1] = before, written
    end
  end
  return nil
end

-- The text of a failure that pcall caught: a Redis error reply's, or Lua's own.
local function failureText(e)
  if type(e) == 'table' and e.err then
    return e.err
  end
  return tostring(e)
end

-- Several decisions of different callers in one call, each all-or-nothing on its own and evaluated after the one
-- before it, as if each had been a call of its own in that order (mode 'c'). After the header, each decision has two
-- arguments, its step count n and its now ('' for the server's TIME), then its n steps; its keys follow the keys of
-- the decisions before it. The reply holds every decision's outcomes in order, except that a decision that failed
-- (a malformed step, an error from Redis) has the text of its failure in its first place and 0 in the others: the
-- decisions before and after it stand.
local function combined(keys, args)
  local out, k, a = {}, 0, 3
  while a < #args do
    local n, nowArg = tonumber(args[a + 1]), args[a + 2]
    a = a + 2
    local ok, failed
    if n == 1 then
      ok, failed = pcall(single, keys[k + 1], args[a + 1], clock(nowArg))
      if ok and type(failed) == 'number' then
        out[k + 1], failed = failed, nil
      end
    else
      ok, failed = pcall(batch, keys, k, args, a, n, clock(nowArg), false, out, k)
    end
    if not ok or failed then
      out[k + 1] = failureText(failed)
      for i = 2, n do
        out[k + i] = 0
      end
    end
    k, a = k + n, a + n
  end
  return out
end

-- Evaluates a batch all-or-nothing (see batch), or several (mode 'c', see combined).
-- keys: the steps' state keys. args[1]: now in micros, '' for the server's TIME. args[2]: the reply, 'i' the one
-- step's outcome, 'm' the outcomes, 'j' the outcomes, now, then each step's text before and after the commit, 'c'
-- several decisions' outcomes. args[3]: the expiry margin in milliseconds. Then one value per step, its text
-- "kind permits a b c" (see step).
local function evaluate(keys, args)
  local mode = args[2]
  margin = tonumber(args[3])
  if mode == 'c' then
    return combined(keys, args)
  end
  local now, n = clock(args[1]), #keys
  if n == 1 and mode == 'i' then
    -- One step, one outcome: the common single-limit call, without the batch's bookkeeping.
    return single(keys[1], args[4], now)
  end
  local journal = mode == 'j'
  local out = slots(journal and 3 * n + 1 or n)
  local failed = batch(keys, 0, args, 3, n, now, journal, out, 0)
  return failed or out
end
