-- Renews a lease if it is still ours, and tells the holder to stop its task when the plan was
-- cancelled or paused with --now.
-- KEYS: 1 lock, 2 plan
-- ARGV: 1 lock value, 2 lease ms
-- Returns: 1 renewed, 2 renewed but the running task must stop (cancelled, paused now), 0 lost
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local v = redis.call('HMGET', KEYS[2], 'state', 'pause_now')
  if v[1] == 'cancelled' then return 2 end
  if v[1] == 'paused' and v[2] == '1' then return 2 end
  return 1
end
return 0
