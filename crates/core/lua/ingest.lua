-- Applies one validated document to its plan: creates the plan or appends to it.
-- Idempotent per submission tag, so a document re-ingested after a worker crash is applied once.
-- KEYS: 1 plan, 2 tasks, 3 task_ids, 4 ingested, 5 events
-- ARGV: 1 tag, 2 plan_id, 3 workspace given ('' = none), 4 default workspace,
--       5 options JSON ('' = none), 6 tasks JSON array [{id, type?, prompt}], 7 now,
--       8 retention secs, 9 plan_accepted JSON (with `tasks`; the script sets `status`,
--       `first_task_index` and `state`), 10 channel, 11 event cap,
--       12 repo JSON ('' = none; a follow-up may omit it, and may not change or add it),
--       13 the options' not_before in ms ('' = none)
-- The options' priority, not_before and after are copied into the plan's own fields (the
-- scripts that schedule and claim read them there); options replace the earlier ones whole.
-- The plan's concurrency key (options.concurrency_key, else 'repo:<url>' with a repo) is set at
-- creation; a follow-up naming another is refused.
-- Returns: {'ok', status('created'|'appended'|'duplicate'), first_index, count, schedule(0|1), state ('' when unknown), priority, concurrency key ('' = none)}
--       or {'err', field, problem}
local function runnable(s) return s == 'queued' or s == 'running' end
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  local st = redis.call('HGET', KEYS[1], 'state') or ''
  return {'ok', 'duplicate', 0, 0, runnable(st) and 1 or 0, st,
    redis.call('HGET', KEYS[1], 'priority') or '', redis.call('HGET', KEYS[1], 'concurrency_key') or ''}
end
local tasks = cjson.decode(ARGV[6])
local status = 'created'
if redis.call('EXISTS', KEYS[1]) == 1 then
  status = 'appended'
  local st = redis.call('HGET', KEYS[1], 'state')
  if st == 'cancelled' then
    return {'err', 'plan_id', 'names a cancelled plan; submit under a new plan_id'}
  end
  local ws = redis.call('HGET', KEYS[1], 'workspace')
  if ARGV[3] ~= '' and ARGV[3] ~= ws then
    return {'err', 'workspace', 'differs from the existing plan\'s workspace "' .. ws .. '"'}
  end
  if ARGV[12] ~= '' then
    local had = redis.call('HGET', KEYS[1], 'repo')
    if not had then
      return {'err', 'repo', 'cannot be added to a plan created without one; submit a new plan'}
    end
    local old, new = cjson.decode(had), cjson.decode(ARGV[12])
    if old.url ~= new.url or old.branch ~= new.branch then
      return {'err', 'repo', 'differs from the plan\'s repository (' .. old.branch .. '); a follow-up continues it: omit repo'}
    end
  end
  if ARGV[5] ~= '' then
    local key = cjson.decode(ARGV[5]).concurrency_key
    local had = redis.call('HGET', KEYS[1], 'concurrency_key') or ''
    if type(key) == 'string' and key ~= had then
      return {'err', 'options.concurrency_key', 'is set when the plan is created ("' .. had .. '"); a follow-up may repeat it or leave it out'}
    end
  end
  for i, t in ipairs(tasks) do
    if redis.call('SISMEMBER', KEYS[3], t.id) == 1 then
      return {'err', 'tasks[' .. (i - 1) .. '].id', '"' .. t.id .. '" is already a task of this plan'}
    end
  end
else
  local ws = ARGV[3]
  if ws == '' then ws = ARGV[4] end
  redis.call('HSET', KEYS[1], 'plan_id', ARGV[2], 'workspace', ws, 'state', 'queued',
    'created_at', ARGV[7], 'next_index', 0, 'done', 0, 'scheduled', 0, 'cost_usd', 0)
  if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'repo', ARGV[12]) end
  local key = ARGV[5] ~= '' and cjson.decode(ARGV[5]).concurrency_key or nil
  if type(key) ~= 'string' and ARGV[12] ~= '' then key = 'repo:' .. cjson.decode(ARGV[12]).url end
  if type(key) == 'string' then redis.call('HSET', KEYS[1], 'concurrency_key', key) end
end
local idx = tonumber(redis.call('HGET', KEYS[1], 'next_index'))
local first = idx
-- Appended and remembered in one call each, not one per task (a document holds at most 1000,
-- well within what unpack takes).
local stored, ids = {}, {}
for i, t in ipairs(tasks) do
  t.index = idx
  t.recoveries = 0
  stored[i] = cjson.encode(t)
  ids[i] = t.id
  idx = idx + 1
end
if #stored > 0 then
  redis.call('RPUSH', KEYS[2], unpack(stored))
  redis.call('SADD', KEYS[3], unpack(ids))
end
-- The pool's limits as of now: what clients' scripts (cancel, retry) keep the plan for.
redis.call('HSET', KEYS[1], 'next_index', idx, 'updated_at', ARGV[7], 'retention_secs', ARGV[8],
  'event_cap', ARGV[11])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'options', ARGV[5])
  local o = cjson.decode(ARGV[5])
  redis.call('HDEL', KEYS[1], 'priority', 'not_before', 'after', 'budget_usd')
  if type(o.priority) == 'string' then redis.call('HSET', KEYS[1], 'priority', o.priority) end
  if ARGV[13] ~= '' then redis.call('HSET', KEYS[1], 'not_before', ARGV[13]) end
  if type(o.after) == 'table' and #o.after > 0 then
    redis.call('HSET', KEYS[1], 'after', cjson.encode(o.after))
  end
end
redis.call('SADD', KEYS[4], ARGV[1])
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'completed' then
  st = 'queued'
  redis.call('HSET', KEYS[1], 'state', st)
end
local schedule = 0
if runnable(st) then schedule = take_scheduling(KEYS[1]) end
emit_with(KEYS[1], KEYS[5], ARGV[9], {status = status, first_task_index = first, state = st},
  ARGV[10], ARGV[11])
keep_for(ARGV[8], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {'ok', status, first, #tasks, schedule, st, redis.call('HGET', KEYS[1], 'priority') or '',
  redis.call('HGET', KEYS[1], 'concurrency_key') or ''}
