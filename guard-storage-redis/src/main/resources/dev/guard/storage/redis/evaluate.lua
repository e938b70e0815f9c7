
-- Evaluates a batch all-or-nothing: every step is evaluated against the state before the batch, and only when
-- every step admits does every step commit.
-- KEYS: the steps' state keys. ARGV[1]: now in micros, '' for the server's TIME. ARGV[2]: the reply, 'i' the one
-- step's outcome, 'm' the outcomes, 'j' the outcomes, now, then each step's text before and after the commit (false
-- when absent or not written) so that a cross-slot batch can be refunded. Then 5 values per step: kind, permits and
-- the kind's parameters a, b, c.
local now, mode, n = clock(ARGV[1]), ARGV[2], #KEYS
local kinds, p, a, b, c, states, raws, out = {}, {}, {}, {}, {}, {}, {}, {}
local admit = true
for i = 1, n do
  local o = 2 + (i - 1) * 5
  local kind = K[ARGV[o + 1]]
  if not kind then
    return redis.error_reply('guard: unknown limit kind ' .. ARGV[o + 1])
  end
  kinds[i], p[i], a[i], b[i], c[i] =
    kind, tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5])
  states[i], raws[i] = load(KEYS[i], kind, now, a[i], b[i], c[i])
  out[i] = kind.eval(states[i], now, p[i], a[i], b[i], c[i])
  if out[i] < 0 then
    admit = false
  end
end
local before, after = {}, {}
if admit then
  for i = 1, n do
    local kind = kinds[i]
    if kind.commit then
      before[i] = raws[i]
      after[i] = put(KEYS[i], kind, kind.commit(states[i], now, p[i], a[i], b[i], c[i]), now, raws[i], a[i], b[i], c[i])
    end
  end
end
if mode == 'i' then
  return out[1]
end
if mode == 'j' then
  out[n + 1] = now
  for i = 1, n do
    out[n + 2 * i] = before[i] or false
    out[n + 2 * i + 1] = after[i] or false
  end
end
return out
