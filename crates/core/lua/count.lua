-- Adds to the pool-wide counters in one trip.
-- KEYS: 1 stats, 2 this minute's counters
-- ARGV: pairs of counter name, increment (an increment with a '.' is a float)
-- Returns: 1
add_counts(KEYS[1], 1, '', KEYS[2])
return 1
