-- Takes a plan id off a worker's in-flight list and, if asked, puts it back on the ready list.
-- KEYS: 1 inflight list, 2 ready
-- ARGV: 1 plan id, 2 'back' (end of the line), 'front' (next to be taken) or '' (drop)
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] == 'back' then redis.call('LPUSH', KEYS[2], ARGV[1])
elseif ARGV[2] == 'front' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return 1
