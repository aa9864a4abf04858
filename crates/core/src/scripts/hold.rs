//! Holding a plan: taking its lease with its next task (`acquire.lua`), renewing it
//! (`renew.lua`), giving it back (`release.lua`), all in the plan's slot; and taking the plan
//! off the worker's in-flight list (`unclaim.lua`, pool slot).

use std::time::Duration;

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::{text, Env, ScriptCall, Words, ACQUIRE, CLAIM, RELEASE, RENEW, UNCLAIM};
use crate::counters::PlanTotals;
use crate::event::{Bare, Event, EventBody};
use crate::ids::{PlanId, WorkerId};
use crate::plan_hash::PlanHash;
use crate::records::{SessionRecord, StoredTask};
use crate::vocab::{Priority, Requeue};

/// What the holder of a plan needs to run its next task.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub task: StoredTask,
    /// The task's JSON exactly as stored: the commit compares it to check the head is unchanged.
    pub raw: String,
    /// The committed session record; `None` when there is none (first task, expired) or it
    /// does not read.
    pub session: Option<SessionRecord>,
    /// The plan fields a holder reads: options, cost so far, workspace, last session id.
    pub plan: PlanHash,
}

impl Head {
    /// Reads a head from `{task JSON, session JSON or '', field, value, ...}`.
    pub(crate) fn from_words(v: &[Value]) -> Result<Self, ParsingError> {
        let raw = v.first().map(text).unwrap_or_default();
        let task: StoredTask = serde_json::from_str(&raw)
            .map_err(|e| ParsingError::from(format!("stored task is not valid: {e}")))?;
        let session = v
            .get(1)
            .map(text)
            .and_then(|s| serde_json::from_str(&s).ok());
        let fields: Vec<String> = v.iter().skip(2).map(text).collect();
        let plan = PlanHash::from_pairs(fields.chunks_exact(2).map(|kv| (&kv[0], &kv[1])));
        Ok(Self {
            task,
            raw,
            session,
            plan,
        })
    }
}

/// The lease value: `<worker>/<token>`, fresh for every hold, so a stale holder of the same
/// worker cannot pass for the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockValue(String);

impl LockValue {
    /// A new value for `worker`.
    pub fn new(worker: &WorkerId) -> Self {
        Self(format!("{worker}/{}", uuid::Uuid::new_v4().simple()))
    }

    /// The value as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `acquire.lua`: takes the lease (`SET NX PX`) and reads the next task.
#[derive(Debug)]
pub struct Acquire<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
    pub lease: Duration,
    pub worker: &'a WorkerId,
    /// A new root `traceparent`, kept as the plan's `trace` only if it has none yet (a worker
    /// that exports traces; `None` otherwise).
    pub trace: Option<&'a str>,
}

/// The reply of `acquire.lua`.
#[derive(Debug, Clone, PartialEq)]
pub enum AcquireReply {
    /// The lease is ours; here is the next task.
    Acquired(Box<Head>),
    /// Another worker holds it.
    Busy,
    /// Nothing to run (no tasks, or the plan is not runnable); the lease was not kept.
    Idle,
    /// Not to be claimed before `at_ms` (ms since the epoch, server clock); the lease was not
    /// kept, and the plan stays scheduled: the holder puts it in the delayed set.
    Later { at_ms: u64, priority: Priority },
}

impl ScriptCall for Acquire<'_> {
    type Reply = AcquireReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = ACQUIRE.prepare_invoke();
        inv.key(k.lock(self.plan))
            .key(k.plan(self.plan))
            .key(k.tasks(self.plan))
            .key(k.session(self.plan))
            .key(k.events(self.plan))
            .arg(self.lock.as_str())
            .arg(millis(self.lease))
            .arg(crate::time::now_rfc3339())
            .arg(self.worker.as_str())
            .arg(k.channel())
            .arg(env.event_cap)
            .arg(self.trace.unwrap_or(""))
            .arg(
                Event::new(Some(self.plan), EventBody::PlanResumed(Bare {}))
                    .worker(self.worker)
                    .to_json(),
            );
        inv
    }
}

impl FromRedisValue for AcquireReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Acquired(Box::new(Head::from_words(w.rest(1))?))),
            "busy" => Ok(Self::Busy),
            "idle" => Ok(Self::Idle),
            "later" => Ok(Self::Later {
                at_ms: w.num(1),
                priority: w.text(2).parse().unwrap_or_default(),
            }),
            _ => Err(w.unexpected("acquire")),
        }
    }
}

/// `claim.lua`: a slot's claim of the next plan, by priority (pool slot). Sent right after a
/// blocking pop of the wake token, in the same pipeline.
#[derive(Debug)]
pub struct Claim<'a> {
    pub worker: &'a WorkerId,
}

