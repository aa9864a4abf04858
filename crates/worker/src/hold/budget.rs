//! A keyed plan's share of its concurrency key's daily budget (`baton budget --key K
//! --per-day USD`). Before each task the hold reports what the plan has spent so far
//! (`spend.lua`, idempotent: the plan's total, not a delta) and reads the key's day; when the
//! day's budget is spent, the plan is paused on the key (`pause_key`) and waits in the delayed
//! set for the next UTC day, or for the budget raised. A task that is running when the line is
//! crossed finishes: the key's budget is checked between tasks, not by the model gateway (a
//! plan's own budget is, mid-task). The hand-back reports the last task's cost too, so a key's
//! day counts every committed task even when no further task of the plan runs.

use std::time::Duration;

use baton_core::event::{PlanBudgetExhausted, StoppedBy};
use baton_core::scripts::hold::Head;
use baton_core::scripts::limits::{KeyDay, Spend};
use baton_core::{PlanId, PlanTotals};

use super::stop::Halt;
use super::{Hold, TaskEnd};
use crate::pool::Pool;
use crate::reconnect::redis_retry;

/// Reports a keyed plan's cost total to its key's day; `None` when stopped while Redis was
/// away (the next holder reports it).
pub(super) async fn report_spend(
    pool: &Pool,
    plan: &PlanId,
    key: &str,
    total_usd: f64,
) -> Option<KeyDay> {
    let call = Spend {
        key,
        plan,
        total_usd,
    };
    redis_retry("report the key's spend", &pool.shutdown.abort, || {
        pool.store.call(&call)
    })
    .await
}

/// The cost total among a plan's counter totals.
pub(super) fn cost_of(totals: &PlanTotals) -> f64 {
    totals
        .args()
        .find(|(name, _)| *name == "cost_usd")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

/// The event of a plan paused on its key's spent day.
pub(super) fn key_spent_event(key: &str, day: &KeyDay) -> PlanBudgetExhausted {
    let budget = day.budget_usd.unwrap_or(0.0);
    let detail = format!(
        "the daily budget of {key} (${budget:.4}) is spent (${:.4} today, UTC); the plan goes on \
         the next UTC day, or when `baton budget --key {key}` raises it",
        day.spent_usd
    );
    let mut e = PlanBudgetExhausted::new(detail, StoppedBy::Worker);
    e.key = Some(key.to_owned());
    e.until_ms = Some(day.next_day_ms);
    e
}

impl Hold<'_> {
    /// Before `head`'s task: `Some(end)` when the plan's key has spent its day (the plan is
    /// paused on it and waits for the next day), `None` to run the task.
    pub(super) async fn key_budget_check(&self, head: &Head) -> Option<TaskEnd> {
        let key = head.plan.concurrency_key.as_deref()?;
        let day = report_spend(self.pool, &self.plan, key, head.plan.cost_usd).await?;
        if !day.spent() {
            return None;
        }
        let halt = Halt::KeySpent {
            key: key.to_owned(),
            day,
        };
        Some(match self.stop_plan(&head.task, halt).await {
            TaskEnd::Stopped => {
                let now = baton_core::time::now_millis();
                TaskEnd::Wait(Duration::from_millis(day.next_day_ms.saturating_sub(now)))
            }
            other => other,
        })
    }
}
