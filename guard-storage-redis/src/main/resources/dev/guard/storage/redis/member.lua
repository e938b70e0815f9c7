
-- Set memberships. keys[1]: the membership.
-- args[1] 'add': args[2] the expiry in micros ('max' for never), args[3] now for the expiry ('' for the server's
-- TIME), args[4] the expiry margin in milliseconds, args[5] with the server's TIME only: the caller's now, on whose
-- clock args[2] lies (see onServer); answers 1.
-- args[1] 'is': args[2] now ('' for the server's TIME); answers 1 for a member in force, else 0.
local function member(keys, args)
  if args[1] == 'add' then
    margin = tonumber(args[4])
    local expires = INF
    if args[2] ~= 'max' then
      expires = tonumber(args[2])
    end
    local now = clock(args[3])
    if args[5] then
      expires = onServer(expires, tonumber(args[5]), now)
    end
    put(keys[1], 'p', { expires }, now, true, 0, 0, 0)
    return 1
  end
  local raw, now = call('GET', keys[1]), clock(args[2])
  if state(raw, 'p', now, 0, 0, 0) then
    return 1
  end
  if raw and stale(raw, 'p', now, 0, 0, 0) then
    call('DEL', keys[1])
  end
  return 0
end
