//! Wall-clock helpers shared by every process, so that all stamps look alike.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as an RFC 3339 timestamp in UTC with milliseconds, e.g. `2026-11-25T09:00:00.123Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now in milliseconds since the Unix epoch, by this machine's clock.
pub fn now_millis() -> u64 {
    // The clock is after 1970 on every machine baton runs on; a clock before it reads as 0.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The Redis server's clock in milliseconds since the epoch, from the reply of `TIME`
/// (seconds, microseconds): worker heartbeats are stamped with it, so ages are measured by it.
pub fn server_millis((secs, micros): (u64, u64)) -> u64 {
    secs.saturating_mul(1000).saturating_add(micros / 1000)
}
