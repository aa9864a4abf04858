//! `baton cancel PLAN`: end a plan.

use baton_connect::SharedConn;
use baton_core::event::{EventBody, PlanStopped};
use baton_core::scripts::control::{Cancel as CancelScript, ControlReply, Refused};
use baton_core::scripts::{Env, ScriptCall};
use baton_core::{Event, PlanId};

use crate::{Ctx, Failure};

/// End a plan: it runs no more tasks. A task running now is stopped (its CLI is terminated)
/// within a third of the workers' lease. Publishes `plan_cancelled` with the reason.
#[derive(clap::Args, Debug)]
pub(crate) struct Cancel {
    /// The plan id.
    plan: PlanId,
    /// Why, for the event and `baton status`.
    #[arg(long, default_value = "cancelled by user")]
    reason: String,
}

impl Cancel {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let p = &self.plan;
        cancel(&mut ctx.conn().await?, &ctx.env, p, &self.reason).await?;
        println!("plan {p} cancelled");
        Ok(())
    }
}

/// Cancels plan `p` with `reason` (also the dashboard's button).
pub(crate) async fn cancel(
    conn: &mut SharedConn,
    env: &Env,
    p: &PlanId,
    reason: &str,
) -> Result<(), Failure> {
    let event = Event::new(
        Some(p),
        EventBody::PlanCancelled(PlanStopped {
            reason: reason.to_owned(),
        }),
    );
    let call = CancelScript {
        plan: p,
        reason,
        event: &event,
    };
    let reply: ControlReply = call.invocation(env).invoke_async(conn).await?;
    match reply {
        ControlReply::Applied => Ok(()),
        ControlReply::Refused(Refused(None)) => Err(Failure::BadInput(format!(
            "no plan {p} (never submitted, or past its retention)"
        ))),
        ControlReply::Refused(Refused(Some(state))) => {
            Err(Failure::BadInput(format!("plan {p} is already {state}")))
        }
    }
}
