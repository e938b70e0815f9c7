
-- Takes back what evaluate.lua committed for the steps of a cross-slot batch whose other slots rejected.
-- keys: the committed steps' keys. args[1]: the now that evaluate.lua used. args[2]: the expiry margin in
-- milliseconds. Then 3 values per step: its text "kind permits a b c" (see step), and the text before and after
-- evaluate.lua's commit ('' when absent).

-- s without the p permits that a batch took when it turned `held` (nil: absent) into `written`, for a key that others
-- have written since.
local function giveBack(kind, s, held, written, now, p, a, b, c)
  if kind == 't' then
    -- Give back what the batch's commit still costs the bucket at t, not the p tokens it took: refilling since then
    -- may have filled it to the cap, which would have discarded part of them had the batch never run. The level
    -- without the batch is the current one plus that cost, at most a full bucket and never less than now.
    local cap = c * b
    local t = max(s[2], now)
    local lvl = level(s[1], s[2], t, cap, a)
    local kept = cap
    if held then
      kept = level(held[1], held[2], t, cap, a)
    end
    local back = lvl + kept - level(written[1], written[2], t, cap, a)
    if back > cap then
      back = cap
    end
    if back > lvl then
      lvl = back
    end
    return { lvl, t }
  elseif kind == 'f' then
    -- Take the count out of the window the batch counted in, if it is still the one held.
    if s[1] == written[1] then
      s[2] = max(0, s[2] - p)
    end
    return s
  elseif kind == 'l' then
    -- Drop p copies of the stamp the batch appended; copies are equal, so which ones does not matter.
    local stamp, left, drop = written[#written], p, {}
    for i = #s, 1, -1 do
      if left > 0 and s[i] == stamp then
        drop[i] = true
        left = left - 1
      end
    end
    local nxt, n = {}, 0
    for i = 1, #s do
      if not drop[i] then
        n = n + 1
        nxt[n] = s[i]
      end
    end
    return nxt
  elseif kind == 'w' then
    -- Forget the pair the batch appended, if the state still holds it as the commit wrote it. An item that the commit
    -- forgot early to make room stays forgotten: the state was full, so the commits that others made since would have
    -- forgotten it too.
    local stamp, n = written[#written], #s
    for i = n - 1, 1, -2 do
      if s[i + 1] == stamp and s[i] == p then
        for j = i, n - 2 do
          s[j] = s[j + 2]
        end
        s[n], s[n - 1] = nil, nil
        return s
      end
    end
    return s
  elseif kind == 'c' then
    -- Take the count out of the bucket the batch counted in, if it is still held.
    local slots, index = b + 1, written[1]
    if index <= s[1] and index > s[1] - slots then
      local at = 2 + fmod(index, slots)
      s[at] = max(0, s[at] - p)
    end
    return s
  end
  -- Cooldown: a different deadline is a newer cooldown that somebody else started legitimately; keep it.
  return s
end

local function refund(keys, args)
  local now = tonumber(args[1])
  margin = tonumber(args[2])
  for i = 1, #keys do
    local o = 2 + (i - 1) * 3
    local st = step(args[o + 1])
    if not st then
      return malformed(args[o + 1])
    end
    local kind, p, a, b, c = st[1], st[2], st[3], st[4], st[5]
    local before, after = args[o + 2], args[o + 3]
    if before == '' then
      before = false
    end
    if after == '' then
      after = false
    end
    local cur = call('GET', keys[i])
    if cur == after then
      -- Nobody wrote the key since the batch did: put back exactly what was there.
      put(keys[i], kind, decode(before), now, cur, a, b, c)
    elseif cur and after then
      -- Others wrote it since: take back only this batch's permits and keep theirs.
      local s, held, written = decode(cur), decode(before), decode(after)
      if shaped(kind, s, a, b) and shaped(kind, written, a, b) and (not held or shaped(kind, held, a, b)) then
        put(keys[i], kind, giveBack(kind, s, held, written, now, p, a, b, c), now, true, a, b, c)
      end
    end
  end
  return #keys
end
