
-- Takes back what evaluate.lua committed for the steps of a cross-slot batch whose other slots rejected.
-- KEYS: the committed steps' keys. ARGV[1]: the now that evaluate.lua used. ARGV[2]: the expiry margin in
-- milliseconds. Then 7 values per step: kind, permits, a, b, c, and the text before and after evaluate.lua's commit
-- ('' when absent).
local now = tonumber(ARGV[1])
margin = tonumber(ARGV[2])
for i = 1, #KEYS do
  local o = 2 + (i - 1) * 7
  local kind = K[ARGV[o + 1]]
  local p, a, b, c = tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5])
  local before, after = ARGV[o + 6], ARGV[o + 7]
  if before == '' then
    before = false
  end
  if after == '' then
    after = false
  end
  local cur = redis.call('GET', KEYS[i])
  if cur == after then
    -- Nobody wrote the key since the batch did: put back exactly what was there.
    put(KEYS[i], kind, decode(before), now, cur, a, b, c)
  elseif cur and after then
    -- Others wrote it since: take back only this batch's permits and keep theirs.
    local s = decode(cur)
    if not kind.size or #s == kind.size(b) then
      put(KEYS[i], kind, kind.refund(s, decode(after), now, p, a, b, c), now, true, a, b, c)
    end
  end
end
return #KEYS
