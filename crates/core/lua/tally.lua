-- Brings the pool's counters up to a plan's totals (see transfer in the prelude): what a hold
-- sends now and then, and what a reaper sends for the plans of a dead worker.
-- KEYS: 1 stats, 2 this minute's counters, 3 what was added per plan
-- ARGV: 1 plan id, 2.. pairs of counter name, the plan's total
-- Returns: 1
transfer(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 2)
return 1
