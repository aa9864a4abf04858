-- Hands a silent worker's claimed plans and half-ingested documents back to the pool. Its
-- plans go first in line on the normal ready list (the in-flight list keeps plan ids only, not
-- their priorities).
-- KEYS: 1 workers, 2 its inflight list, 3 its ingesting list, 4 ready (normal), 5 handback (the
--       documents go there, not to submit: a tag is trusted only on what workers put back), 6 wake,
--       7 worker_info, 8 plans' concurrency keys, 9 limits, 10 ready high, 11 the per-key
--       keys' common start, 12 ready low (a plan leaving lets a parked plan of its key go)
-- ARGV: 1 worker id, 2 cutoff ms (a heartbeat newer than this means it is alive after all)
-- Returns: number of plans handed back, or -1 if the worker is alive
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) > tonumber(ARGV[2]) then return -1 end
local n = 0
while true do
  local plan = redis.call('LMOVE', KEYS[2], KEYS[4], 'LEFT', 'RIGHT')
  if not plan then break end
  n = n + 1
  key_release(KEYS[11], KEYS[8], KEYS[9], plan, KEYS[10], KEYS[4], KEYS[12], KEYS[6])
end
while redis.call('LMOVE', KEYS[3], KEYS[5], 'LEFT', 'RIGHT') do end
if n > 0 and redis.call('LLEN', KEYS[6]) == 0 then redis.call('LPUSH', KEYS[6], 1) end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
return n
