
-- Set memberships. KEYS[1]: the membership.
-- ARGV[1] 'add': ARGV[2] the expiry in micros ('max' for never), ARGV[3] now for the expiry ('' for the server's
-- TIME), ARGV[4] the expiry margin in milliseconds; answers 1.
-- ARGV[1] 'is': ARGV[2] now ('' for the server's TIME); answers 1 for a member in force, else 0.
if ARGV[1] == 'add' then
  margin = tonumber(ARGV[4])
  local expires = INF
  if ARGV[2] ~= 'max' then
    expires = tonumber(ARGV[2])
  end
  put(KEYS[1], 'p', { expires }, clock(ARGV[3]), true, 0, 0, 0)
  return 1
end
if load(KEYS[1], 'p', clock(ARGV[2]), 0, 0, 0) then
  return 1
end
return 0
