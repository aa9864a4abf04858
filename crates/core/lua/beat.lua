-- A worker's heartbeat: records it at the server's clock (so no worker's clock matters) and
-- returns the workers silent for longer than the dead-after limit, with the cutoff used.
-- KEYS: 1 workers
-- ARGV: 1 worker id, 2 dead after (ms)
-- Returns: {cutoff ms, {silent worker ids...}}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local cutoff = now - tonumber(ARGV[2])
return {cutoff, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)}
