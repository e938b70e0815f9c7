
-- Raises a gate, merging by maximum with the deadline in force (one that has not passed), and answers the deadline
-- in force.
-- keys[1]: the gate. args[1]: the deadline in micros, 'max' for never. args[2]: now in micros for the expiry, ''
-- for the server's TIME. args[3]: the expiry margin in milliseconds.
local function gate(keys, args)
  margin = tonumber(args[3])
  local target = INF
  if args[1] ~= 'max' then
    target = tonumber(args[1])
  end
  local raw = call('GET', keys[1])
  local s = decode(raw)
  local now = clock(args[2])
  -- A deadline that has passed is in force no more: it merges with nothing (the key outlives it by the margin).
  if s and #s == 1 and s[1] > target and s[1] > now then
    target = s[1]
  end
  put(keys[1], 'g', { target }, now, raw, 0, 0, 0)
  if target == INF then
    return UNLIMITED
  end
  return target
end
