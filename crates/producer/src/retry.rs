//! `baton retry PLAN`: put a failed plan back in service from its failed task.

use baton_core::{scripts, Event, EventKind, PlanId};
use redis::Value;

use crate::{Ctx, Failure};

/// Put a failed plan (a task that failed for good, a poison task, a spent budget) back in
/// service: its failed task runs again, then the rest. Raise the budget first with a follow-up
/// document carrying new options if that is why it stopped.
#[derive(clap::Args, Debug)]
pub(crate) struct Retry {
    /// The plan id.
    plan: PlanId,
}

impl Retry {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let k = &ctx.keys;
        let p = &self.plan;
        let mut conn = ctx.conn().await?;
        let event = Event::new(EventKind::PlanAccepted, Some(p.as_str())).with("status", "retried");
        let v: Vec<Value> = scripts::RETRY
            .key(k.plan(p))
            .key(k.tasks(p))
            .key(k.events(p))
            .arg(baton_core::time::now_rfc3339())
            .arg(event.to_json())
            .arg(k.channel())
            .arg(baton_core::keys::DEFAULT_EVENT_CAP)
            .arg(baton_core::keys::DEFAULT_RETENTION_SECS)
            .invoke_async(&mut conn)
            .await?;
        let words = crate::reply_words(&v);
        let word = |i: usize| words.get(i).cloned().unwrap_or_default();
        match word(0).as_str() {
            "ok" => {
                if word(1) == "1" {
                    // Front of the line: the user is waiting for it.
                    let _: i64 = redis::cmd("RPUSH")
                        .arg(k.ready())
                        .arg(p.as_str())
                        .query_async(&mut conn)
                        .await?;
                }
                println!("plan {p} is back in service");
                Ok(())
            }
            _ if word(1) == "missing" => Err(Failure::BadInput(format!("no plan {p}"))),
            _ => Err(Failure::BadInput(format!(
                "plan {p} is {}, not failed; only a failed plan can be retried",
                word(1)
            ))),
        }
    }
}
