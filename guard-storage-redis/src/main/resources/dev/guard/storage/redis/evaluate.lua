
-- Evaluates a batch all-or-nothing: every step is evaluated against the state before the batch, and only when
-- every step admits does every step commit.
-- KEYS: the steps' state keys. ARGV[1]: now in micros, '' for the server's TIME. ARGV[2]: the reply, 'i' the one
-- step's outcome, 'm' the outcomes, 'j' the outcomes, now, then each step's text before and after the commit (false
-- when absent or not written) so that a cross-slot batch can be refunded. ARGV[3]: the expiry margin in
-- milliseconds. Then 5 values per step: kind, permits and the kind's parameters a, b, c.
local KEYS, ARGV = KEYS, ARGV -- globals are slow to read in Redis' protected environment
local now, mode, n = clock(ARGV[1]), ARGV[2], #KEYS
margin = tonumber(ARGV[3])

if n == 1 and mode == 'i' then
  -- One step, one outcome: the common single-limit call, without the batch's bookkeeping.
  local kind = ARGV[4]
  if not known(kind) then
    return redis.error_reply('guard: unknown limit kind ' .. kind)
  end
  local p, a, b, c = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local s, raw = load(KEYS[1], kind, now, a, b, c)
  local out = eval(kind, s, now, p, a, b, c)
  if out >= 0 and writes(kind) then
    put(KEYS[1], kind, commit(kind, s, now, p, a, b, c), now, raw, a, b, c)
  end
  return out
end

local kinds, p, a, b, c, states, raws, out = {}, {}, {}, {}, {}, {}, {}, {}
local admit = true
for i = 1, n do
  local o = 3 + (i - 1) * 5
  local kind = ARGV[o + 1]
  if not known(kind) then
    return redis.error_reply('guard: unknown limit kind ' .. kind)
  end
  kinds[i], p[i], a[i], b[i], c[i] =
    kind, tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5])
  states[i], raws[i] = load(KEYS[i], kind, now, a[i], b[i], c[i])
  out[i] = eval(kind, states[i], now, p[i], a[i], b[i], c[i])
  if out[i] < 0 then
    admit = false
  end
end
local before, after = {}, {}
if admit then
  for i = 1, n do
    local kind = kinds[i]
    if writes(kind) then
      before[i] = raws[i]
      after[i] = put(KEYS[i], kind, commit(kind, states[i], now, p[i], a[i], b[i], c[i]), now, raws[i], a[i], b[i], c[i])
    end
  end
end
if mode == 'j' then
  out[n + 1] = now
  for i = 1, n do
    out[n + 2 * i] = before[i] or false
    out[n + 2 * i + 1] = after[i] or false
  end
end
return out
