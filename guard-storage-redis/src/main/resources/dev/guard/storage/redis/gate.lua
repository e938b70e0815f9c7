
-- Raises a gate, merging by maximum with the deadline already set, and answers the deadline in force.
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
  if s and #s == 1 and s[1] > target then
    target = s[1]
  end
  put(keys[1], 'g', { target }, clock(args[2]), raw, 0, 0, 0)
  if target == INF then
    return UNLIMITED
  end
  return target
end
