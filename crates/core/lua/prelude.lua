-- Helpers shared by the scripts that declare `prelude = true` in scripts.rs (prepended to them).
-- emit(plan_key, events_key, event_json, channel, cap): numbers the event with the plan's
-- next sequence number, appends it to the plan's event list (capped), publishes it.
local function emit(plan_key, events_key, ev, channel, cap)
  local seq = redis.call('HINCRBY', plan_key, 'event_seq', 1) - 1
  local full = string.sub(ev, 1, -2) .. ',"seq":' .. seq .. '}'
  if redis.call('RPUSH', events_key, full) > tonumber(cap) then
    redis.call('LTRIM', events_key, -tonumber(cap), -1)
  end
  redis.call('PUBLISH', channel, full)
  return seq
end
-- emit_all(plan_key, events_key, events, channel, cap): emits a list of event JSONs in order as
-- emit does one, in fewer calls: one sequence bump and one append for all, then a publish each.
-- Returns the last one's sequence number (-1 for none).
local function emit_all(plan_key, events_key, evs, channel, cap)
  local n = #evs
  if n == 0 then return -1 end
  local seq = redis.call('HINCRBY', plan_key, 'event_seq', n) - n
  local full = {}
  for i = 1, n do
    full[i] = string.sub(evs[i], 1, -2) .. ',"seq":' .. (seq + i - 1) .. '}'
  end
  if redis.call('RPUSH', events_key, unpack(full)) > tonumber(cap) then
    redis.call('LTRIM', events_key, -tonumber(cap), -1)
  end
  for i = 1, n do redis.call('PUBLISH', channel, full[i]) end
  return seq + n - 1
end
-- emit_with(plan_key, events_key, event_json, facts, channel, cap): emits the event Rust built
-- with the facts only this script knows (a table of the event's own fields, named by the typed
-- event in baton-core) set on it, encoded by cjson rather than by hand.
local function emit_with(plan_key, events_key, ev, facts, channel, cap)
  local e = cjson.decode(ev)
  for k, v in pairs(facts) do e[k] = v end
  return emit(plan_key, events_key, cjson.encode(e), channel, cap)
end
-- keep_for(secs, keys...): (re)sets the retention TTL; secs '0' leaves the TTLs as they are
-- (a holder refreshes them on its first commit of a hold, not on every task).
local function keep_for(secs, ...)
  if secs == '0' then return end
  for _, k in ipairs({...}) do redis.call('EXPIRE', k, secs) end
