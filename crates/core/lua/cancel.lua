-- Cancels a plan (`baton cancel`). A task running now is stopped by its worker at the next
-- lease renewal; the plan's pending tasks stay listed for inspection but never run.
-- KEYS: 1 plan, 2 events
-- ARGV: 1 now, 2 plan_cancelled event JSON, 3 channel, 4 event cap, 5 retention secs, 6 reason
-- Returns: {'ok'} or {'err', state}
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return {'err', 'missing'} end
if st == 'cancelled' then return {'err', st} end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'updated_at', ARGV[1], 'last_error', ARGV[6])
emit(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4])
keep_for(ARGV[5], KEYS[1], KEYS[2])
return {'ok'}
