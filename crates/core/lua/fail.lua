-- Stops a plan on a task that failed for good (or a spent budget), fenced by the lease. The task
-- stays first in the list, so `baton retry` resumes from it.
-- KEYS: 1 lock, 2 plan, 3 events
-- ARGV: 1 lock value, 2 reason, 3 task_failed event JSON ('' = none), 4 plan event JSON,
--       5 channel, 6 now, 7 event cap, 8 retention secs
-- Returns: {'fenced'} or {'ok'}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
redis.call('HSET', KEYS[2], 'state', 'failed', 'last_error', ARGV[2], 'updated_at', ARGV[6])
if ARGV[3] ~= '' then emit(KEYS[2], KEYS[3], ARGV[3], ARGV[5], ARGV[7]) end
emit(KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[7])
keep_for(ARGV[8], KEYS[2], KEYS[3])
return {'ok'}
