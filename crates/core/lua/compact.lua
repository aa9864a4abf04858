-- Compacts a plan's committed transcript: the base pack and its chunks replaced by one pack that
-- holds them all (made by the holder that just restored them), fenced by the lease, and only if
-- no chunk was added since they were read.
-- KEYS: 1 lock, 2 transcript (base pack), 3 transcript chunks
-- ARGV: 1 lock value, 2 the whole pack, 3 chunks read
-- Returns: {'ok'}, {'fenced'} (the lease is not ours) or {'changed'} (the chunks changed meanwhile)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
if redis.call('LLEN', KEYS[3]) ~= tonumber(ARGV[3]) then return {'changed'} end
redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
redis.call('DEL', KEYS[3])
return {'ok'}
