
-- Writes a versioned record if its version is still the expected one. KEYS[1]: the record (a hash of v, the
-- version, and d, the bytes). ARGV[1]: the expected version (0: absent). ARGV[2]: the bytes.
-- Answers the new version, or -1 when the version did not match.
local version = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
if version ~= tonumber(ARGV[1]) then
  return -1
end
redis.call('HSET', KEYS[1], 'v', string.format('%d', version + 1), 'd', ARGV[2])
return version + 1
