-- Stops a plan on a task that failed for good, fenced by the lease. The task stays first in
-- the list, so `baton retry` resumes from it.
-- KEYS: 1 lock, 2 plan, 3 events
-- ARGV: 1 lock value, 2 new state ('failed'|'cancelled'), 3 reason, 4 task_failed event JSON
--       ('' = none), 5 plan event JSON, 6 channel, 7 now, 8 event cap, 9 retention secs
-- Returns: {'fenced'} or {'ok'}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'last_error', ARGV[3], 'updated_at', ARGV[7])
if ARGV[4] ~= '' then emit(KEYS[2], KEYS[3], ARGV[4], ARGV[6], ARGV[8]) end
emit(KEYS[2], KEYS[3], ARGV[5], ARGV[6], ARGV[8])
keep_for(ARGV[9], KEYS[2], KEYS[3])
return {'ok'}