end
-- add_counts(hash_key, first, prefix, minute_key, last): adds the ARGV pairs from index `first`
-- on (name, increment; an increment with a '.' is a float), up to `last` (default: the end), to
-- the counters `<prefix><name>` in hash_key (prefix '' for the pool's stats hash, 'stat:' for a
-- plan's own counters), and, when minute_key is given, to that minute's counters too (kept two
-- hours, for the dashboard).
local function add_counts(hash_key, first, prefix, minute_key, last)
  local keys = {hash_key, minute_key}
  for i = first, last or #ARGV, 2 do
    local float = string.find(ARGV[i + 1], '.', 1, true)
    for _, k in ipairs(keys) do
      if float then
        redis.call('HINCRBYFLOAT', k, prefix .. ARGV[i], ARGV[i + 1])
      else
        redis.call('HINCRBY', k, prefix .. ARGV[i], ARGV[i + 1])
      end
    end
  end
  if minute_key and first <= (last or #ARGV) then redis.call('EXPIRE', minute_key, 7200) end
end
-- plan_limits(plan_key, retention, cap): the plan's own retention and event cap (recorded at
-- ingest from the pool's settings), else the given defaults. For scripts a client runs, which
-- cannot know what the pool runs with.
local function plan_limits(plan_key, retention, cap)
  local v = redis.call('HMGET', plan_key, 'retention_secs', 'event_cap')
  return v[1] or retention, v[2] or cap
end
-- append_holder_fields(out, plan_key): appends the plan fields a holder reads (options,
-- cost_usd, workspace, session_id, repo, checkpoint, priority, after, review_note,
-- concurrency_key, budget_usd, trace) to a reply, as name, value pairs. (commit.lua answers the
-- same fields from its own read and writes: keep the two lists in step.)
local function append_holder_fields(out, plan_key)
  local fields = {'options', 'cost_usd', 'workspace', 'session_id', 'repo', 'checkpoint',
    'priority', 'after', 'review_note', 'concurrency_key', 'budget_usd', 'trace'}
  local vals = redis.call('HMGET', plan_key, unpack(fields))
  for i, f in ipairs(fields) do
    if vals[i] then table.insert(out, f); table.insert(out, vals[i]) end
  end
  return out
end
-- transfer(stats_key, minute_key, seen_key, plan, first): adds to the pool's counters (and this
-- minute's) what the plan's totals in the ARGV pairs from index `first` on (name, total) hold
-- beyond what was already added for this plan (remembered in seen_key, a hash of plan id to a
-- JSON object of totals). Sending the same or older totals again adds nothing.
local function transfer(stats_key, minute_key, seen_key, plan, first)
  if first > #ARGV then return end
  local raw = redis.call('HGET', seen_key, plan)
  local seen = raw and cjson.decode(raw) or {}
  local added = false
  for i = first, #ARGV, 2 do
    local name, total = ARGV[i], tonumber(ARGV[i + 1])
    local before = tonumber(seen[name] or '0')
    if total and total > before then
      local delta = total - before
      for _, k in ipairs({stats_key, minute_key}) do
        if name == 'cost_usd' or string.find(ARGV[i + 1], '.', 1, true) then
          redis.call('HINCRBYFLOAT', k, name, string.format('%.9f', delta))
        else
          redis.call('HINCRBY', k, name, delta)
        end
      end
      seen[name] = ARGV[i + 1]
      added = true
    end
  end
  if added then
    redis.call('HSET', seen_key, plan, cjson.encode(seen))
    redis.call('EXPIRE', minute_key, 7200)
  end
end
-- schedule(high, normal, low, wake, priority, plan, where): puts a plan id on the ready list of
-- its priority ('high', 'low'; anything else is normal) at the back ('back') or first in line
-- ('front'), and arms the wake token idle slots block on. 'drop' does nothing.
local function schedule(high, normal, low, wake, prio, plan, where)
  local list = normal
  if prio == 'high' then list = high elseif prio == 'low' then list = low end
  if where == 'back' then redis.call('LPUSH', list, plan)
  elseif where == 'front' then redis.call('RPUSH', list, plan)
  else return end
  if redis.call('LLEN', wake) == 0 then redis.call('LPUSH', wake, 1) end
end
-- action_refused(plan_key, ingested_key, tag, want): the reply of an action document (retry,
-- resume, approve, reject) that must not be applied: {'duplicate', schedule, priority} when
-- this document was applied before, {'err', state} when the plan is not in state `want`
-- ('' when there is no such plan). nil: go ahead.
local function action_refused(plan_key, ingested_key, tag, want)
  local st = redis.call('HGET', plan_key, 'state')
  if redis.call('SISMEMBER', ingested_key, tag) == 1 then
    local runs = (st == 'queued' or st == 'running') and 1 or 0
    return {'duplicate', runs, redis.call('HGET', plan_key, 'priority') or ''}
  end
  if not st then return {'err', ''} end
  if st ~= want then return {'err', st} end
  return nil
end
-- take_scheduling(plan_key): 1 when the plan was on no ready list and now must be put on one
-- (marked scheduled), 0 when it already is.
local function take_scheduling(plan_key)
  if redis.call('HGET', plan_key, 'scheduled') == '1' then return 0 end
  redis.call('HSET', plan_key, 'scheduled', 1)
  return 1
end
-- restart_session_ttl(plan_key, default, keys...): (re)starts the TTL of the plan's session
-- keys that still exist with the plan's own session TTL (options.session_ttl_secs), else
-- `default` (the pool's).
local function restart_session_ttl(plan_key, default, ...)
  local ttl = tonumber(default)
  local opts = redis.call('HGET', plan_key, 'options')
  if opts then
    local o = cjson.decode(opts)
    if type(o.session_ttl_secs) == 'number' then ttl = o.session_ttl_secs end
  end
  for _, k in ipairs({...}) do
    if redis.call('EXISTS', k) == 1 then redis.call('EXPIRE', k, ttl) end
  end
end
-- Concurrency keys (pool slot; see limits.rs). `base` is '{baton}:key:': a key's running plans
-- are the hash base..'running:'..key (plan id -> claimed copies), its parked plans the list
-- base..'waiting:'..key ('priority:plan', oldest first). `limits` maps key -> N, with 'repo:*'
-- for every repo key without its own.
-- key_limit(limits, key): the key's limit, or nil (no limit).
local function key_limit(limits, key)
  local n = redis.call('HGET', limits, key)
  if not n and string.sub(key, 1, 5) == 'repo:' then n = redis.call('HGET', limits, 'repo:*') end
  return tonumber(n)
end
-- key_unpark(base, limits, key, high, normal, low, wake): puts as many of the key's parked plans
-- as it has free places back first in line on their ready lists (all of them without a limit).
local function key_unpark(base, limits, key, high, normal, low, wake)
  local lim = key_limit(limits, key)
  local free = -1
  if lim then free = lim - redis.call('HLEN', base .. 'running:' .. key) end
  while free ~= 0 do
    local m = redis.call('LPOP', base .. 'waiting:' .. key)
    if not m then return end
    local sep = string.find(m, ':', 1, true)
    if sep then
      schedule(high, normal, low, wake, string.sub(m, 1, sep - 1), string.sub(m, sep + 1), 'front')
      free = free - 1
    end
  end
end
-- key_release(base, plan_keys, limits, plan, high, normal, low, wake): one claimed copy of
-- `plan` left an in-flight list; when it was the plan's last, the plan no longer runs under its
-- key, and a parked plan of the key may go.
local function key_release(base, plan_keys, limits, plan, high, normal, low, wake)
  local key = redis.call('HGET', plan_keys, plan)
  if not key then return end
  local running = base .. 'running:' .. key
  if redis.call('HINCRBY', running, plan, -1) <= 0 then
    redis.call('HDEL', running, plan)
    key_unpark(base, limits, key, high, normal, low, wake)
  end
end
