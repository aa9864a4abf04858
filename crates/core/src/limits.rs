//! Concurrency keys and what a pool limits per key: how many of a key's plans run at once
//! (`baton limit`), and how much a key may spend per UTC day (`baton budget --key`).
//!
//! A plan's key is `options.concurrency_key`, or `repo:<url>` for a plan with a repository and
//! no key of its own. Limits live in the pool's slot (`{baton}:limits`), next to the ready
//! lists, so `claim.lua` checks them in the claim's one round trip: a plan whose key is at its
//! limit is parked on the key's waiting list, and a plan of that key leaving its worker lets
//! the oldest parked one back (docs/ARCHITECTURE.md, "Limits per key").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The limit field that applies to every `repo:` key without a limit of its own.
pub const DEFAULT_REPO_KEY: &str = "repo:*";
/// Longest concurrency key a document may name.
pub const MAX_KEY_LEN: usize = 100;
/// Largest limit `baton limit set` takes.
pub const MAX_LIMIT: u64 = 100_000;
/// Largest daily budget `baton budget --key` takes, in US dollars.
pub const MAX_DAILY_USD: f64 = 1_000_000.0;

/// A concurrency key as a document or `baton limit` names it: 1-100 characters from letters,
/// digits and `:._/@+-`, starting with a letter or digit. `*` is kept for the repo default.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || ":._/@+-".contains(c);
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "must be 1-{MAX_KEY_LEN} characters (it is {})",
            key.len()
        ));
    }
    if !key.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{key:?} must start with a letter or digit"));
    }
    if let Some(bad) = key.chars().find(|c| !ok_char(*c)) {
        return Err(format!(
            "{key:?} has {bad:?}; a key is letters, digits and : . _ / @ + - (e.g. \"team:payments\")"
        ));
    }
    Ok(())
}

/// The key a plan counts against: its own, else `repo:<url>` when it has a repository.
pub fn plan_key(own: Option<&str>, repo_url: Option<&str>) -> Option<String> {
    own.map(str::to_owned)
        .or_else(|| repo_url.map(|u| format!("repo:{u}")))
}

/// The UTC day of `at`, as `YYYY-MM-DD` (a team's spend is kept per day).
pub fn utc_day(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()[..10].to_owned()
}

/// Milliseconds since the epoch at the start of the UTC day after `at`.
pub fn next_utc_day_ms(at: SystemTime) -> u64 {
    const DAY_MS: u64 = 86_400_000;
    let ms = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    (ms / DAY_MS + 1) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_labels() {
        assert!(check_key("team:payments").is_ok());
        assert!(check_key("repo:https://git.example/web.git").is_ok());
        assert!(check_key("").unwrap_err().contains("1-100"));
        assert!(check_key(&"k".repeat(101)).unwrap_err().contains("1-100"));
        assert!(check_key(":team").unwrap_err().contains("start with"));
        assert!(check_key("team a").unwrap_err().contains("' '"));
        assert!(check_key("team{x}").unwrap_err().contains("'{'"));
        assert!(
            check_key("repo:*").is_err(),
            "the default's name is not a key"
        );
    }

    #[test]
    fn a_repository_gives_its_key_when_the_plan_names_none() {
        assert_eq!(
            plan_key(Some("team:a"), Some("u")).as_deref(),
            Some("team:a")
        );
        assert_eq!(plan_key(None, Some("u")).as_deref(), Some("repo:u"));
        assert_eq!(plan_key(None, None), None);
    }

    #[test]
    fn days_are_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_633_600_000 + 5); // 2025-12-02T00:00:00.005Z
        assert_eq!(utc_day(at), "2025-12-02");
        assert_eq!(next_utc_day_ms(at), 1_764_633_600_000 + 86_400_000);
    }
}
