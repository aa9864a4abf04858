-- Ends one ingest: drops the document from the worker's ingesting list, counts it and, when
-- the plan needs a worker, puts it on the ready list of its priority.
-- KEYS: 1 ingesting list, 2 ready (normal), 3 stats, 4 this minute's counters, 5 plan index,
--       6 the counter totals the pool holds per plan, 7 ready high, 8 ready low, 9 wake,
--       10 plans' concurrency keys
-- ARGV: 1 entry as stored in the ingesting list, 2 plan_id ('' = none), 3 where the plan goes:
--       'back' (end of the ready list), 'front' (next to be claimed) or 'drop' (not scheduled),
--       4 now (ms; the plan's score in the index: when it was last submitted to or handed back),
--       5 '1' when the document created the plan (its counter totals start afresh),
--       6 the plan's priority, 7 the plan's concurrency key ('' = none, '-' = leave as it is:
--       an action), 8.. pairs of pool counter name, increment
redis.call('LREM', KEYS[1], 1, ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2]) end
if ARGV[5] == '1' then redis.call('HDEL', KEYS[6], ARGV[2]) end
if ARGV[2] ~= '' and ARGV[7] ~= '-' then
  if ARGV[7] == '' then redis.call('HDEL', KEYS[10], ARGV[2])
  else redis.call('HSET', KEYS[10], ARGV[2], ARGV[7]) end
end
schedule(KEYS[7], KEYS[2], KEYS[8], KEYS[9], ARGV[6], ARGV[2], ARGV[3])
add_counts(KEYS[3], 8, '', KEYS[4])
return 1
