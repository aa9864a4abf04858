-- Gives a plan's lease back and says whether the plan still needs a worker (a plan paused on its
-- key's daily budget does: it waits in the delayed set for the next day, still scheduled).
-- KEYS: 1 lock, 2 plan, 3 tasks
-- ARGV: 1 lock value, 2 now
-- Returns: 1 (tasks left: requeue it), 0 (nothing to do), -1 (the lease was not ours)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
local st = redis.call('HGET', KEYS[2], 'state')
if (st == 'running' or st == 'queued') and redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('HSET', KEYS[2], 'state', 'queued', 'updated_at', ARGV[2])
  return 1
end
if st == 'paused' and redis.call('HEXISTS', KEYS[2], 'pause_key') == 1 then return 1 end
if st == 'running' then redis.call('HSET', KEYS[2], 'state', 'completed') end
redis.call('HSET', KEYS[2], 'scheduled', 0, 'updated_at', ARGV[2])
return 0
