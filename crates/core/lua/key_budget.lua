-- Sets or removes a concurrency key's daily budget (`baton budget --key K --per-day USD`). When
-- the key's spend today is under the new budget, the key's plans paused on it (waiting in the
-- delayed set for the next UTC day) go first in line now; each resumes at its claim.
-- KEYS: 1 daily budgets, 2 delayed, 3 plans' concurrency keys, 4 ready high, 5 ready normal,
--       6 ready low, 7 wake, 8 the spend keys' common start
-- ARGV: 1 key, 2 USD per day ('' = remove)
-- Returns: {plans let go, spent today}
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local t = redis.call('TIME')
local spent = redis.call('HGET', KEYS[8] .. math.floor(tonumber(t[1]) / 86400), ARGV[1]) or '0'
local moved = 0
if ARGV[2] == '' or tonumber(spent) < tonumber(ARGV[2]) then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, 9999)) do
    local sep = string.find(m, ':', 1, true)
    if sep then
      local prio, plan = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
      if redis.call('HGET', KEYS[3], plan) == ARGV[1] then
        redis.call('ZREM', KEYS[2], m)
        schedule(KEYS[4], KEYS[5], KEYS[6], KEYS[7], prio, plan, 'front')
        moved = moved + 1
      end
    end
  end
end
return {moved, spent}
