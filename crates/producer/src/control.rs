//! `baton pause`, `resume`, `approve` and `reject`: steering plans that are under way.
//!
//! A pause changes only the plan (its state, in `pause.lua`), so `baton` runs it directly. A
//! resume, approval or rejection must also schedule the plan, which is the pool's hash slot:
//! like a retry, it is an action document a worker's ingest applies exactly once (see
//! `retry.rs`). `--all` pauses the pool itself: no worker claims anything until `resume --all`.

use baton_connect::SharedConn;
use baton_core::event::{Actor, PlanPaused, PoolPaused, PoolResumed};
use baton_core::scripts::control::{ControlReply, Pause as PauseScript, PoolPause, Refused};
use baton_core::scripts::{Env, ScriptCall};
use baton_core::{ActionRequest, Event, Keys, PlanAction, PlanField, PlanId, PlanState};
use redis::AsyncCommands;

use crate::{Ctx, Failure};

/// Pause a plan: the task running now finishes (with --now it is stopped, and runs again from
/// its checkpoint on resume), then the plan runs nothing until `baton resume`. With --all,
/// pause the whole pool instead: workers claim nothing, and each hold hands its plan back
/// after the task it is running.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["plan", "all"])))]
pub(crate) struct Pause {
    /// The plan id.
    plan: Option<PlanId>,
    /// Pause the whole pool.
    #[arg(long, conflicts_with = "now")]
    all: bool,
    /// Stop the running task too (within a third of the workers' lease).
    #[arg(long)]
    now: bool,
    /// Why, for the event and `baton status`.
    #[arg(long, default_value = "paused by user")]
    reason: String,
}

impl Pause {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let mut conn = ctx.conn().await?;
        let Some(p) = &self.plan else {
            let event = Event::new(
                None,
                PoolPaused {
                    reason: self.reason.clone(),
                    retry_after_ms: None,
                    until_ms: None,
                    by: Some(Actor::User),
                },
            );
            let call = PoolPause {
                pause: true,
                reason: &self.reason,
                event: &event,
            };
            let _: bool = call.invocation(&ctx.env).invoke_async(&mut conn).await?;
            println!("pool paused: workers claim nothing until `baton resume --all`");
            return Ok(());
        };
        pause(&mut conn, &ctx.env, p, &self.reason, self.now).await?;
        if self.now {
            println!("plan {p} paused; its running task (if any) is being stopped");
        } else {
            println!("plan {p} paused; the task running now (if any) finishes first");
        }
        Ok(())
    }
}

/// Pauses plan `p` (also the dashboard's button).
pub(crate) async fn pause(
    conn: &mut SharedConn,
    env: &Env,
    p: &PlanId,
    reason: &str,
    now: bool,
) -> Result<(), Failure> {
    let event = Event::new(
        Some(p),
        PlanPaused {
            reason: reason.to_owned(),
            now,
        },
    );
    let call = PauseScript {
        plan: p,
        reason,
        now,
        event: &event,
    };
    let reply: ControlReply = call.invocation(env).invoke_async(conn).await?;
    match reply {
        ControlReply::Applied => Ok(()),
        ControlReply::Refused(Refused(None)) => Err(no_plan(p)),
        ControlReply::Refused(Refused(Some(state))) => Err(Failure::BadInput(format!(
            "plan {p} is {state}; only a queued or running plan can be paused"
        ))),
    }
}

/// Resume a paused plan (it goes first in its line; a session that expired meanwhile falls
/// back to a new one with a recap). With --all, let the pool claim again after `pause --all`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["plan", "all"])))]
pub(crate) struct Resume {
    /// The plan id.
    plan: Option<PlanId>,
    /// Resume the whole pool.
    #[arg(long, conflicts_with_all = ["wait", "json"])]
    all: bool,
    /// Follow the plan's events until it ends or waits for a review; exit 1 if it fails.
    #[arg(long)]
    wait: bool,
    /// With --wait: print events as JSON lines.
    #[arg(long, requires = "wait")]
    json: bool,
}

