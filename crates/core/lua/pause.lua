-- Pauses a plan (`baton pause`). The task running now finishes and commits (its commit then
-- finds the plan paused and gives the lease back), unless `now` is set: then its holder stops
-- it at the next lease renewal, as for a cancel, and it runs again from the checkpoint on
-- resume. A paused plan is claimed by no one (acquire.lua) until `baton resume`.
-- KEYS: 1 plan, 2 events
-- ARGV: 1 now (RFC 3339), 2 plan_paused event JSON, 3 channel, 4 default event cap,
--       5 default retention secs, 6 reason, 7 '1' = stop the running task too
-- Returns: {'ok'} or {'err', state ('' when there is no such plan)}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'err', ''} end
if st ~= 'queued' and st ~= 'running' then return {'err', st} end
local retention, cap = plan_limits(KEYS[1], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[1], 'state', 'paused', 'updated_at', ARGV[1], 'pause_reason', ARGV[6],
  'pause_now', ARGV[7])
emit(KEYS[1], KEYS[2], ARGV[2], ARGV[3], cap)
keep_for(retention, KEYS[1], KEYS[2])
return {'ok'}
