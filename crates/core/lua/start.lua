-- Announces a task attempt in one trip: its events (task_started, then the session event if
-- any) and the plan's own counters. Not fenced: events are history, and a stale holder's
-- start is followed by no commit.
-- KEYS: 1 plan, 2 events
-- ARGV: 1 channel, 2 event cap, 3 retention secs ('0': leave the TTLs, refreshed earlier in this hold), 4 number of events N,
--       5..4+N event JSONs, then pairs of plan counter name, increment (added to 'stat:<name>')
-- Returns: the sequence number of the last event
local n = tonumber(ARGV[4])
local seq = emit_all(KEYS[1], KEYS[2], {unpack(ARGV, 5, 4 + n)}, ARGV[1], ARGV[2])
add_counts(KEYS[1], 5 + n, 'stat:')
keep_for(ARGV[3], KEYS[1], KEYS[2])
return seq
