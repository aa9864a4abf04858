-- Claims the next plan for a worker slot: moves the plans whose not-before time has come onto
-- their ready lists, then (unless the pool is paused) takes one plan id from the ready lists
-- onto the worker's in-flight list. Priorities: high first, then normal, then low; but every
-- fifth claim looks at normal first and every tenth at low first, so a steady stream of
-- higher plans never starves the lower ones (each keeps at least a tenth of the claims). The
-- wake token is left armed exactly while a ready list holds plans, so idle slots, blocked on
-- it, wake when there is work.
-- KEYS: 1 ready high, 2 ready normal, 3 ready low, 4 wake, 5 inflight, 6 pause, 7 delayed,
--       8 claim counter
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
local got
for _, i in ipairs(order) do
  got = redis.call('LMOVE', lists[i], KEYS[5], 'RIGHT', 'LEFT')
  if got then break end
end
arm()
if got then return {'ok', got} end
return {'none'}
