//! A plan stopped on its head task, which stays first so `baton retry` resumes from it: a task
//! that failed for good (dead-lettered with each attempt's reason), or a spent budget. Written
//! in one fenced script (`fail.lua`) with the plan's events.

use baton_core::event::{EventBody, PlanBudgetExhausted, PlanStopped, StoppedBy, TaskFailed};
use baton_core::records::{DeadLetter, StoredTask};
use baton_core::scripts::task::{Fail, FailReply};
use baton_core::Counter;
use tracing::warn;

use crate::hold::lease::Interruption;
use crate::hold::{Hold, TaskEnd};
use crate::metrics::TaskOutcome;
use crate::reconnect::redis_retry;

/// Why a plan stops on its task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// The task failed for good: `task_failed`, `plan_failed`, a dead letter.
    Failed {
        reason: String,
        /// Each attempt's reason.
        attempts: Vec<String>,
    },
    /// The plan's budget is spent: `plan_budget_exhausted` with reason `budget`.
    BudgetSpent {
        detail: String,
        /// Who stopped it: `worker` (nothing was left before the task), `cli` (the CLI's own
        /// `--max-budget-usd`), `gateway` (the model gateway, mid-task).
        stopped_by: StoppedBy,
    },
    /// The plan cannot run: a plan it runs after failed (`plan_failed` only; no task ran).
    Blocked { reason: String },
}

impl Stop {
    /// A task that cannot even be tried (a poison task, an unusable workspace).
    pub(crate) fn failed_now(reason: String) -> Self {
        Self::Failed {
            attempts: vec![reason.clone()],
            reason,
        }
    }
}

impl Hold<'_> {
    /// Stops the plan on `task`.
    pub(crate) async fn stop_plan(&self, task: &StoredTask, stop: Stop) -> TaskEnd {
        let (reason, task_event, plan_event) = match &stop {
            Stop::Failed { reason, attempts } => (
                reason,
                Some(self.report.event(
                    TaskFailed {
                        reason: reason.clone(),
                        attempts: attempts.clone(),
                    },
                    task,
                )),
                self.report.event(
                    EventBody::PlanFailed(PlanStopped {
                        reason: reason.clone(),
                    }),
                    task,
                ),
            ),
            Stop::Blocked { reason } => (
                reason,
                None,
                self.report.plan_event(EventBody::PlanFailed(PlanStopped {
                    reason: reason.clone(),
                })),
            ),
            Stop::BudgetSpent { detail, stopped_by } => (
                detail,
                None,
                self.report
                    .event(PlanBudgetExhausted::new(detail.as_str(), *stopped_by), task),
            ),
        };
        let call = Fail {
            plan: &self.plan,
            lock: &self.lease.value,
            reason,
            task_event: task_event.as_ref(),
            plan_event: &plan_event,
        };
        let abort = &self.pool.shutdown.abort;
        match redis_retry("stop plan", abort, || self.pool.store.call(&call)).await {
            Some(FailReply::Failed) => self.notify(&plan_event),
            Some(FailReply::Fenced) => return TaskEnd::Interrupted(Interruption::LeaseLost),
            None => return TaskEnd::Interrupted(Interruption::Stopped),
        }
        match stop {
            Stop::Failed { reason, attempts } => {
                self.pool.metrics.task(TaskOutcome::dead_lettered);
                let letter = DeadLetter::task(&self.plan, &task.id, &reason, attempts);
                let _ = redis_retry("dead letter", abort, || {
                    self.pool.store.dead_letter(&letter)
                })
                .await;
                self.report
                    .count(&[(Counter::TasksFailed, 1), (Counter::PlansFailed, 1)])
                    .await;
                warn!(plan = %self.plan, task = %task.id, reason, "plan failed");
            }
            Stop::Blocked { reason } => {
                self.report.count(&[(Counter::PlansFailed, 1)]).await;
                warn!(plan = %self.plan, reason, "plan failed");
            }
            Stop::BudgetSpent { detail, .. } => {
                self.report
                    .count(&[(Counter::PlansBudgetExhausted, 1)])
                    .await;
                warn!(plan = %self.plan, task = %task.id, detail, "plan stopped: budget spent");
            }
        }
        TaskEnd::Stopped
    }
}
