
-- Takes back what evaluate.lua committed for the steps of a cross-slot batch whose other slots rejected.
-- keys: the committed steps' keys. args[1]: the now that evaluate.lua used. args[2]: the expiry margin in
-- milliseconds. Then 3 values per step: its text "kind permits a b c" (see step), and the text before and after
-- evaluate.lua's commit as it journals them ('' when absent).

-- s without the p permits that a batch took when it turned `held` (nil: absent) into `written`, for a key that others
-- have written since; a bucket's, a window's, a log's or a counter's (a cooldown's stays as others wrote it).
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
    -- The pairs the key would hold had the batch never committed. Every commit drops the pairs past their window, then
    -- the oldest one when the state is full, and appends its pair, so the states with and without the batch differ
    -- by at most the batch's pair and the one pair of `held` that a commit forgot early in the batch's history only.
    -- The batch's pair (its item and the last admittedAt of `written`) gone from s: others' commits pushed it out,
    -- and with it went that pair of `held`, which they would have pushed out too: s is the state without the batch.
    -- Not exact when another batch's refund changed the key in between (two batches refunded in the order they
    -- committed): the pairs before this one's then need not end `held`, and the pair its commit pushed out stays
    -- forgotten. The package notes list this with the other limits.
    local stamp, n, at = written[#written], #s, nil
    for i = n - 1, 1, -2 do
      if s[i + 1] == stamp and s[i] == p then
        at = i
        break
      end
    end
    if not at then
      return s
    end
    -- Still held: drop it. The pairs before it are the last ones of `held`; the one of `held` just before them is the
    -- pair that a commit forgot early, if one did: the batch's, to make room for its pair, or a later one, which
    -- forgot that oldest pair where without the batch it would have had room. It comes back, in front, if it is in
    -- its window at the latest now known: a commit that dropped pairs past their window at its now dropped it too
    -- (it is older), in either history. Every admittedAt is at least its commit's now, and one later than the pair
    -- before it is exactly that now, so the last admittedAt in s is the latest now of a commit since the batch's when
    -- it is later than the batch's pair; else the batch's now is the latest one known.
    local nxt, m = {}, 0
    local back = held and #held - at -- the index of its item in `held`, if it is at least 1
    if back and back >= 1 then
      local known = now
      if s[n] > stamp then
        known = s[n]
      end
      local same = held[back + 1] + b > known
      for i = 1, at - 1 do
        if s[i] ~= held[back + 1 + i] then
          same = false -- not the pairs of `held`: nothing to say which pair was forgotten
        end
      end
      if same then
        nxt[1], nxt[2], m = held[back], held[back + 1], 2
      end
    end
    for i = 1, n do
      if i ~= at and i ~= at + 1 then
        m = m + 1
        nxt[m] = s[i]
      end
    end
    -- What the state cannot tell: a pair equal to the batch's (same item and admittedAt) that another caller added
    -- after the batch's was pushed out, which takes `capacity` admissions in the microsecond of the batch's pair (or
    -- with clocks behind it), a flood of `capacity` messages of one conversation in one clock tick. That pair is
    -- taken for the batch's and dropped, and an item of `held` may come back.
    return nxt
  elseif kind == 'c' then
    -- Take the count out of the bucket the batch counted in, if it is still held.
    local slots, index = b + 1, written[1]
    if index <= s[1] and index > s[1] - slots then
      local at = 2 + fmod(index, slots)
      s[at] = max(0, s[at] - p)
    end
  end
  return s
end

-- Puts back at key another limit's state as evaluate.lua's `another` journaled it: its text, and its expiry at the
-- Redis time it had (a time already past deletes the key, as Redis would have by then).
local function putBack(key, journaled)
  local space = find(journaled, ' ', 2, true)
  local at = tonumber(sub(journaled, 2, space - 1))
  call('SET', key, sub(journaled, space + 1))
  if at >= 0 then
    call('PEXPIREAT', key, format('%d', at))
  end
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
    -- Another limit's state that the commit overwrote, as evaluate.lua's `another` journals it: the batch read it as
    -- absent.
    local other = before and sub(before, 1, 1) == '@'
    local cur = call('GET', keys[i])
    if cur == after then
      -- Nobody wrote the key since the batch did: put back exactly what was there, text and expiry (a deadline that
      -- a log read as its own keeps its mark and its writer's ttl).
      if other then
        putBack(keys[i], before)
      else
        local left = 0
        if before then
          left = lifetime(before, decode(before), kind, now, a, b, c)
        end
        store(keys[i], cur, left, before)
      end
    elseif cur and after and kind ~= 'd' and not mark(cur) then
      -- Others wrote it since: take back only this batch's permits and keep theirs. A cooldown's deadline there is a
      -- newer cooldown that somebody else started legitimately, and a deadline kind's state (marked) replaced what the
      -- batch wrote: both stay as they are.
      local s, held, written = decode(cur), decode(not other and before), decode(after)
      if shaped(kind, s, a, b) and shaped(kind, written, a, b) and (not held or shaped(kind, held, a, b)) then
        put(keys[i], kind, giveBack(kind, s, held, written, now, p, a, b, c), now, true, a, b, c)
      end
    end
  end
  return #keys
end
