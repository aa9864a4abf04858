//! Recurring plans (`baton schedule`): a schedule is a name, a cron expression (with seconds)
//! in a time zone, and a plan document submitted at every tick. This module holds what the
//! producer and the worker must agree on: the name rule, the cron and zone parsing, the ticks
//! due at a time, the plan id each tick gets, and the records kept in Redis
//! (`{p}:schedules`, `{p}:schedule_fired`, `{p}:schedule_runs`; see [`crate::keys`]).
//!
//! A tick's plan id is derived from the schedule's name and the tick's time in UTC
//! (`nightly-20261202T020000Z`), so a tick submitted twice names one plan; the firing script
//! also refuses a tick not after the last one fired (see `lua/schedule_fire.lua`).
//!
//! The missed-tick policy is here too ([`CronSpec::latest_due`]): after an outage only the
//! latest tick that was due fires, once; the earlier ones are counted as missed.

mod entry;
mod plan_doc;
#[cfg(test)]
mod tests;

pub use entry::{entries, Entry};
pub use plan_doc::{check_plan_document, schedule_refs, tick_document, SCHEDULE_REF};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::ids::PlanId;

/// Longest schedule name: the longest plan id a tick gets (`<name>-now-<time with ms>Z`) must
/// stay within the plan id limit of 64 characters.
pub const MAX_NAME_LEN: usize = 40;

/// Ticks counted one by one when an outage missed several; past this the count says "at
/// least".
pub const MISSED_COUNT_LIMIT: u64 = 10_000;

/// A schedule's name: 1 to 40 characters, ASCII letters, digits, `-` and `_`, starting with a
/// letter or digit (no `.`, `:` or braces: it goes into plan ids and hash fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScheduleName(String);

impl ScheduleName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ScheduleName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let rule = "1 to 40 characters: ASCII letters, digits, '-' and '_', starting with a letter or digit";
        let ok = !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("{s:?} is not a schedule name ({rule})"))
        }
    }
}

impl TryFrom<String> for ScheduleName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ScheduleName> for String {
    fn from(n: ScheduleName) -> String {
        n.0
    }
}

impl fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a time zone: an IANA name (`Europe/Paris`), or `UTC`.
///
/// # Errors
/// The problem, naming the zone.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("{name:?} is not an IANA time zone name (e.g. UTC, Europe/Paris, America/New_York)")
    })
}

/// A cron expression in a time zone, parsed.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    zone: Tz,
}

/// The tick to fire now, and how many earlier ones were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The tick, ms since the epoch.
    pub tick_ms: u64,
    /// Due ticks before it that will not fire (the outage policy); at most
    /// [`MISSED_COUNT_LIMIT`].
    pub missed: u64,
}

impl CronSpec {
    /// Parses `expr` (6 fields with seconds first, or 5 fields at second 0, or a nickname
    /// such as `@daily`) in the zone named `zone`.
    ///
    /// # Errors
    /// What is wrong, prefixed with the flag (`--cron` or `--tz`).
    pub fn parse(expr: &str, zone: &str) -> Result<Self, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| format!("--cron {expr:?}: {e}"))?;
        let zone = parse_zone(zone).map_err(|e| format!("--tz: {e}"))?;
        let spec = Self { cron, zone };
        // A pattern that never matches (31 February) is refused now, not at the first tick.
        if spec.next_after(crate::time::now_millis()).is_none() {
            return Err(format!("--cron {expr:?}: never matches a time"));
        }
        Ok(spec)
    }

    fn at(&self, ms: u64) -> Option<DateTime<Tz>> {
        let ms = i64::try_from(ms).ok()?;
        Some(
            Utc.timestamp_millis_opt(ms)
                .single()?
                .with_timezone(&self.zone),
        )
    }

    /// The first tick strictly after `ms` (ms since the epoch).
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        let t = self.cron.find_next_occurrence(&self.at(ms)?, false).ok()?;
        u64::try_from(t.timestamp_millis()).ok()
    }

    /// The latest tick in `(after_ms, now_ms]`, with the count of the due ticks before it, or
    /// `None` when no tick is due. The policy after an outage: the latest missed tick runs once
    /// when the pool is back; the others are skipped (and counted).
    pub fn latest_due(&self, after_ms: u64, now_ms: u64) -> Option<Due> {
        let first = self.next_after(after_ms)?;
        if first > now_ms {
            return None;
        }
        let latest = self
            .cron
            .find_previous_occurrence(&self.at(now_ms)?, true)
            .ok()
            .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
            .filter(|t| *t >= first)
            .unwrap_or(first);
        let mut missed = 0;
        let mut t = first;
        while t < latest && missed < MISSED_COUNT_LIMIT {
            missed += 1;
            match self.next_after(t) {
                Some(n) => t = n,
                None => break,
            }
        }
        Some(Due {
            tick_ms: latest,
            missed,
        })
    }
}

/// A UTC time as plan ids spell it: `20261202T020000Z`, with `ms` digits when asked.
fn stamp(ms: u64, with_ms: bool) -> String {
    let t = i64::try_from(ms)
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_default();
    if with_ms {
        t.format("%Y%m%dT%H%M%S%3fZ").to_string()
    } else {
        t.format("%Y%m%dT%H%M%SZ").to_string()
    }
}

/// The plan id of `name`'s tick at `tick_ms`: `<name>-<UTC time>Z`.
pub fn tick_plan_id(name: &ScheduleName, tick_ms: u64) -> PlanId {
    format!("{name}-{}", stamp(tick_ms, false))
        .parse()
        .expect("a schedule name and a time make a plan id")
}

/// The plan id of a `baton schedule run-now` at `now_ms`: `<name>-now-<UTC time with ms>Z`
/// (never a tick's id).
pub fn run_now_plan_id(name: &ScheduleName, now_ms: u64) -> PlanId {
    format!("{name}-now-{}", stamp(now_ms, true))
        .parse()
        .expect("a schedule name and a time make a plan id")
}

/// A schedule as stored (`{p}:schedules`, field = name, value = this as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    pub name: ScheduleName,
    pub cron: String,
    /// An IANA zone name, `UTC` by default.
    pub zone: String,
    /// The plan document (checked at `add`), without `plan_id`.
    pub document: serde_json::Value,
    /// When it was added (ms, Redis clock): its first tick is after this; the firing script
    /// fires only for the definition with this stamp (one removed and added again is new).
    pub created_ms: u64,
}

impl ScheduleDef {
    /// Its cron in its zone.
    ///
    /// # Errors
    /// A stored definition that no longer parses (written by hand, or by another version).
    pub fn spec(&self) -> Result<CronSpec, String> {
        CronSpec::parse(&self.cron, &self.zone)
    }
}

/// What the last firing of a schedule recorded (`{p}:schedule_fired`, and for run-now
/// `{p}:schedule_runs`), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The tick fired (ms); for a run-now, when it was asked.
    pub tick_ms: u64,
    pub plan_id: PlanId,
    /// Due ticks skipped before this one (the outage policy).
    #[serde(default)]
    pub missed: u64,
    /// When it was submitted (ms, Redis clock): `fired_ms - tick_ms` is the tick's lateness.
    /// Last: the firing script writes it after the rest.
    pub fired_ms: u64,
}
