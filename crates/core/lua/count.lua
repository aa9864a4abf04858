-- Adds to the pool-wide counters in one trip.
-- KEYS: 1 stats
-- ARGV: pairs of counter name, increment (an increment with a '.' is a float)
-- Returns: 1
for i = 1, #ARGV, 2 do
  if string.find(ARGV[i + 1], '.', 1, true) then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
