-- Frees the lease of a dead worker on one plan and counts the recovery on the task it was running.
-- KEYS: 1 lock, 2 tasks
-- ARGV: 1 dead worker id
-- Returns: the head task's recovery count after this one, or -1 when the lease was not the dead worker's
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. '/' then return -1 end
redis.call('DEL', KEYS[1])
local head = redis.call('LINDEX', KEYS[2], 0)
if not head then return 0 end
local t = cjson.decode(head)
t.recoveries = (t.recoveries or 0) + 1
redis.call('LSET', KEYS[2], 0, cjson.encode(t))
return t.recoveries
