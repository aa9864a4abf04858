//! Recurring plans' scripts, both in the pool's slot: the scheduler's lease
//! (`schedule_lease.lua`) and the firing of one tick (`schedule_fire.lua`), which submits the
//! tick's document on the submit list and records the tick in one step.

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::{Env, ScriptCall, Words, SCHEDULE_FIRE, SCHEDULE_LEASE};
use crate::event::Event;
use crate::schedule::{Fired, ScheduleName};

/// `schedule_lease.lua`: takes the scheduler's lease when free, renews it when ours, or (with
/// `lease_ms` 0) gives it back when ours. Replies whether we hold it (gave it back).
#[derive(Debug)]
pub struct ScheduleLease<'a> {
    /// `<worker>/<token>`.
    pub value: &'a str,
    /// 0: give it back.
    pub lease_ms: u64,
}

impl ScriptCall for ScheduleLease<'_> {
    type Reply = bool;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = SCHEDULE_LEASE.prepare_invoke();
        inv.key(env.keys.scheduler())
            .arg(self.value)
            .arg(self.lease_ms.to_string());
        inv
    }
}

/// `schedule_fire.lua`: submits one tick's document (or a run-now's) and records it.
#[derive(Debug)]
pub struct ScheduleFire<'a> {
    pub name: &'a ScheduleName,
    /// The scheduler's lease value; `None` for a run-now (recorded apart, not fenced).
    pub lease: Option<&'a str>,
    /// The definition's `created_ms`: a schedule removed (and added again) since is not fired.
    pub created_ms: u64,
    /// The record (its `fired_ms` is set by the script, from the Redis clock).
    pub record: &'a Fired,
    /// The plan document to submit.
    pub document: &'a [u8],
    /// `schedule_fired`, published on the channel.
    pub event: &'a Event,
}

/// What a firing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// Submitted, at this time (ms, Redis clock).
    Fired(u64),
    /// The tick is not after the last one fired: already done.
    AlreadyFired,
    /// The caller does not hold the scheduler's lease.
    NotHolder,
    /// No such schedule (removed, or removed and added again).
    Gone,
}

impl ScriptCall for ScheduleFire<'_> {
    type Reply = FireOutcome;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let record = serde_json::to_string(self.record).expect("a record serializes");
        // The script appends `,"fired_ms":N}`; the record's own is dropped first.
        let head = record
            .rsplit_once(",\"fired_ms\"")
            .map(|(h, _)| h.to_owned())
            .expect("a record holds fired_ms");
        let mut inv = SCHEDULE_FIRE.prepare_invoke();
        inv.key(k.schedules())
            .key(k.schedule_fired())
            .key(k.schedule_runs())
            .key(k.scheduler())
            .key(k.submit())
            .arg(self.name.as_str())
            .arg(self.lease.unwrap_or(""))
            .arg(self.record.tick_ms)
            .arg(self.created_ms)
            .arg(self.document)
            .arg(head)
            .arg(self.event.to_json())
            .arg(k.channel());
        inv
    }
}

impl FromRedisValue for FireOutcome {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        Ok(match w.text(0).as_str() {
            "1" => Self::Fired(w.num(1)),
            "0" => Self::AlreadyFired,
            "-1" => Self::NotHolder,
            "-2" => Self::Gone,
            _ => return Err(w.unexpected("schedule_fire")),
        })
    }
}
