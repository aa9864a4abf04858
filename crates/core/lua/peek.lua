-- Reads the holder's next task and the session record, fenced by the lease.
-- KEYS: 1 lock, 2 plan, 3 tasks, 4 session
-- ARGV: 1 lock value
-- Returns: {'fenced'}, {'idle', state}, or {'ok', head task JSON, session JSON or '', plan hash...}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'fenced'} end
local st = redis.call('HGET', KEYS[2], 'state') or ''
local head = redis.call('LINDEX', KEYS[3], 0)
if (st ~= 'queued' and st ~= 'running') or not head then return {'idle', st} end
local out = {'ok', head, redis.call('GET', KEYS[4]) or ''}
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do table.insert(out, v) end
return out
