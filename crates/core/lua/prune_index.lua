-- Drops plans that have expired (past their retention) from the plan index, each only if its
-- score is still the one the caller saw: a plan submitted again since then was re-scored by
-- finish_ingest.lua and stays.
-- KEYS: 1 plan index, 2 the counters added per plan (the plan's entry goes too)
-- ARGV: pairs of plan id, score as read
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return removed
