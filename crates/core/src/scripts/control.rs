//! What users do to a plan or the pool. Run by `baton` directly, when only the plan changes:
//! cancel (`cancel.lua`) and pause (`pause.lua`); the pool pause (`pool_pause.lua`). Applied by
//! a worker's ingest from an action document, when the plan must also be scheduled (which is
//! the pool's slot, so no one script can do both): retry, resume, approve and reject. Each is
//! applied once per document (its tag), and keeps the retention and event cap the plan was
//! created with.

use redis::{FromRedisValue, ParsingError, Script, ScriptInvocation, Value};

use super::{Env, ScriptCall, Words, APPROVE, CANCEL, PAUSE, POOL_PAUSE, REJECT, RESUME, RETRY};
use crate::event::Event;
use crate::ids::PlanId;
use crate::vocab::{PlanState, Priority};

/// Why a plan refused an action: its state (`None`: there is no such plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub Option<PlanState>);

/// The reply of a control `baton` runs directly (cancel, pause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlReply {
    Applied,
    Refused(Refused),
}

/// `cancel.lua`: ends a plan; its running task is stopped at the holder's next renewal.
#[derive(Debug)]
pub struct Cancel<'a> {
    pub plan: &'a PlanId,
    pub reason: &'a str,
    /// `plan_cancelled`.
    pub event: &'a Event,
}

impl ScriptCall for Cancel<'_> {
    type Reply = ControlReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = CANCEL.prepare_invoke();
        inv.key(env.keys.plan(self.plan))
            .key(env.keys.events(self.plan))
            .arg(crate::time::now_rfc3339())
            .arg(self.event.to_json())
            .arg(env.keys.channel())
            .arg(env.event_cap)
            .arg(env.retention_secs)
            .arg(self.reason);
        inv
    }
}

/// `pause.lua`: a queued or running plan runs nothing more until resumed; with `now`, its
/// running task is stopped at the holder's next renewal (and runs again on resume).
#[derive(Debug)]
pub struct Pause<'a> {
    pub plan: &'a PlanId,
    pub reason: &'a str,
    pub now: bool,
    /// `plan_paused`.
    pub event: &'a Event,
}

impl ScriptCall for Pause<'_> {
    type Reply = ControlReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = PAUSE.prepare_invoke();
        inv.key(env.keys.plan(self.plan))
            .key(env.keys.events(self.plan))
            .arg(crate::time::now_rfc3339())
            .arg(self.event.to_json())
            .arg(env.keys.channel())
            .arg(env.event_cap)
            .arg(env.retention_secs)
            .arg(self.reason)
            .arg(if self.now { "1" } else { "0" });
        inv
    }
}

/// `pool_pause.lua`: the whole pool stops claiming (`pause`), or claims again.
#[derive(Debug)]
pub struct PoolPause<'a> {
    pub pause: bool,
    pub reason: &'a str,
    /// `pool_paused` or `pool_resumed`.
    pub event: &'a Event,
}

impl ScriptCall for PoolPause<'_> {
    /// False when a resume found no user pause standing.
    type Reply = bool;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = POOL_PAUSE.prepare_invoke();
        inv.key(env.keys.pause())
            .arg(if self.pause { "1" } else { "0" })
            .arg(self.reason)
            .arg(self.event.to_json())
            .arg(env.keys.channel());
        inv
    }
}

/// The reply of an action applied by ingest (retry, resume, approve, reject).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActionReply {
    /// Applied; `schedule`: the plan must go on the ready list for its priority;
    /// `completed`: this completed the plan (an approval of its last task).
    Applied {
        schedule: bool,
        priority: Priority,
        completed: bool,
    },
    /// This document was applied before; `schedule` as for a re-ingested plan document.
    Duplicate {
        schedule: bool,
        priority: Priority,
    },
    Refused(Refused),
    /// A raised budget (`budget.lua`) that is not above what the plan has spent (USD).
    NotAboveSpent(f64),
}

/// `retry.lua`: puts a failed plan back in service from its failed task, once per document.
#[derive(Debug)]
pub struct Retry<'a> {
    pub plan: &'a PlanId,
    /// The action document's submission tag (idempotence).
    pub tag: &'a str,
    /// `plan_accepted` with status `retried`.
    pub event: &'a Event,
}

impl ScriptCall for Retry<'_> {
    type Reply = ActionReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        action_invocation(&RETRY, env, self.plan, self.tag, self.event)
    }
}

/// `resume.lua`: a paused plan runs again; its session's TTL starts again.
#[derive(Debug)]
pub struct Resume<'a> {
    pub plan: &'a PlanId,
    pub tag: &'a str,
    /// `plan_resumed`.
    pub event: &'a Event,
    /// The pool's `--session-ttl`, for a plan without its own.
    pub session_ttl_secs: u64,
}

