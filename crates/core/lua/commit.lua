-- Commits one task's result, fenced by the lease token: a worker whose lease was lost writes
-- nothing. It also does what the holder would otherwise need more trips for: when no task is
-- left it gives the lease back (as release.lua does), and otherwise it returns the next task
-- with what the holder reads of the plan (no extra trip to read it).
-- KEYS: 1 lock, 2 plan, 3 tasks, 4 results, 5 session, 6 events, 7 transcript, 8 task_ids, 9 ingested,
--       10 transcript chunks
-- ARGV: 1 lock value, 2 the head task's JSON exactly as read (a string compare, no decode), 3 result JSON, 4 session JSON, 5 session TTL secs,
--       6 task_succeeded event JSON, 7 channel, 8 cost USD, 9 now, 10 retention secs ('0': leave the TTLs, refreshed earlier in this hold),
--       11 plan_completed event JSON, 12 event cap, 13 transcript pack or chunk, 14 worker id,
--       15 tokens in, 16 tokens out, 17 session id, 18 checkpoint commit ('' = the plan has no repository),
--       19 transcript mode: 'full' (13 replaces the base, chunks dropped), 'append' (13 is a chunk
--       appended after the others) or 'none' (no transcript: the stored one is deleted),
--       20 review_requested event JSON ('' = the task asks for no review; else the plan waits
--       in awaiting_review and the lease is given back),
--       then the next task's start, when the holder will run it (what start.lua would do, saving
--       the holder a trip): 21 the plan's budget ('' = none: the start is skipped once cost_usd
--       reaches it), 22 number of start events M (0: do not start it), 23..22+M the events,
--       without task_id and task_index (set here from the next task), 23+M number of start
--       counter pairs P, then P pairs of plan counter name, increment,
--       then to the end: this commit's pairs of plan counter name, increment
-- Returns: {'fenced'}, {'mismatch'} (the head task is not the one run),
--          {'done', completed 0|1} (nothing left: the lease is given back), {'review'} (the
--          plan waits for a reviewer: the lease is given back),
--          {'idle', left} (tasks left but the plan stopped meanwhile, e.g. cancelled), or
--          {'ok', left, started 0|1 (the next task's start was published), next task JSON, session JSON,
--           plan fields the holder reads (options, cost_usd, workspace, session_id) as a flat list...}
local starts = tonumber(ARGV[22])
local start_pairs = tonumber(ARGV[23 + starts])
local counts_from = 24 + starts + 2 * start_pairs
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
-- Read, then popped: popping first and pushing back on a mismatch would recreate a one-task
-- list without its retention TTL (a commit retried after a lost reply lands here).
if redis.call('LINDEX', KEYS[3], 0) ~= ARGV[2] then return {'mismatch'} end
redis.call('LPOP', KEYS[3])
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[5])
-- No transcript (the CLI left none): drop the old one too, so the next task falls back to a
-- recap instead of resuming a conversation that lacks this task.
if ARGV[19] == 'full' then
  redis.call('SET', KEYS[7], ARGV[13], 'EX', ARGV[5])
  redis.call('DEL', KEYS[10])
elseif ARGV[19] == 'append' then
  redis.call('RPUSH', KEYS[10], ARGV[13])
  redis.call('EXPIRE', KEYS[10], ARGV[5])
  redis.call('EXPIRE', KEYS[7], ARGV[5])
else
  redis.call('DEL', KEYS[7], KEYS[10])
end
-- One read of what the rest needs: the state, the checkpoint before this task, and the fields
-- the holder reads back (those this commit changes are answered from what it writes).
local fields = {'state', 'checkpoint', 'review_note', 'options', 'workspace', 'repo',
  'priority', 'after', 'concurrency_key', 'budget_usd', 'trace'}
local vals = redis.call('HMGET', KEYS[2], unpack(fields))
local st, before, note = vals[1], vals[2] or '', vals[3]
redis.call('HINCRBY', KEYS[2], 'done', 1)
local cost = redis.call('HINCRBYFLOAT', KEYS[2], 'cost_usd', ARGV[8])
redis.call('HINCRBY', KEYS[2], 'input_tokens', ARGV[15])
redis.call('HINCRBY', KEYS[2], 'output_tokens', ARGV[16])
local checkpoint = before
if ARGV[18] ~= '' then
  checkpoint = ARGV[18]
  redis.call('HSET', KEYS[2], 'updated_at', ARGV[9], 'last_worker', ARGV[14],
    'session_id', ARGV[17], 'checkpoint', checkpoint)
