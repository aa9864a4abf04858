-- Resumes a paused plan. Applied by a worker's ingest from an action document (`baton resume`
-- submits one), once per document, so the plan is scheduled in the same ingest. The session's
-- TTL starts again (a session that expired meanwhile is not brought back: the next task falls
-- back to a new session with a recap, as after any expiry).
-- KEYS: 1 plan, 2 events, 3 ingested, 4 session, 5 transcript, 6 transcript chunks
-- ARGV: 1 tag, 2 now, 3 plan_resumed event JSON, 4 channel, 5 default event cap,
--       6 default retention secs, 7 default session TTL secs
-- Returns: {'ok', schedule(0|1), priority}, {'duplicate', schedule(0|1), priority}, or
--          {'err', state ('' when there is no such plan)}
local refused = action_refused(KEYS[1], KEYS[3], ARGV[1], 'paused')
if refused then return refused end
local prio = redis.call('HGET', KEYS[1], 'priority') or ''
local retention, cap = plan_limits(KEYS[1], ARGV[6], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'updated_at', ARGV[2])
local team = redis.call('HGET', KEYS[1], 'pause_key')
redis.call('HDEL', KEYS[1], 'pause_now', 'pause_reason', 'pause_key')
restart_session_ttl(KEYS[1], ARGV[7], KEYS[4], KEYS[5], KEYS[6])
local schedule = take_scheduling(KEYS[1])
-- Paused on its key's budget, it waits in the delayed set (still marked scheduled): put it in
-- line now as well (the later entry finds nothing to do).
if team then schedule = 1 end
emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], cap)
keep_for(retention, KEYS[1], KEYS[2], KEYS[3])
return {'ok', schedule, prio}
