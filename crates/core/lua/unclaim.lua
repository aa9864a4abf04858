-- Takes a plan id off a worker's in-flight list and, if asked, puts it back on the ready list
-- of its priority, or on the delayed set until a time; brings the pool's counters up to the
-- plan's totals on the way (see transfer in the prelude), and marks the plan active now in the
-- plan index (if it is there: a watcher that lost its connection finds the plans that did
-- something meanwhile by it).
-- KEYS: 1 inflight list, 2 ready (normal), 3 stats, 4 this minute's counters, 5 what was added
--       per plan, 6 plan index, 7 ready high, 8 ready low, 9 wake, 10 delayed, 11 plans'
--       concurrency keys, 12 limits
-- (ARGV 7 on are counters, so the key base comes last: KEYS 13 is a placeholder naming it.)
-- ARGV: 1 plan id, 2 'back' (end of the line), 'front' (next to be taken), 'later' (claimed
--       again from the time in 5) or 'drop', 3 now (ms), 4 the plan's priority,
--       5 not before (ms, server clock; for 'later'), 6 and not before this many ms from now,
--       7.. pairs of counter name, the plan's total
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  key_release(KEYS[13], KEYS[11], KEYS[12], ARGV[1], KEYS[7], KEYS[2], KEYS[8], KEYS[9])
end
if ARGV[2] == 'later' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local at = math.max(tonumber(ARGV[5]), now + tonumber(ARGV[6]))
  redis.call('ZADD', KEYS[10], at, ARGV[4] .. ':' .. ARGV[1])
else
  schedule(KEYS[7], KEYS[2], KEYS[8], KEYS[9], ARGV[4], ARGV[1], ARGV[2])
end
transfer(KEYS[3], KEYS[4], KEYS[5], ARGV[1], 7)
redis.call('ZADD', KEYS[6], 'XX', ARGV[3], ARGV[1])
return 1
