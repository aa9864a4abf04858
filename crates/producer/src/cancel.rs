//! `baton cancel PLAN`: end a plan.

use baton_core::{scripts, Event, EventKind, PlanId};
use redis::Value;

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
        let k = &ctx.keys;
        let p = &self.plan;
        let mut conn = ctx.conn().await?;
        let event = Event::new(EventKind::PlanCancelled, Some(p.as_str()))
            .with("reason", self.reason.clone());
        let v: Vec<Value> = scripts::CANCEL
            .key(k.plan(p))
            .key(k.events(p))
            .arg(baton_core::time::now_rfc3339())
            .arg(event.to_json())
            .arg(k.channel())
            .arg(baton_core::keys::DEFAULT_EVENT_CAP)
            .arg(baton_core::keys::DEFAULT_RETENTION_SECS)
            .arg(&self.reason)
            .invoke_async(&mut conn)
            .await?;
        let words = crate::reply_words(&v);
        let word = |i: usize| words.get(i).cloned().unwrap_or_default();
        match (word(0).as_str(), word(1).as_str()) {
            ("ok", _) => {
                println!("plan {p} cancelled");
                Ok(())
            }
            (_, "missing") => Err(Failure::BadInput(format!("no plan {p}"))),
            (_, state) => Err(Failure::BadInput(format!("plan {p} is already {state}"))),
        }
    }
}
