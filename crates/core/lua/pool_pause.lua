-- Pauses or resumes the whole pool (`baton pause --all`, `baton resume --all`). A user's pause
-- is the pool pause key without an expiry (a rate limit's has one): workers claim nothing while
-- it stands, and a hold leaves its plan (requeued first in line) after the task running now.
-- KEYS: 1 pause
-- ARGV: 1 '1' pause, '0' resume, 2 reason, 3 event JSON, 4 channel
-- Returns: 1 changed, 0 nothing to do (resume: no user pause stands)
if ARGV[1] == '1' then
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('PUBLISH', ARGV[4], ARGV[3])
  return 1
end
if redis.call('PTTL', KEYS[1]) ~= -1 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
