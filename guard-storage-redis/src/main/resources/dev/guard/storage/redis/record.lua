
-- Writes a versioned record if its version is still the expected one. keys[1]: the record (a hash of v, the
-- version, and d, the bytes). args[1]: the expected version (0: absent). args[2]: the bytes.
-- Answers the new version, or -1 when the version did not match.
local function record(keys, args)
  local version = tonumber(call('HGET', keys[1], 'v')) or 0
  if version ~= tonumber(args[1]) then
    return -1
  end
  call('HSET', keys[1], 'v', format('%d', version + 1), 'd', args[2])
  return version + 1
end
