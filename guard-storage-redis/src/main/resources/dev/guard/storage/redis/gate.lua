
-- Raises a gate, merging by maximum with the gate's deadline in force (one that has not passed), and answers the
-- deadline in force.
-- keys[1]: the gate. args[1]: the deadline in micros, 'max' for never. args[2]: now in micros for the expiry, ''
-- for the server's TIME. args[3]: the expiry margin in milliseconds. args[4], with the server's TIME only: the
-- caller's now, on whose clock args[1] lies and the answer does (see onServer and onCaller): Redis keeps the deadline
-- on its own clock, where decisions compare it.
local function gate(keys, args)
  margin = tonumber(args[3])
  local target = INF
  if args[1] ~= 'max' then
    target = tonumber(args[1])
  end
  local raw = call('GET', keys[1])
  local now = clock(args[2])
  local caller, asked = args[4] and tonumber(args[4]), target
  if caller then
    target = onServer(target, caller, now)
  end
  -- A cooldown's or a membership's deadline (marked '.') is replaced, as is any other limit's state: only a gate's
  -- merges. So does one number without a mark, which an earlier version wrote for a gate as for those kinds and
  -- merged: a gate raised after an upgrade never ends earlier than it did before (a sliding log's one timestamp has no
  -- mark either, and merges when it lies after both now and the deadline raised: a caller's clock behind the log's).
  -- A deadline that has passed is in force no more: it merges with nothing (the key outlives it by the margin).
  local kept = false
  if raw and mark(raw) ~= '.' then
    local s = decode(raw)
    if #s == 1 and s[1] > target and s[1] > now then
      target, kept = s[1], true
    end
  end
  put(keys[1], 'g', { target }, now, raw, 0, 0, 0)
  if target == INF then
    return UNLIMITED
  end
  if caller then
    -- The caller's own deadline when it won, exactly as it came; else the one in force, moved to the caller's clock.
    if kept then
      return onCaller(target, now, caller)
    end
    return asked
  end
  return target
end