impl ScriptCall for Resume<'_> {
    type Reply = ActionReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        resuming(&RESUME, self, env)
    }
}

/// The keys and arguments of a script that resumes a plan in its conversation (`resume.lua`,
/// and `budget.lua`, which takes its own arguments after these).
pub(super) fn resuming(
    script: &'static Script,
    r: &Resume<'_>,
    env: &Env,
) -> ScriptInvocation<'static> {
    let k = &env.keys;
    let mut inv = script.prepare_invoke();
    inv.key(k.plan(r.plan))
        .key(k.events(r.plan))
        .key(k.ingested(r.plan))
        .key(k.session(r.plan))
        .key(k.transcript(r.plan))
        .key(k.transcript_chunks(r.plan))
        .arg(r.tag)
        .arg(crate::time::now_rfc3339())
        .arg(r.event.to_json())
        .arg(k.channel())
        .arg(env.event_cap)
        .arg(env.retention_secs)
        .arg(r.session_ttl_secs);
    inv
}

/// `approve.lua`: a plan awaiting review goes on (or completes, when no task is left); the
/// note, if any, is put before the next task's prompt.
#[derive(Debug)]
pub struct Approve<'a> {
    pub plan: &'a PlanId,
    pub tag: &'a str,
    pub note: Option<&'a str>,
    /// `review_approved`.
    pub event: &'a Event,
    /// `plan_completed`, sent when no task is left.
    pub completed: &'a Event,
    /// The pool's `--session-ttl`, for a plan without its own.
    pub session_ttl_secs: u64,
}

impl ScriptCall for Approve<'_> {
    type Reply = ActionReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = action_invocation(&APPROVE, env, self.plan, self.tag, self.event);
        session_keys(&mut inv, env, self.plan);
        inv.arg(self.note.unwrap_or(""))
            .arg(self.completed.to_json())
            .arg(self.session_ttl_secs);
        inv
    }
}

/// `reject.lua`: the task under review runs again as a new turn whose prompt is the note,
/// from the files it started from (its checkpoint is rewound); the conversation keeps the
/// rejected turn.
#[derive(Debug)]
pub struct Reject<'a> {
    pub plan: &'a PlanId,
    pub tag: &'a str,
    pub note: &'a str,
    /// `review_rejected`.
    pub event: &'a Event,
    /// The pool's `--session-ttl`, for a plan without its own.
    pub session_ttl_secs: u64,
}

impl ScriptCall for Reject<'_> {
    type Reply = ActionReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let mut inv = action_invocation(&REJECT, env, self.plan, self.tag, self.event);
        session_keys(&mut inv, env, self.plan);
        inv.arg(self.note).arg(self.session_ttl_secs);
        inv
    }
}

/// What `retry.lua`, `approve.lua` and `reject.lua` take first. KEYS: plan, tasks, events,
/// ingested. ARGV: tag, now, event JSON, channel, default event cap, default retention.
fn action_invocation(
    script: &'static Script,
    env: &Env,
    plan: &PlanId,
    tag: &str,
    event: &Event,
) -> ScriptInvocation<'static> {
    let k = &env.keys;
    let mut inv = script.prepare_invoke();
    inv.key(k.plan(plan))
        .key(k.tasks(plan))
        .key(k.events(plan))
        .key(k.ingested(plan))
        .arg(tag)
        .arg(crate::time::now_rfc3339())
        .arg(event.to_json())
        .arg(k.channel())
        .arg(env.event_cap)
        .arg(env.retention_secs);
    inv
}

/// The plan's session keys (record, transcript base, chunks), for scripts that restart their TTL.
fn session_keys(inv: &mut ScriptInvocation<'static>, env: &Env, plan: &PlanId) {
    inv.key(env.keys.session(plan))
        .key(env.keys.transcript(plan))
        .key(env.keys.transcript_chunks(plan));
}

fn refused(w: &Words) -> Refused {
    Refused(w.text(1).parse().ok())
}

impl FromRedisValue for ActionReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        let schedule = w.num(1) == 1;
        let priority = w.text(2).parse().unwrap_or_default();
        match w.text(0).as_str() {
            "ok" => Ok(Self::Applied {
                schedule,
                priority,
                completed: w.num(3) == 1,
            }),
            "duplicate" => Ok(Self::Duplicate { schedule, priority }),
            "err" => Ok(Self::Refused(refused(&w))),
            "low" => Ok(Self::NotAboveSpent(w.text(1).parse().unwrap_or(0.0))),
            _ => Err(w.unexpected("action")),
        }
    }
}

impl FromRedisValue for ControlReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Applied),
            "err" => Ok(Self::Refused(refused(&w))),
            _ => Err(w.unexpected("control")),
        }
    }
}
