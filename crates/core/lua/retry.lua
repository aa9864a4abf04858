-- Puts a failed plan back in service from its failed task (`baton retry`).
-- KEYS: 1 plan, 2 tasks, 3 events
-- ARGV: 1 now, 2 event JSON, 3 channel, 4 event cap, 5 retention secs
-- Returns: {'ok', schedule(0|1)} or {'err', state}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'err', 'missing'} end
if st ~= 'failed' then return {'err', st} end
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'updated_at', ARGV[1])
  return {'ok', 0}
end
-- The user vouches for the task: forget how often it was recovered from dead workers.
local t = cjson.decode(head)
t.recoveries = 0
redis.call('LSET', KEYS[2], 0, cjson.encode(t))
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[1])
redis.call('HDEL', KEYS[1], 'last_error')
local schedule = 0
if redis.call('HGET', KEYS[1], 'scheduled') ~= '1' then
  redis.call('HSET', KEYS[1], 'scheduled', 1)
  schedule = 1
end
emit(KEYS[1], KEYS[3], ARGV[2], ARGV[3], ARGV[4])
keep_for(ARGV[5], KEYS[1], KEYS[2], KEYS[3])
return {'ok', schedule}
