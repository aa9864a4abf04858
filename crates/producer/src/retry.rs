//! `baton retry PLAN`: put a failed plan back in service from its failed task.
//!
//! The retry is an action document on the submit list, like any other submission: a worker's
//! ingest applies it exactly once, in the plan's own script, and schedules the plan in the same
//! ingest. (Done here, the state change and the scheduling would be two steps in two hash
//! slots, and a crash between them would leave the plan queued but on no list.)

use baton_core::{ActionRequest, PlanAction, PlanId};

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
        let action = ActionRequest::new(p.clone(), PlanAction::Retry);
        crate::control::act(ctx, action, self.wait, self.json).await?;
        if !self.wait {
            println!("retry of plan {p} submitted; a worker puts it back in service");
        }
        Ok(())
    }
}
