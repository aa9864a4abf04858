-- Cancels a plan (`baton cancel`). A task running now is stopped by its worker at the next
-- lease renewal; the plan's pending tasks stay listed for inspection but never run. The plan
-- keeps the retention and event cap it was created with (a client does not know the pool's).
-- KEYS: 1 plan, 2 events
-- ARGV: 1 now, 2 plan_cancelled event JSON, 3 channel, 4 default event cap, 5 default retention
--       secs, 6 reason
-- Returns: {'ok'} or {'err', state ('' when there is no such plan)}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'err', ''} end
if st == 'cancelled' then return {'err', st} end
local retention, cap = plan_limits(KEYS[1], ARGV[5], ARGV[4])
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[1], 'last_error', ARGV[6])
emit(KEYS[1], KEYS[2], ARGV[2], ARGV[3], cap)
keep_for(retention, KEYS[1], KEYS[2])
return {'ok'}
