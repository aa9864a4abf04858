//! Waits between reconnect attempts after a Redis outage (the event cursor, the dashboard's
//! event relay): growing exponentially with jitter, capped, never ending, through `backon`
//! like the worker's (`baton_worker`'s `reconnect` module), so many clients cut off at once do
//! not come back in step.

use std::time::Duration;

use backon::BackoffBuilder;

/// The first wait after a lost connection.
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The longest wait between reconnect attempts.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Delays between reconnect attempts: from 200 ms, doubling with jitter, capped at 5 s.
pub fn reconnect_delays() -> impl Iterator<Item = Duration> + Send {
    backon::ExponentialBuilder::default()
        .with_min_delay(FIRST_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The next delay of `delays` (the cap, should the iterator ever end).
pub fn next_delay(delays: &mut impl Iterator<Item = Duration>) -> Duration {
    delays.next().unwrap_or(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let delays: Vec<Duration> = reconnect_delays().take(20).collect();
        assert_eq!(delays.len(), 20, "never ends");
        assert!(delays[0] >= FIRST_DELAY, "{delays:?}");
        // Jitter adds up to one delay again: the cap with jitter is at most twice the cap.
        assert!(delays.iter().all(|d| *d <= MAX_DELAY * 2), "{delays:?}");
        assert!(delays[10] >= MAX_DELAY, "reaches the cap: {delays:?}");
    }
}
