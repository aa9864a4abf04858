-- Puts a failed plan back in service from its failed task. Applied by a worker's ingest from an
-- action document (`baton retry` submits one), so it runs exactly once per document: the tag is
-- recorded like a plan document's, and finish_ingest.lua then schedules the plan. The plan keeps
-- the retention and event cap it was created with.
-- KEYS: 1 plan, 2 tasks, 3 events, 4 ingested
-- ARGV: 1 tag, 2 now, 3 plan_accepted event JSON (status 'retried'), 4 channel,
--       5 default event cap, 6 default retention secs
-- Returns: {'ok', schedule(0|1), priority}, {'duplicate', schedule(0|1), priority} (this
--          document was applied before), or {'err', state ('' when there is no such plan)}
local refused = action_refused(KEYS[1], KEYS[4], ARGV[1], 'failed')
if refused then return refused end
local prio = redis.call('HGET', KEYS[1], 'priority') or ''
local retention, cap = plan_limits(KEYS[1], ARGV[6], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[1])
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'updated_at', ARGV[2])
  return {'ok', 0, prio}
end
-- The user vouches for the task: forget how often it was recovered from dead workers.
local t = cjson.decode(head)
t.recoveries = 0
redis.call('LSET', KEYS[2], 0, cjson.encode(t))
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'last_error')
local schedule = take_scheduling(KEYS[1])
emit(KEYS[1], KEYS[3], ARGV[3], ARGV[4], cap)
keep_for(retention, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'ok', schedule, prio}
