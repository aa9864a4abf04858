-- Frees a dead worker's hold on one plan, and counts a recovery on the task it was running.
-- The lease has usually expired by the time a worker is declared dead, so whether it was
-- running the plan is read from the plan's `holder` and `state`, not from the lease.
-- KEYS: 1 lock, 2 tasks, 3 plan
-- ARGV: 1 dead worker id
-- Returns: the head task's recovery count after this one, or -1 when the worker was not running it
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '/' then
  redis.call('DEL', KEYS[1])
end
if redis.call('HGET', KEYS[3], 'holder') ~= ARGV[1] or redis.call('HGET', KEYS[3], 'state') ~= 'running' then
  return -1
end
redis.call('HSET', KEYS[3], 'state', 'queued')
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then return 0 end
local t = cjson.decode(head)
t.recoveries = (t.recoveries or 0) + 1
redis.call('LSET', KEYS[2], 0, cjson.encode(t))
return t.recoveries