impl Resume {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Some(p) = &self.plan else {
            let mut conn = ctx.conn().await?;
            let event = Event::new(None, PoolResumed { by: Actor::User });
            let call = PoolPause {
                pause: false,
                reason: "",
                event: &event,
            };
            let changed: bool = call.invocation(&ctx.env).invoke_async(&mut conn).await?;
            if changed {
                println!("pool resumed: workers claim again");
            } else {
                println!("the pool was not paused by a user; nothing to do");
            }
            return Ok(());
        };
        let action = ActionRequest::new(p.clone(), PlanAction::Resume);
        act(ctx, action, self.wait, self.json).await?;
        if !self.wait {
            println!("resume of plan {p} submitted; a worker puts it back in line");
        }
        Ok(())
    }
}

/// Approve the task a plan waits on for review: the plan goes on with its next task (or
/// completes). A note is put before the next task's prompt.
#[derive(clap::Args, Debug)]
pub(crate) struct Approve {
    /// The plan id.
    plan: PlanId,
    /// A note for the model, put before the next task's prompt.
    #[arg(long)]
    note: Option<String>,
    /// Follow the plan's events until it ends or waits for a review again.
    #[arg(long)]
    wait: bool,
    /// With --wait: print events as JSON lines.
    #[arg(long, requires = "wait")]
    json: bool,
}

impl Approve {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let p = &self.plan;
        let mut action = ActionRequest::new(p.clone(), PlanAction::Approve);
        action.note = self.note;
        act(ctx, action, self.wait, self.json).await?;
        if !self.wait {
            println!("approval of plan {p} submitted");
        }
        Ok(())
    }
}

/// Reject the task a plan waits on for review: it runs again as a new turn of the same
/// conversation whose prompt is the note (with a repository, from the files it started from).
/// The rework is reviewed again.
#[derive(clap::Args, Debug)]
pub(crate) struct Reject {
    /// The plan id.
    plan: PlanId,
    /// What is wrong and what to do instead: the prompt of the rework.
    #[arg(long)]
    note: String,
    /// Follow the plan's events until it ends or waits for a review again.
    #[arg(long)]
    wait: bool,
    /// With --wait: print events as JSON lines.
    #[arg(long, requires = "wait")]
    json: bool,
}

impl Reject {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let p = &self.plan;
        let mut action = ActionRequest::new(p.clone(), PlanAction::Reject);
        action.note = Some(self.note);
        act(ctx, action, self.wait, self.json).await?;
        if !self.wait {
            println!("rejection of plan {p} submitted; the task runs again with your note");
        }
        Ok(())
    }
}

/// Checks the plan is in the state the action applies to (a worker checks again when it
/// applies it), then submits the action document; with `wait`, follows the plan.
pub(crate) async fn act(
    ctx: &Ctx,
    action: ActionRequest,
    wait: bool,
    json: bool,
) -> Result<(), Failure> {
    let doc = checked(&action)?;
    let p = &action.plan_id;
    check_state(&mut ctx.conn().await?, &ctx.keys, p, action.action).await?;
    crate::enqueue::submit(ctx, p, doc.into_bytes(), wait, json).await
}

/// Submits `action` after the same check (the dashboard's buttons).
pub(crate) async fn request(
    conn: &mut SharedConn,
    keys: &Keys,
    action: &ActionRequest,
) -> Result<(), Failure> {
    let doc = checked(action)?;
    check_state(conn, keys, &action.plan_id, action.action).await?;
    let _: i64 = conn.lpush(keys.submit(), doc).await?;
    Ok(())
}

/// The action's document, after the checks a worker makes of it (a note's size, say).
fn checked(action: &ActionRequest) -> Result<String, Failure> {
    let doc = action.to_json();
    baton_core::Document::parse(doc.as_bytes()).map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(doc)
}

async fn check_state(
    conn: &mut SharedConn,
    keys: &Keys,
    p: &PlanId,
    action: PlanAction,
) -> Result<(), Failure> {
    let state: Option<String> = conn.hget(keys.plan(p), PlanField::State.as_str()).await?;
    match state.as_deref().map(str::parse::<PlanState>).transpose() {
        Ok(Some(s)) if s == action.applies_to() => Ok(()),
        Ok(state) => Err(Failure::BadInput(action.refusal(p, state))),
        Err(e) => Err(Failure::Other(anyhow::anyhow!("plan {p}: {e}"))),
    }
}

fn no_plan(p: &PlanId) -> Failure {
    Failure::BadInput(format!(
        "no plan {p} (never submitted, or past its retention)"
    ))
}
