-- Shared by every script that stores events (prepended by scripts.rs).
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
-- keep_for(secs, keys...): (re)sets the retention TTL; secs '0' leaves the TTLs as they are
-- (a holder refreshes them on its first commit of a hold, not on every task).
local function keep_for(secs, ...)
  if secs == '0' then return end
  for _, k in ipairs({...}) do redis.call('EXPIRE', k, secs) end
end
