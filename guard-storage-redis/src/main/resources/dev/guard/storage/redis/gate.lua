
-- Raises a gate, merging by maximum with the deadline already set, and answers the deadline in force.
-- KEYS[1]: the gate. ARGV[1]: the deadline in micros, 'max' for never. ARGV[2]: now in micros for the expiry, ''
-- for the server's TIME. ARGV[3]: the expiry margin in milliseconds.
margin = tonumber(ARGV[3])
local target = INF
if ARGV[1] ~= 'max' then
  target = tonumber(ARGV[1])
end
local raw = redis.call('GET', KEYS[1])
local s = decode(raw)
if s and #s == 1 and s[1] > target then
  target = s[1]
end
put(KEYS[1], 'g', { target }, clock(ARGV[2]), raw, 0, 0, 0)
if target == INF then
  return UNLIMITED
end
return target
