-- Drops plans that have expired (past their retention) from the plan index, each only if its
-- score is still the one the caller saw: a plan submitted again since then was re-scored by
-- finish_ingest.lua (or claim_workspace.lua) and stays. A plan dropped gives its workspace up.
-- KEYS: 1 plan index, 2 the counters added per plan (the plan's entry goes too),
--       3 workspace owners (path -> plan id), 4 held paths, 5 plans' workspaces (plan id -> path),
--       6 plans' concurrency keys, 7 cost totals reported per plan (spend.lua)
-- ARGV: pairs of plan id, score as read
-- Returns: the number of plans dropped
local removed = 0
for i = 1, #ARGV, 2 do
  local plan = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], plan) == ARGV[i + 1] then
    removed = removed + redis.call('ZREM', KEYS[1], plan)
    redis.call('HDEL', KEYS[2], plan)
    redis.call('HDEL', KEYS[6], plan)
    redis.call('HDEL', KEYS[7], plan)
    local ws = redis.call('HGET', KEYS[5], plan)
    if ws then
      if redis.call('HGET', KEYS[3], ws) == plan then
        redis.call('HDEL', KEYS[3], ws)
        redis.call('ZREM', KEYS[4], ws)
      end
      -- The claim on the CLI's folder name for it (see claim_workspace.lua).
      local folder = '~' .. string.gsub(ws, '[^%w]', '-')
      if redis.call('HGET', KEYS[3], folder) == plan then
        redis.call('HDEL', KEYS[3], folder)
      end
      redis.call('HDEL', KEYS[5], plan)
    end
  end
end
return removed
