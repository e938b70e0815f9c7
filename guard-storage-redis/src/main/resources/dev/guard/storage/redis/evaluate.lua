
-- Evaluates a batch all-or-nothing: every step is evaluated against the state before the batch, and only when
-- every step admits does every step commit.
-- keys: the steps' state keys. args[1]: now in micros, '' for the server's TIME. args[2]: the reply, 'i' the one
-- step's outcome, 'm' the outcomes, 'j' the outcomes, now, then each step's text before and after the commit (false
-- when absent or not written) so that a cross-slot batch can be refunded. args[3]: the expiry margin in
-- milliseconds. Then 5 values per step: kind, permits and the kind's parameters a, b, c.
-- A key whose state reads as absent (past its ttl) is deleted, unless the batch writes it anyway.
local function evaluate(keys, args)
  local now, mode, n = clock(args[1]), args[2], #keys
  margin = tonumber(args[3])

  if n == 1 and mode == 'i' then
    -- One step, one outcome: the common single-limit call, without the batch's bookkeeping.
    local key, kind = keys[1], args[4]
    local p, a, b, c = tonumber(args[5]), tonumber(args[6]), tonumber(args[7]), tonumber(args[8])
    local raw = call('GET', key)
    if kind == 't' then
      local out, lvl, last = bucketEval(raw, now, p, a, b, c)
      if out >= 0 then
        bucketPut(key, raw, now, lvl, last, p, a, b, c)
      elseif raw and not last then
        call('DEL', key)
      end
      return out
    end
    if not known(kind) then
      return redis.error_reply('guard: unknown limit kind ' .. kind)
    end
    local s = state(raw, kind, now, a, b, c)
    local out = eval(kind, s, now, p, a, b, c)
    if out >= 0 and writes(kind) then
      put(key, kind, commit(kind, s, now, p, a, b, c), now, raw, a, b, c)
    elseif raw and not s then
      call('DEL', key)
    end
    return out
  end

  -- states[i]: the state table, or for a token bucket its level at now; lasts[i]: a token bucket's last update.
  local out, raws, states, lasts, live = {}, {}, {}, {}, {}
  local admit = true
  for i = 1, n do
    local o = 3 + (i - 1) * 5
    local kind = args[o + 1]
    local p, a, b, c = tonumber(args[o + 2]), tonumber(args[o + 3]), tonumber(args[o + 4]), tonumber(args[o + 5])
    local raw = call('GET', keys[i])
    raws[i] = raw
    if kind == 't' then
      out[i], states[i], lasts[i] = bucketEval(raw, now, p, a, b, c)
      live[i] = lasts[i] ~= nil
    elseif known(kind) then
      local s = state(raw, kind, now, a, b, c)
      states[i], live[i] = s, s ~= nil
      out[i] = eval(kind, s, now, p, a, b, c)
    else
      return redis.error_reply('guard: unknown limit kind ' .. kind)
    end
    if out[i] < 0 then
      admit = false
    end
  end
  -- The journal (mode 'j') follows the outcomes: now, then each step's text before and after the commit.
  local journal = mode == 'j'
  if journal then
    out[n + 1] = now
  end
  for i = 1, n do
    local o = 3 + (i - 1) * 5
    local kind, raw, before, written = args[o + 1], raws[i], false, false
    if admit and writes(kind) then
      local p, a, b, c = tonumber(args[o + 2]), tonumber(args[o + 3]), tonumber(args[o + 4]), tonumber(args[o + 5])
      if kind == 't' then
        written = bucketPut(keys[i], raw, now, states[i], lasts[i], p, a, b, c)
      else
        written = put(keys[i], kind, commit(kind, states[i], now, p, a, b, c), now, raw, a, b, c)
      end
      before = live[i] and raw
    elseif raw and not live[i] then
      call('DEL', keys[i])
    end
    if journal then
      out[n + 2 * i], out[n + 2 * i + 1] = before, written
    end
  end
  return out
end
