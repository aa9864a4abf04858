-- Takes a plan id off a worker's in-flight list and, if asked, puts it back on the ready list;
-- adds the hold's pool-wide counters on the way (they are gathered per hold, not sent per task).
-- KEYS: 1 inflight list, 2 ready, 3 stats, 4 this minute's counters
-- ARGV: 1 plan id, 2 'back' (end of the line), 'front' (next to be taken) or 'drop',
--       3.. pairs of counter name, increment (an increment with a '.' is a float)
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] == 'back' then redis.call('LPUSH', KEYS[2], ARGV[1])
elseif ARGV[2] == 'front' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
add_counts(KEYS[3], 3, '', KEYS[4])
return 1
