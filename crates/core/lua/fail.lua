-- Stops a plan on a task that failed for good, fenced by the lease; or pauses it on a spent budget
-- (its own, or its concurrency key's for the day: then `pause_key` names the key). The task
-- stays first in the list, so `baton retry` (or the budget raised) resumes from it.
-- KEYS: 1 lock, 2 plan, 3 events
-- ARGV: 1 lock value, 2 reason, 3 task_failed event JSON ('' = none), 4 plan event JSON,
--       5 channel, 6 now, 7 event cap, 8 retention secs, 9 'paused' (a spent budget) or ''
--       (failed), 10 the concurrency key whose daily budget is spent ('' = the plan's own)
-- Returns: {'fenced'} or {'ok'}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
if ARGV[9] == 'paused' then
  redis.call('HSET', KEYS[2], 'state', 'paused', 'pause_reason', 'budget', 'last_error', ARGV[2],
    'updated_at', ARGV[6])
  if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'pause_key', ARGV[10]) end
else
  redis.call('HSET', KEYS[2], 'state', 'failed', 'last_error', ARGV[2], 'updated_at', ARGV[6])
end
if ARGV[3] ~= '' then emit(KEYS[2], KEYS[3], ARGV[3], ARGV[5], ARGV[7]) end
emit(KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[7])
keep_for(ARGV[8], KEYS[2], KEYS[3])
return {'ok'}
