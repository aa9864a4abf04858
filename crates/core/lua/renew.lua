-- Renews a lease if it is still ours, and tells the holder if the plan was cancelled.
-- KEYS: 1 lock, 2 plan
-- ARGV: 1 lock value, 2 lease ms
-- Returns: 1 renewed, 2 renewed but the plan was cancelled (stop its task), 0 lost
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  if redis.call('HGET', KEYS[2], 'state') == 'cancelled' then return 2 end
  return 1
end
return 0
