-- Stores and publishes one event of a plan.
-- KEYS: 1 plan, 2 events
-- ARGV: 1 event JSON, 2 channel, 3 event cap, 4 retention secs
local seq = emit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
keep_for(ARGV[4], KEYS[1], KEYS[2])
return seq
