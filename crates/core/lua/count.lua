-- Adds to the pool-wide counters in one trip.
-- KEYS: 1 stats
-- ARGV: pairs of counter name, increment (an increment with a '.' is a float)
-- Returns: 1
add_counts(KEYS[1], 1, '')
return 1
