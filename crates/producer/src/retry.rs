//! `baton retry PLAN`: put a failed plan back in service from its failed task.
//!
//! The retry is an action document on the submit list, like any other submission: a worker's
//! ingest applies it exactly once, in the plan's own script, and schedules the plan in the same
//! ingest. (Done here, the state change and the scheduling would be two steps in two hash
//! slots, and a crash between them would leave the plan queued but on no list.)

use baton_connect::SharedConn;
use baton_core::{ActionRequest, Keys, PlanAction, PlanField, PlanId, PlanState};
use redis::AsyncCommands;

use crate::{Ctx, Failure};

/// Put a failed plan (a task that failed for good, a poison task, a spent budget) back in
/// service: its failed task runs again, then the rest. Raise the budget first with a follow-up
/// document carrying new options if that is why it stopped. A worker applies the retry; with
/// --wait, follow the plan to its end.
#[derive(clap::Args, Debug)]
pub(crate) struct Retry {
    /// The plan id.
    plan: PlanId,
    /// Follow the plan's events until it ends; exit 1 if it fails again.
    #[arg(long)]
    wait: bool,
    /// With --wait: print events as JSON lines.
    #[arg(long, requires = "wait")]
    json: bool,
}

impl Retry {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let p = &self.plan;
        check_failed(&mut ctx.conn().await?, &ctx.keys, p).await?;
        let doc = retry_document(p);
        crate::enqueue::submit(ctx, p, doc.into_bytes(), self.wait, self.json).await?;
        if !self.wait {
            println!("retry of plan {p} submitted; a worker puts it back in service");
        }
        Ok(())
    }
}

/// Submits a retry of `plan` (the dashboard's button; `baton retry` without `--wait`).
pub(crate) async fn request(
    conn: &mut SharedConn,
    keys: &Keys,
    plan: &PlanId,
) -> Result<(), Failure> {
    check_failed(conn, keys, plan).await?;
    let _: i64 = conn.lpush(keys.submit(), retry_document(plan)).await?;
    Ok(())
}

fn retry_document(plan: &PlanId) -> String {
    ActionRequest::new(plan.clone(), PlanAction::Retry).to_json()
}

/// Refuses at once a retry that is plainly wrong (the worker checks again when it applies it).
async fn check_failed(conn: &mut SharedConn, keys: &Keys, p: &PlanId) -> Result<(), Failure> {
    {
        let state: Option<String> = conn.hget(keys.plan(p), PlanField::State.as_str()).await?;
        match state.as_deref().map(str::parse::<PlanState>) {
            None => {
                return Err(Failure::BadInput(format!(
                    "no plan {p} (never submitted, or past its retention)"
                )))
            }
            Some(Ok(PlanState::Failed)) => {}
            Some(Ok(s)) => {
                return Err(Failure::BadInput(format!(
                    "plan {p} is {s}, not failed; only a failed plan can be retried"
                )))
            }
            Some(Err(e)) => return Err(Failure::Other(anyhow::anyhow!("plan {p}: {e}"))),
        }
    }
    Ok(())
}
