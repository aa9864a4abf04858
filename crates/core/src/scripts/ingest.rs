//! Ingest: a validated plan document applied to its plan (`ingest.lua`, plan slot), then the
//! document dropped from the worker's ingesting list and the plan scheduled
//! (`finish_ingest.lua`, pool slot). Two scripts, because no script spans both slots; the
//! document stays in the ingesting list until the second, and the first is idempotent per tag.
//! Before both, a plan document's workspace is claimed for its plan (`claim_workspace.lua`, pool
//! slot): a workspace another live plan holds, contains or lies in is refused before the plan is
//! written. Claiming again is a no-op, so a document handed back after a crash claims nothing new.

use redis::{FromRedisValue, ParsingError, ScriptInvocation, Value};

use super::{Env, ScriptCall, Words, CLAIM_WORKSPACE, FINISH_INGEST, INGEST};
use crate::counters::Counts;
use crate::event::Event;
use crate::ids::{PlanId, WorkerId};
use crate::plan::Workspace;
use crate::repo::RepoSpec;
use crate::vocab::{closed_enum, PlanState, Priority, Requeue};

/// `ingest.lua`: creates the plan or appends the document's tasks to it.
#[derive(Debug)]
pub struct Ingest<'a> {
    pub plan: &'a PlanId,
    /// The submission tag (idempotence).
    pub tag: &'a str,
    /// The workspace the document named, if any (a follow-up may not change it).
    pub workspace: Option<&'a Workspace>,
    /// The options (JSON) the document carried, if any.
    pub options_json: Option<&'a str>,
    /// The tasks, as a JSON array of `{id, type?, prompt}`.
    pub tasks_json: &'a str,
    /// `plan_accepted`, without the fields the script adds.
    pub accepted: &'a Event,
    /// The plan's repository (branch resolved), if the document named one.
    pub repo: Option<&'a RepoSpec>,
    /// The options' `not_before`, in ms since the epoch.
    pub not_before_ms: Option<u64>,
}

/// `claim_workspace.lua`: claims the workspace a plan document names (or the plan's own, when it
/// names none) for its plan.
#[derive(Debug)]
pub struct ClaimWorkspace<'a> {
    pub plan: &'a PlanId,
    /// The workspace the document named, if any.
    pub workspace: Option<&'a Workspace>,
}

/// The reply of `claim_workspace.lua`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceClaim {
    /// The plan holds this workspace (claimed now, or before).
    Claimed(String),
    /// The path `path`, held by the live plan `by`, is the workspace, contains it or lies in it;
    /// or (`by` is the plan itself) the plan already holds another workspace.
    Conflict { by: String, path: String },
}

impl WorkspaceClaim {
    /// Why the document is refused, for the dead letter's `workspace` field; `None` if claimed.
    pub fn problem(&self, plan: &PlanId, wanted: &str) -> Option<String> {
        let Self::Conflict { by, path } = self else {
            return None;
        };
        Some(if by == plan.as_str() {
            format!("differs from the existing plan's workspace \"{path}\"")
        } else if path == wanted {
            format!("\"{wanted}\" is the workspace of plan {by}, which still exists; a workspace belongs to one plan until that plan expires")
        } else if wanted.starts_with(&format!("{path}/")) {
            format!("\"{wanted}\" is inside \"{path}\", the workspace of plan {by}, which still exists; plans' workspaces may not nest")
        } else if path.starts_with(&format!("{wanted}/")) {
            format!("\"{wanted}\" contains \"{path}\", the workspace of plan {by}, which still exists; plans' workspaces may not nest")
        } else {
            format!("\"{wanted}\" and \"{path}\", the workspace of plan {by}, which still exists, share the CLI's transcript folder (it makes every character that is not a letter or digit '-'): choose a name that differs in a letter or digit")
        })
    }
}

impl ScriptCall for ClaimWorkspace<'_> {
    type Reply = WorkspaceClaim;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let mut inv = CLAIM_WORKSPACE.prepare_invoke();
        inv.key(k.workspace_owners())
            .key(k.workspace_paths())
            .key(k.plan_workspaces())
            .key(k.plans())
            .arg(self.workspace.map(Workspace::as_str).unwrap_or(""))
            .arg(self.plan.as_str())
            .arg(Workspace::for_plan(self.plan).as_str())
            .arg(crate::time::now_millis());
        inv
    }
}

impl FromRedisValue for WorkspaceClaim {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Claimed(w.text(1))),
            "err" => Ok(Self::Conflict {
                by: w.text(1),
                path: w.text(2),
            }),
            _ => Err(w.unexpected("claim_workspace")),
        }
    }
}

