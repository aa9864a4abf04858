-- Takes a plan's lease and reads what the holder needs to run its next task, in one trip.
-- KEYS: 1 lock, 2 plan, 3 tasks, 4 session, 5 events
-- ARGV: 1 lock value '<worker>/<token>', 2 lease ms, 3 now, 4 worker id, 5 channel, 6 default
--       event cap, 7 a new root traceparent (a worker that exports traces; '' otherwise): kept
--       only if the plan has none, 8 the plan_resumed event (built by the caller) for a plan
--       that comes back from a pause on its key's budget
-- Returns: {'busy'} (another worker holds it), {'idle', state} (nothing to run; lease dropped),
--          {'later', not before ms, priority} (not yet: lease dropped, the plan stays scheduled),
--          or {'ok', head task JSON, session JSON or '', plan fields the holder reads (options, cost_usd, workspace, session_id) as a flat list...}
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  -- The lock value is new for each hold: holding it already, this is the caller's retry of an
  -- acquire whose reply was lost, and it goes on (refused, the plan would wait for ever).
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'busy'} end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local st = redis.call('HGET', KEYS[2], 'state') or ''
-- A plan paused on its key's daily budget comes back by itself (the next day, or the budget
-- raised): it resumes here, and its holder checks the budget again before the task.
if st == 'paused' and redis.call('HEXISTS', KEYS[2], 'pause_key') == 1 then
  st = 'queued'
  redis.call('HSET', KEYS[2], 'state', st)
  redis.call('HDEL', KEYS[2], 'pause_reason', 'pause_key', 'pause_now')
  local _, cap = plan_limits(KEYS[2], '0', ARGV[6])
  emit(KEYS[2], KEYS[5], ARGV[8], ARGV[5], cap)
end
local head = redis.call('LINDEX', KEYS[3], 0)
if (st ~= 'queued' and st ~= 'running') or not head then
  redis.call('DEL', KEYS[1])
  if st ~= '' then redis.call('HSET', KEYS[2], 'scheduled', 0) end
  return {'idle', st}
end
local nb = tonumber(redis.call('HGET', KEYS[2], 'not_before') or '')
if nb then
  local t = redis.call('TIME')
  if nb > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then
    redis.call('DEL', KEYS[1])
    return {'later', nb, redis.call('HGET', KEYS[2], 'priority') or ''}
  end
end
redis.call('HSET', KEYS[2], 'state', 'running', 'holder', ARGV[4], 'updated_at', ARGV[3])
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSETNX', KEYS[2], 'trace', ARGV[7]) end
local out = {'ok', head, redis.call('GET', KEYS[4]) or ''}
return append_holder_fields(out, KEYS[2])
