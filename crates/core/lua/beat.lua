-- A worker's heartbeat: records it at the server's clock (so no worker's clock matters) and
-- returns the workers silent for longer than the dead-after limit, with the cutoff used, and
-- whether a user paused the pool (`baton pause --all`: holds then leave after their task).
-- KEYS: 1 workers, 2 pause
-- ARGV: 1 worker id, 2 dead after (ms)
-- Returns: {cutoff ms, {silent worker ids...}, 1 when paused by a user else 0}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local cutoff = now - tonumber(ARGV[2])
local paused = 0
if redis.call('PTTL', KEYS[2]) == -1 then paused = 1 end
return {cutoff, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff), paused}