closed_enum! {
    /// What an ingest did to its plan.
    pub enum IngestStatus ("ingest status") {
        Created = "created",
        Appended = "appended",
        /// This document was applied before (a re-ingest after a crash).
        Duplicate = "duplicate",
    }
}

/// The reply of `ingest.lua`.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestReply {
    Applied {
        status: IngestStatus,
        first_index: u64,
        count: u64,
        /// The plan needs to go on the ready list.
        schedule: bool,
        state: Option<PlanState>,
        /// The plan's priority now (the ready list it goes to).
        priority: Priority,
        /// The plan's concurrency key (`None`: it has none).
        concurrency_key: Option<String>,
    },
    /// The plan's current state refuses the document: the field at fault and why.
    Refused { field: String, problem: String },
}

impl ScriptCall for Ingest<'_> {
    type Reply = IngestReply;

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let p = self.plan;
        let mut inv = INGEST.prepare_invoke();
        inv.key(k.plan(p))
            .key(k.tasks(p))
            .key(k.task_ids(p))
            .key(k.ingested(p))
            .key(k.events(p))
            .arg(self.tag)
            .arg(p.as_str())
            .arg(self.workspace.map(Workspace::as_str).unwrap_or(""))
            .arg(Workspace::for_plan(p).as_str())
            .arg(self.options_json.unwrap_or(""))
            .arg(self.tasks_json)
            .arg(crate::time::now_rfc3339())
            .arg(env.retention_secs)
            .arg(self.accepted.to_json())
            .arg(k.channel())
            .arg(env.event_cap)
            .arg(
                self.repo
                    .map(|r| serde_json::to_string(r).expect("repo specs serialize"))
                    .unwrap_or_default(),
            )
            .arg(
                self.not_before_ms
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            );
        inv
    }
}

impl FromRedisValue for IngestReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let w = Words::of(v)?;
        match w.text(0).as_str() {
            "ok" => Ok(Self::Applied {
                status: w
                    .text(1)
                    .parse()
                    .map_err(|e| ParsingError::from(format!("{e}")))?,
                first_index: w.num(2),
                count: w.num(3),
                schedule: w.num(4) == 1,
                state: w.text(5).parse().ok(),
                priority: w.text(6).parse().unwrap_or_default(),
                concurrency_key: Some(w.text(7)).filter(|k| !k.is_empty()),
            }),
            "err" => Ok(Self::Refused {
                field: w.text(1),
                problem: w.text(2),
            }),
            _ => Err(w.unexpected("ingest")),
        }
    }
}

/// `finish_ingest.lua`: drops the document from the worker's ingesting list, adds the pool
/// counters, and puts the plan on the ready list where asked.
#[derive(Debug)]
pub struct FinishIngest<'a> {
    pub worker: &'a WorkerId,
    /// The entry exactly as it stands in the ingesting list.
    pub entry: &'a [u8],
    /// The plan and where it goes ([`Requeue::Drop`]: not scheduled).
    pub plan: Option<(&'a PlanId, Requeue)>,
    /// The ready list it goes to.
    pub priority: Priority,
    pub counts: &'a Counts,
    /// For a plan document: the plan's concurrency key (`Some("")`: none), kept where
    /// `claim.lua` reads it. `None` (an action) leaves it as it is.
    pub concurrency_key: Option<&'a str>,
}

impl ScriptCall for FinishIngest<'_> {
    type Reply = ();

    fn invocation(&self, env: &Env) -> ScriptInvocation<'static> {
        let k = &env.keys;
        let (plan, requeue) = match self.plan {
            Some((p, r)) => (p.as_str(), r),
            None => ("", Requeue::Drop),
        };
        let mut inv = FINISH_INGEST.prepare_invoke();
        inv.key(k.ingesting(self.worker))
            .key(k.ready())
            .key(k.stats())
            .key(k.this_minute())
            .key(k.plans())
            .key(k.stats_seen())
            .key(k.ready_for(Priority::High))
            .key(k.ready_for(Priority::Low))
            .key(k.wake())
            .key(k.plan_keys())
            .arg(self.entry)
            .arg(plan)
            .arg(requeue.as_str())
            .arg(crate::time::now_millis())
            // A document that created its plan (counted as accepted) starts the plan's counter
            // totals afresh: what the pool added for an expired plan of that id is forgotten.
            .arg(u8::from(
                self.counts
                    .ints()
                    .iter()
                    .any(|(c, _)| *c == crate::Counter::PlansAccepted),
            ))
            .arg(self.priority.as_str())
            .arg(match self.concurrency_key {
                None => "-",
                Some(k) => k,
            });
        for (name, n) in self.counts.args() {
            inv.arg(name).arg(n);
        }
        inv
    }
}