else
  redis.call('HSET', KEYS[2], 'updated_at', ARGV[9], 'last_worker', ARGV[14],
    'session_id', ARGV[17])
end
-- A reviewer's note is for the task that just ran.
if note then redis.call('HDEL', KEYS[2], 'review_note') end
add_counts(KEYS[2], counts_from, 'stat:')
local evs = {ARGV[6]}
local left = redis.call('LLEN', KEYS[3])
keep_for(ARGV[10], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[8], KEYS[9])
-- A plan paused during a reviewed task waits for the review too: nothing runs until a person
-- acts either way, and the reviewer's approval is the word to go on.
if ARGV[20] ~= '' and (st == 'running' or st == 'queued' or st == 'paused') then
  redis.call('HSET', KEYS[2], 'state', 'awaiting_review', 'review_task', ARGV[2],
    'review_base', before)
  redis.call('HDEL', KEYS[2], 'pause_now', 'pause_reason')
  table.insert(evs, ARGV[20])
  emit_all(KEYS[2], KEYS[6], evs, ARGV[7], ARGV[12])
  -- A reviewer may take longer than a session's TTL: the conversation (which the rework, or
  -- the next task, continues) is kept as long as the plan while it waits.
  local keep = redis.call('HGET', KEYS[2], 'retention_secs')
  if keep then
    for _, k in ipairs({KEYS[5], KEYS[7], KEYS[10]}) do redis.call('EXPIRE', k, keep) end
  end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'scheduled', 0)
  return {'review'}
end
if left == 0 then
  local completed = 0
  -- A plan paused during its last task has nothing left to hold: it completes (left paused,
  -- a resume would queue a plan no claim can run).
  if st == 'running' or st == 'paused' then
    redis.call('HSET', KEYS[2], 'state', 'completed', 'scheduled', 0)
    redis.call('HDEL', KEYS[2], 'pause_now', 'pause_reason')
    redis.call('HINCRBY', KEYS[2], 'stat:plans_completed', 1)
    table.insert(evs, ARGV[11])
    completed = 1
  else
    redis.call('HSET', KEYS[2], 'scheduled', 0)
  end
  emit_all(KEYS[2], KEYS[6], evs, ARGV[7], ARGV[12])
  redis.call('DEL', KEYS[1])
  return {'done', completed}
end
if st ~= 'running' and st ~= 'queued' then
  emit_all(KEYS[2], KEYS[6], evs, ARGV[7], ARGV[12])
  return {'idle', left}
end
local next_task = redis.call('LINDEX', KEYS[3], 0)
local started = 0
if starts > 0 then
  local budget = tonumber(ARGV[21])
  local t = cjson.decode(next_task)
  -- Not when the budget is spent (the holder stops the plan instead), nor for a task a dead
  -- worker was running (the holder checks it for poison first).
  local spent = budget and tonumber(cost) >= budget
  if not spent and (t.recoveries or 0) == 0 then
    local task_fields = '{"task_id":' .. cjson.encode(t.id) .. ',"task_index":' .. t.index .. ','
    for i = 23, 22 + starts do
      table.insert(evs, task_fields .. string.sub(ARGV[i], 2))
    end
    add_counts(KEYS[2], 24 + starts, 'stat:', nil, 23 + starts + 2 * start_pairs)
    started = 1
  end
end
emit_all(KEYS[2], KEYS[6], evs, ARGV[7], ARGV[12])
-- The reply: the next task, the session this commit wrote, and the plan fields a holder reads
-- (as append_holder_fields gives them), from what was read and written above.
local out = {'ok', left, started, next_task, ARGV[4], 'cost_usd', cost, 'session_id', ARGV[17]}
if checkpoint ~= '' then table.insert(out, 'checkpoint'); table.insert(out, checkpoint) end
for i = 4, #fields do
  if vals[i] then table.insert(out, fields[i]); table.insert(out, vals[i]) end
end
return out
