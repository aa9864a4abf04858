-- The lease of the one worker that fires schedules, fenced like a plan's lock: taken when
-- free, renewed only by its holder, given back only by its holder.
-- KEYS: 1 scheduler
-- ARGV: 1 lease value '<worker>/<token>', 2 lease ms ('0': give it back)
-- Returns: 1 held (taken, renewed, or given back), 0 another worker holds it
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == '0' then
  if cur == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
