-- Raises a plan's budget (`baton budget PLAN --usd X`), once per action document. The new
-- budget is kept over the options' max_budget_usd (until a follow-up's options replace them);
-- a plan paused because its budget was spent resumes, keeping its session (its TTL starts
-- again), as `baton resume` would.
-- KEYS: 1 plan, 2 events, 3 ingested, 4 session, 5 transcript, 6 transcript chunks
-- ARGV: 1 tag, 2 now, 3 plan_resumed event JSON, 4 channel, 5 default event cap,
--       6 default retention secs, 7 default session TTL secs, 8 the new budget (USD),
--       9 plan_budget_raised event JSON
-- Returns: {'ok', schedule(0|1), priority}, {'duplicate', schedule(0|1), priority},
--          {'err', state} (a plan that is done, or none), or {'low', spent} (not above it)
local st = redis.call('HGET', KEYS[1], 'state')
local prio = redis.call('HGET', KEYS[1], 'priority') or ''
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then
  return action_refused(KEYS[1], KEYS[3], ARGV[1], 'paused')
end
if not st then return {'err', ''} end
if st ~= 'paused' and st ~= 'queued' and st ~= 'running' and st ~= 'awaiting_review' then
  return {'err', st}
end
local spent = redis.call('HGET', KEYS[1], 'cost_usd') or '0'
if tonumber(ARGV[8]) <= tonumber(spent) then return {'low', spent} end
local retention, cap = plan_limits(KEYS[1], ARGV[6], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'budget_usd', ARGV[8], 'updated_at', ARGV[2])
emit(KEYS[1], KEYS[2], ARGV[9], ARGV[4], cap)
local schedule = 0
if st == 'paused' and redis.call('HGET', KEYS[1], 'pause_reason') == 'budget' then
  local team = redis.call('HGET', KEYS[1], 'pause_key')
  redis.call('HSET', KEYS[1], 'state', 'queued')
  redis.call('HDEL', KEYS[1], 'pause_now', 'pause_reason', 'pause_key')
  restart_session_ttl(KEYS[1], ARGV[7], KEYS[4], KEYS[5], KEYS[6])
  schedule = take_scheduling(KEYS[1])
  if team then schedule = 1 end
  emit(KEYS[1], KEYS[2], ARGV[3], ARGV[4], cap)
end
keep_for(retention, KEYS[1], KEYS[2], KEYS[3])
return {'ok', schedule, prio}
