-- Rejects the task a plan awaits review on (`baton reject`): the task runs again, first in
-- line, as a new turn whose prompt is the reviewer's note. Its files start from the checkpoint
-- before the rejected run (the branch's rejected commit is replaced by the next push); the
-- conversation keeps the rejected turn, so the model knows what was wrong. The rework is
-- reviewed again. Applied by a worker's ingest from an action document, once per document.
-- The session's TTL starts again (it was kept as long as the plan while the review waited).
-- KEYS: 1 plan, 2 tasks, 3 events, 4 ingested, 5 session, 6 transcript, 7 transcript chunks
-- ARGV: 1 tag, 2 now, 3 review_rejected event JSON, 4 channel, 5 default event cap,
--       6 default retention secs, 7 note, 8 default session TTL secs
-- Returns: {'ok', schedule(0|1), priority}, {'duplicate', schedule(0|1), priority}, or
--          {'err', state ('' when there is no such plan)}
local refused = action_refused(KEYS[1], KEYS[4], ARGV[1], 'awaiting_review')
if refused then return refused end
local prio = redis.call('HGET', KEYS[1], 'priority') or ''
local v = redis.call('HMGET', KEYS[1], 'review_task', 'review_base')
if not v[1] then return {'err', 'awaiting_review'} end
local retention, cap = plan_limits(KEYS[1], ARGV[6], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[1])
local t = cjson.decode(v[1])
t.prompt = ARGV[7]
t.rework = (tonumber(t.rework) or 0) + 1
t.recoveries = 0
redis.call('LPUSH', KEYS[2], cjson.encode(t))
if v[2] and v[2] ~= '' then
  redis.call('HSET', KEYS[1], 'checkpoint', v[2])
else
  redis.call('HDEL', KEYS[1], 'checkpoint')
end
redis.call('HDEL', KEYS[1], 'review_task', 'review_base')
restart_session_ttl(KEYS[1], ARGV[8], KEYS[5], KEYS[6], KEYS[7])
redis.call('HINCRBY', KEYS[1], 'done', -1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2])
emit(KEYS[1], KEYS[3], ARGV[3], ARGV[4], cap)
keep_for(retention, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local schedule = take_scheduling(KEYS[1])
return {'ok', schedule, prio}
