-- Fires one tick of a schedule: submits its plan document (LPUSH on the submit list, exactly
-- as `baton enqueue` does; a worker ingests it like any document) and records the tick, in one
-- step. Fenced: a tick fires only while the caller holds the scheduler lease, only for the
-- definition it was computed from, and only when it is after the last tick fired, so two
-- holders, or a call retried after a lost reply, never fire a tick twice. A run-now (no lease
-- value) is recorded apart and needs neither.
-- KEYS: 1 schedules, 2 schedule_fired, 3 schedule_runs, 4 scheduler, 5 submit
-- ARGV: 1 name, 2 lease value ('' for a run-now), 3 tick ms, 4 the definition's created_ms,
--       5 plan document, 6 the record as JSON without its closing brace (fired_ms is added),
--       7 event JSON, 8 channel
-- Returns: {1, fired ms} fired; {0} already fired (not after the last tick); {-1} not the
--          lease holder; {-2} no such schedule (removed, or removed and added again)
local def = redis.call('HGET', KEYS[1], ARGV[1])
if not def or cjson.decode(def).created_ms ~= tonumber(ARGV[4]) then return {-2} end
local record = KEYS[3]
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[4]) ~= ARGV[2] then return {-1} end
  local last = redis.call('HGET', KEYS[2], ARGV[1])
  if last and tonumber(cjson.decode(last).tick_ms) >= tonumber(ARGV[3]) then return {0} end
  record = KEYS[2]
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('LPUSH', KEYS[5], ARGV[5])
redis.call('HSET', record, ARGV[1], string.format('%s,"fired_ms":%d}', ARGV[6], now))
redis.call('PUBLISH', ARGV[8], ARGV[7])
return {1, now}
