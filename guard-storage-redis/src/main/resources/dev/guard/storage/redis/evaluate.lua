
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

-- Evaluates a batch all-or-nothing: every step is evaluated against the state before the batch, and only when
-- every step admits does every step commit.
-- keys: the steps' state keys. args[1]: now in micros, '' for the server's TIME. args[2]: the reply, 'i' the one
-- step's outcome, 'm' the outcomes, 'j' the outcomes, now, then each step's text before and after the commit (false
-- when absent or not written; another limit's state as `another` writes it) so that a cross-slot batch can be
-- refunded. args[3]: the expiry margin in milliseconds. Then one value per step, its text "kind permits a b c" (see
-- step).
-- A key whose state reads as absent because it expired is deleted, unless the batch writes it anyway; another limit's
-- state (of another shape, or dated, or one number without a deadline's mark read by a gate, a cooldown or a set)
-- stays: see stale.
local function evaluate(keys, args)
  local now, mode, n = clock(args[1]), args[2], #keys
  margin = tonumber(args[3])

  if n == 1 and mode == 'i' then
    -- One step, one outcome: the common single-limit call, without the batch's bookkeeping.
    local key, st = keys[1], step(args[4])
    if not st then
      return malformed(args[4])
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

  -- held[4i-3 .. 4i]: step i's parsed step, its key's text (false: none), its state (for a token bucket its level
  -- at now, for a duplicate window where the text it keeps begins; false: absent or none), and for a token bucket its
  -- last update, for a duplicate window its last admittedAt, else whether its state is live (false: absent).
  local journal = mode == 'j'
  local out, held = slots(journal and 3 * n + 1 or n), slots(4 * n)
  local admit = true
  for i = 1, n do
    local st = step(args[3 + i])
    if not st then
      return malformed(args[3 + i])
    end
    local kind, p, a, b, c = st[1], st[2], st[3], st[4], st[5]
    local raw, h = call('GET', keys[i]), 4 * i
    held[h - 3], held[h - 2] = st, raw
    local o
    if kind == 't' then
      local lvl, last
      o, lvl, last = bucketEval(raw, now, p, a, b, c)
      held[h - 1], held[h] = lvl, last or false
    elseif kind == 'w' then
      local from, last
      o, from, last = windowEval(raw, now, st[6], a, b)
      held[h - 1], held[h] = from or false, last or false
    else
      local s = state(raw, kind, now, a, b, c)
      o = eval(kind, s, now, p, a, b, c)
      held[h - 1], held[h] = s or false, s ~= nil
    end
    out[i] = o
    if o < 0 then
      admit = false
    end
  end
  -- The journal (mode 'j') follows the outcomes: now, then each step's text before and after the commit.
  if journal then
    out[n + 1] = now
  end
  for i = 1, n do
    local h = 4 * i
    local st, raw, live = held[h - 3], held[h - 2], held[h] ~= false
    local kind, before, written = st[1], false, false
    if admit and writes(kind) then
      local p, a, b, c = st[2], st[3], st[4], st[5]
      if live then
        before = raw
      elseif journal and raw and not stale(raw, kind, now, a, b, c) then
        before = another(keys[i], raw)
      end
      if kind == 't' then
        written = bucketPut(keys[i], raw, now, held[h - 1], held[h], p, a, b, c)
      elseif kind == 'w' then
        written = windowPut(keys[i], raw, now, held[h - 1], held[h], p, b)
      else
        written = put(keys[i], kind, commit(kind, held[h - 1] or nil, now, p, a, b, c), now, raw, a, b, c)
      end
    elseif raw and not live and stale(raw, kind, now, st[3], st[4], st[5]) then
      call('DEL', keys[i])
    end
    if journal then
      out[n + 2 * i], out[n + 2 * i + 1] = before, written
    end
  end
  return out
end
