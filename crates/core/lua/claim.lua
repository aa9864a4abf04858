-- Claims the next plan for a worker slot: moves the plans whose not-before time has come onto
-- their ready lists, then (unless the pool is paused) takes one plan id from the ready lists
-- onto the worker's in-flight list. Priorities: high first, then normal, then low; but every
-- fifth claim looks at normal first and every tenth at low first, so a steady stream of
-- higher plans never starves the lower ones (each keeps at least a tenth of the claims). The
-- wake token is left armed exactly while a ready list holds plans, so idle slots, blocked on
-- it, wake when there is work.
-- KEYS: 1 ready high, 2 ready normal, 3 ready low, 4 wake, 5 inflight, 6 pause, 7 delayed,
--       8 claim counter, 9 plans' concurrency keys, 10 limits, 11 the per-key keys' common
--       start (see the prelude), 12 every key seen
-- Returns: {'ok', plan id}, {'paused', ms left (-1: until resumed)}, or {'none'}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lists = {KEYS[1], KEYS[2], KEYS[3]}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[7], m)
  local sep = string.find(m, ':', 1, true)
  if sep then
    local prio, plan = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
    local list = KEYS[2]
    if prio == 'high' then list = KEYS[1] elseif prio == 'low' then list = KEYS[3] end
    redis.call('LPUSH', list, plan)
  end
end
local function waiting()
  for _, k in ipairs(lists) do
    if redis.call('LLEN', k) > 0 then return true end
  end
  return false
end
local function arm()
  if waiting() then
    if redis.call('LLEN', KEYS[4]) == 0 then redis.call('LPUSH', KEYS[4], 1) end
  else
    redis.call('DEL', KEYS[4])
  end
end
local pttl = redis.call('PTTL', KEYS[6])
if pttl ~= -2 then
  arm()
  return {'paused', pttl}
end
if not waiting() then
  redis.call('DEL', KEYS[4])
  return {'none'}
end
local n = redis.call('INCR', KEYS[8])
if n >= 1000000000 then redis.call('SET', KEYS[8], 0) end
local order = {1, 2, 3}
if n % 10 == 0 then order = {3, 2, 1} elseif n % 5 == 0 then order = {2, 3, 1} end
local names = {'high', 'normal', 'low'}
-- A plan whose concurrency key is at its limit is parked on the key's waiting list (and looked
-- at no more until a plan of that key leaves its worker); the claim takes the next one, up to
-- PARK_MAX parked per claim, so a long line of one busy key delays others by one more trip.
local PARK_MAX = 32
local got
for _ = 0, PARK_MAX do
  got = nil
  local from
  for _, i in ipairs(order) do
    got = redis.call('RPOP', lists[i])
    if got then from = i; break end
  end
  if not got then break end
  local key = redis.call('HGET', KEYS[9], got)
  if not key then break end
  local running = KEYS[11] .. 'running:' .. key
  local lim = key_limit(KEYS[10], key)
  if not lim or redis.call('HEXISTS', running, got) == 1 or redis.call('HLEN', running) < lim then
    redis.call('HINCRBY', running, got, 1)
    redis.call('SADD', KEYS[12], key)
    break
  end
  redis.call('RPUSH', KEYS[11] .. 'waiting:' .. key, names[from] .. ':' .. got)
  redis.call('SADD', KEYS[12], key)
  got = nil
end
if got then redis.call('LPUSH', KEYS[5], got) end
arm()
if got then return {'ok', got} end
return {'none'}