/// The reply of `claim.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimReply {
    /// This plan id (as stored) is now on the worker's in-flight list.
    Claimed(Vec<u8>),
    /// The pool is paused: for this long, or (`None`) until a user resumes it.
    Paused(Option<Duration>),
    /// No plan is waiting.
    Empty,
}

impl ScriptCall for Claim<'_> {
    type Reply = ClaimReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = CLAIM.prepare_invoke();
        for list in k.ready_lists() {
            inv.key(list);
        }
        inv.key(k.wake())
            .key(k.inflight(self.worker))
            .key(k.pause())
            .key(k.delayed())
            .key(k.claim_seq())
            .key(k.plan_keys())
            .key(k.limits())
            .key(k.key_base())
            .key(k.concurrency_keys());
        inv
    }
}

impl FromRedisValue for ClaimReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Claimed(match w.rest(1).first() {
                Some(Value::BulkString(b)) => b.clone(),
                other => other.map(text).unwrap_or_default().into_bytes(),
            })),
            "paused" => {
                let ms: i64 = w.text(1).parse().unwrap_or(-1);
                Ok(Self::Paused(
                    u64::try_from(ms).ok().map(Duration::from_millis),
                ))
            }
            "none" => Ok(Self::Empty),
            _ => Err(w.unexpected("claim")),
        }
    }
}

/// `renew.lua`: extends the lease if it is still ours.
#[derive(Debug)]
pub struct Renew<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
    pub lease: Duration,
}

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// Still ours, but the running task must stop: the plan was cancelled, or paused with
    /// `--now`.
    StopTask,
    /// Expired or taken by another worker.
    Lost,
}

impl ScriptCall for Renew<'_> {
    type Reply = Renewal;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = RENEW.prepare_invoke();
        inv.key(env.keys.lock(self.plan))
            .key(env.keys.plan(self.plan))
            .arg(self.lock.as_str())
            .arg(millis(self.lease));
        inv
    }
}

impl FromRedisValue for Renewal {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(v)? {
            1 => Self::Renewed,
            2 => Self::StopTask,
            _ => Self::Lost,
        })
    }
}

/// `release.lua`: gives the lease back.
#[derive(Debug)]
pub struct Release<'a> {
    pub plan: &'a PlanId,
    pub lock: &'a LockValue,
}

/// The reply of `release.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Tasks are left: the plan needs a worker again.
    TasksLeft,
    /// Nothing left to run.
    Idle,
    /// The lease was not ours (any more).
    NotOurs,
}

impl ScriptCall for Release<'_> {
    type Reply = Released;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = RELEASE.prepare_invoke();
        inv.key(k.lock(self.plan))
            .key(k.plan(self.plan))
            .key(k.tasks(self.plan))
            .arg(self.lock.as_str())
            .arg(crate::time::now_rfc3339());
        inv
    }
}

impl FromRedisValue for Released {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        Ok(match i64::from_redis_value(v)? {
            1 => Self::TasksLeft,
            0 => Self::Idle,
            _ => Self::NotOurs,
        })
    }
}

/// `unclaim.lua`: takes the plan off the worker's in-flight list, requeues it where asked,
/// and adds the hold's pool-wide counters.
#[derive(Debug)]
pub struct Unclaim<'a> {
    pub worker: &'a WorkerId,
    pub plan: &'a PlanId,
    pub requeue: Requeue,
    /// Which ready list it goes back to.
    pub priority: Priority,
    /// For [`Requeue::Later`]: claimed again from this time (ms since the epoch, server
    /// clock; 0: none) ...
    pub not_before_ms: u64,
    /// ... and not before this long after now (server clock).
    pub delay: Duration,
    /// The plan's counter totals, brought into the pool's counters on the way.
    pub totals: &'a PlanTotals,
}

impl ScriptCall for Unclaim<'_> {
    type Reply = ();

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = UNCLAIM.prepare_invoke();
        inv.key(k.inflight(self.worker))
            .key(k.ready())
            .key(k.stats())
            .key(k.this_minute())
            .key(k.stats_seen())
            .key(k.plans())
            .key(k.ready_for(Priority::High))
            .key(k.ready_for(Priority::Low))
            .key(k.wake())
            .key(k.delayed())
            .key(k.plan_keys())
            .key(k.limits())
            .key(k.key_base())
            .arg(self.plan.as_str())
            .arg(self.requeue.as_str())
            .arg(crate::time::now_millis())
            .arg(self.priority.as_str())
            .arg(self.not_before_ms)
            .arg(millis(self.delay));
        for (name, total) in self.totals.args() {
            inv.arg(name).arg(total);
        }
        inv
    }
}

/// A duration in whole milliseconds, as `PX` takes it (saturating: leases are seconds long).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
