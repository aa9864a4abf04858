-- Renews a lease if it is still ours.
-- KEYS: 1 lock
-- ARGV: 1 lock value, 2 lease ms
-- Returns: 1 renewed, 0 lost (expired or taken by another worker)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
