-- Approves the task a plan awaits review on (`baton approve`): the plan goes on with its next
-- task, whose prompt gets the reviewer's note first; with no task left it completes. Applied
-- by a worker's ingest from an action document, once per document (the tag).
-- The session's TTL starts again (it was kept as long as the plan while the review waited).
-- KEYS: 1 plan, 2 tasks, 3 events, 4 ingested, 5 session, 6 transcript, 7 transcript chunks
-- ARGV: 1 tag, 2 now, 3 review_approved event JSON, 4 channel, 5 default event cap,
--       6 default retention secs, 7 note ('' = none), 8 plan_completed event JSON,
--       9 default session TTL secs
-- Returns: {'ok', schedule(0|1), priority, 1 when this completed the plan}, {'duplicate', schedule(0|1), priority}, or
--          {'err', state ('' when there is no such plan)}
local refused = action_refused(KEYS[1], KEYS[4], ARGV[1], 'awaiting_review')
if refused then return refused end
local prio = redis.call('HGET', KEYS[1], 'priority') or ''
local retention, cap = plan_limits(KEYS[1], ARGV[6], ARGV[5])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[1], 'review_task', 'review_base')
restart_session_ttl(KEYS[1], ARGV[9], KEYS[5], KEYS[6], KEYS[7])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'review_note', ARGV[7]) end
emit(KEYS[1], KEYS[3], ARGV[3], ARGV[4], cap)
keep_for(retention, KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'updated_at', ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'stat:plans_completed', 1)
  emit(KEYS[1], KEYS[3], ARGV[8], ARGV[4], cap)
  return {'ok', 0, prio, 1}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2])
local schedule = take_scheduling(KEYS[1])
return {'ok', schedule, prio}
