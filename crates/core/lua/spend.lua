-- Adds what a plan of a concurrency key spent since it was last reported to the key's spend of
-- the current UTC day (server clock), and reads the key's daily budget. Idempotent: the plan's
-- cost total reported last is remembered, so a report sent twice, or a total reported again
-- by the next holder after a crash, adds nothing.
-- KEYS: 1 daily budgets (key -> USD), 2 totals reported per plan (plan -> USD), 3 the spend
--       keys' common start ('{baton}:spend:', the day number since the epoch is appended)
-- ARGV: 1 key, 2 plan id, 3 the plan's cost total (USD)
-- Returns: {spent today (USD), the key's daily budget ('' = none), next UTC day (ms)}
local t = redis.call('TIME')
local day = math.floor(tonumber(t[1]) / 86400)
local today = KEYS[3] .. day
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0') or 0
local total = tonumber(ARGV[3]) or 0
if total > seen then
  redis.call('HINCRBYFLOAT', today, ARGV[1], string.format('%.9f', total - seen))
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('EXPIRE', today, 3 * 86400)
end
return {redis.call('HGET', today, ARGV[1]) or '0', redis.call('HGET', KEYS[1], ARGV[1]) or '',
  (day + 1) * 86400000}
