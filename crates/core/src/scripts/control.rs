//! What users do to a plan: cancel it (`cancel.lua`, run by `baton cancel` directly) and put a
//! failed one back in service (`retry.lua`, applied by a worker's ingest from an action
//! document, so that it is applied once and the plan is scheduled in the same ingest). Both
//! keep the retention and event cap the plan was created with.

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::{Env, ScriptCall, Words, CANCEL, RETRY};
use crate::event::Event;
use crate::ids::PlanId;
use crate::vocab::PlanState;

/// `cancel.lua`: ends a plan; its running task is stopped at the holder's next renewal.
#[derive(Debug)]
pub struct Cancel<'a> {
    pub plan: &'a PlanId,
    pub reason: &'a str,
    /// `plan_cancelled`.
    pub event: &'a Event,
}

/// Why a plan refused an action: its state (`None`: there is no such plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub Option<PlanState>);

/// The reply of `cancel.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReply {
    Cancelled,
    Refused(Refused),
}

impl ScriptCall for Cancel<'_> {
    type Reply = CancelReply;

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

/// `retry.lua`: puts a failed plan back in service from its failed task, once per document.
#[derive(Debug)]
pub struct Retry<'a> {
    pub plan: &'a PlanId,
    /// The action document's submission tag (idempotence).
    pub tag: &'a str,
    /// `plan_accepted` with status `retried`.
    pub event: &'a Event,
}

/// The reply of `retry.lua`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReply {
    /// Back in service; `schedule`: the plan must go on the ready list.
    Retried {
        schedule: bool,
    },
    /// This document was applied before; `schedule` as for a re-ingested plan document.
    Duplicate {
        schedule: bool,
    },
    Refused(Refused),
}

impl ScriptCall for Retry<'_> {
    type Reply = RetryReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = RETRY.prepare_invoke();
        inv.key(k.plan(self.plan))
            .key(k.tasks(self.plan))
            .key(k.events(self.plan))
            .key(k.ingested(self.plan))
            .arg(self.tag)
            .arg(crate::time::now_rfc3339())
            .arg(self.event.to_json())
            .arg(k.channel())
            .arg(env.event_cap)
            .arg(env.retention_secs);
        inv
    }
}

fn refused(w: &Words) -> Refused {
    Refused(w.text(1).parse().ok())
}

impl FromRedisValue for RetryReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Retried {
                schedule: w.num(1) == 1,
            }),
            "duplicate" => Ok(Self::Duplicate {
                schedule: w.num(1) == 1,
            }),
            "err" => Ok(Self::Refused(refused(&w))),
            _ => Err(w.unexpected("retry")),
        }
    }
}

impl FromRedisValue for CancelReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Cancelled),
            "err" => Ok(Self::Refused(refused(&w))),
            _ => Err(w.unexpected("cancel")),
        }
    }
}
