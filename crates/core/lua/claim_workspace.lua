-- Claims a workspace for a plan at ingest, before the plan is written: a workspace belongs to
-- one live plan, and no plan's workspace may be the same folder as another's, inside it or
-- contain it (paths are checked as text: workspaces are normalized and symlinks refused, so
-- folders nest exactly when their paths do). A plan keeps its claim (a follow-up omitting the
-- workspace gets the one it holds) until prune_index.lua finds the plan expired.
-- KEYS: 1 workspace owners (hash: path -> plan id), 2 held paths (sorted set, every score 0:
--       ZRANGEBYLEX finds the paths below a folder), 3 plans' workspaces (hash: plan id -> path),
--       4 plan index
-- ARGV: 1 workspace the document names ('' = none), 2 plan id, 3 the plan's default workspace,
--       4 now (ms; the plan's score in the index)
-- Returns: {'ok', path} (claimed, now or before) or {'err', plan id, path}: the live plan holding
--          a conflicting path and that path (the plan itself when it holds another workspace)
local plan = ARGV[2]
local held = redis.call('HGET', KEYS[3], plan)
local ws = ARGV[1]
if ws == '' then ws = held or ARGV[3] end
-- A claimed plan is in the index from now on: a claim whose plan is never written is swept like
-- an expired plan's, and a sweep that found this plan expired before now leaves it (its score
-- changed).
if held == ws then
  redis.call('ZADD', KEYS[4], ARGV[4], plan)
  return {'ok', ws}
end
if held then return {'err', plan, held} end
-- The same folder, or a folder containing it.
local prefix = nil
for part in string.gmatch(ws, '[^/]+') do
  if prefix then prefix = prefix .. '/' .. part else prefix = part end
  local owner = redis.call('HGET', KEYS[1], prefix)
  if owner and owner ~= plan then return {'err', owner, prefix} end
end
-- A folder inside it: the first held path between "<ws>/" and "<ws>0" ('0' follows '/').
local inside = redis.call('ZRANGEBYLEX', KEYS[2], '[' .. ws .. '/', '(' .. ws .. '0', 'LIMIT', 0, 1)
if #inside > 0 then
  return {'err', redis.call('HGET', KEYS[1], inside[1]) or '', inside[1]}
end
-- Another path with the same transcript folder.
local folder = '~' .. string.gsub(ws, '[^%w]', '-')
local sharer = redis.call('HGET', KEYS[1], folder)
if sharer and sharer ~= plan then
  return {'err', sharer, redis.call('HGET', KEYS[3], sharer) or folder}
end
redis.call('HSET', KEYS[1], folder, plan)
redis.call('HSET', KEYS[1], ws, plan)
redis.call('ZADD', KEYS[2], 0, ws)
redis.call('HSET', KEYS[3], plan, ws)
redis.call('ZADD', KEYS[4], ARGV[4], plan)
return {'ok', ws}
