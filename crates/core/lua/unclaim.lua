-- Takes a plan id off a worker's in-flight list and, if asked, puts it back on the ready list;
-- brings the pool's counters up to the plan's totals on the way (see transfer in the prelude),
-- and marks the plan active now in the plan index (if it is there: a watcher that lost its
-- connection finds the plans that did something meanwhile by it).
-- KEYS: 1 inflight list, 2 ready, 3 stats, 4 this minute's counters, 5 what was added per plan,
--       6 plan index
-- ARGV: 1 plan id, 2 'back' (end of the line), 'front' (next to be taken) or 'drop', 3 now (ms),
--       4.. pairs of counter name, the plan's total
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] == 'back' then redis.call('LPUSH', KEYS[2], ARGV[1])
elseif ARGV[2] == 'front' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
transfer(KEYS[3], KEYS[4], KEYS[5], ARGV[1], 4)
redis.call('ZADD', KEYS[6], 'XX', ARGV[3], ARGV[1])
return 1
