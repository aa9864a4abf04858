-- Sets or removes a pool-wide limit on a concurrency key's running plans (`baton limit`), and
-- lets the plans parked under it go, as many as the new limit has room for.
-- KEYS: 1 limits, 2 ready high, 3 ready normal, 4 ready low, 5 wake, 6 the per-key keys' common
--       start (see the prelude), 7 every key seen
-- ARGV: 1 key ('repo:*': the default for repo keys), 2 limit ('' = remove)
-- Returns: the number of plans let go
local function parked(key) return redis.call('LLEN', KEYS[6] .. 'waiting:' .. key) end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local keys = {ARGV[1]}
if ARGV[1] == 'repo:*' then
  keys = {}
  for _, k in ipairs(redis.call('SMEMBERS', KEYS[7])) do
    if string.sub(k, 1, 5) == 'repo:' then table.insert(keys, k) end
  end
end
local moved = 0
for _, k in ipairs(keys) do
  local before = parked(k)
  key_unpark(KEYS[6], KEYS[1], k, KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  moved = moved + before - parked(k)
end
return moved
