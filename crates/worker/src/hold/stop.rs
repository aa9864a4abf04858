//! A plan stopped on its head task, which stays first so `baton retry` resumes from it: a task
//! that failed for good (dead-lettered with each attempt's reason), or a plan it runs after that
//! failed; or paused there on a spent budget (the plan's own, or its key's for the day), until
//! the budget is raised. Written in one fenced script (`fail.lua`) with the plan's events.

use baton_core::event::{EventBody, PlanBudgetExhausted, PlanStopped, TaskFailed};
use baton_core::records::{DeadLetter, StoredTask};
use baton_core::scripts::task::{Fail, FailReply};
use baton_core::{Counter, Event};
use tracing::warn;

use super::{Hold, TaskEnd};
use crate::attempt::{AttemptFailure, Stop};
use crate::lease::Interruption;
use crate::metrics::TaskOutcome;
use crate::reconnect::redis_retry;

/// Why the hold stops its plan.
#[derive(Debug)]
pub(super) enum Halt {
    /// Its task's attempts said so.
    Task(Stop),
    /// The plan cannot run: a plan it runs after failed (`plan_failed` only; no task ran).
    Blocked(String),
    /// Its concurrency key has spent its daily budget: paused on the key until the next day.
    KeySpent {
        key: String,
        day: baton_core::scripts::limits::KeyDay,
    },
}

impl From<Stop> for Halt {
    fn from(stop: Stop) -> Self {
        Self::Task(stop)
    }
}

/// Each attempt's failure as `task_failed` and the dead letter list them (a task that could not
/// be tried at all: its reason).
fn attempt_lines(reason: &str, attempts: &[AttemptFailure]) -> Vec<String> {
    if attempts.is_empty() {
        return vec![reason.to_owned()];
    }
    attempts.iter().map(ToString::to_string).collect()
}

impl Hold<'_> {
    /// The events of `halt` on `task`: the task's own (if any) and the plan's, and the reason.
    fn halt_events(&self, task: &StoredTask, halt: &Halt) -> (String, Option<Event>, Event) {
        let failed = |reason: &str| {
            EventBody::PlanFailed(PlanStopped {
                reason: reason.to_owned(),
            })
        };
        match halt {
            Halt::Task(Stop::Failed { reason, attempts }) => {
                let body = TaskFailed {
                    reason: reason.clone(),
                    attempts: attempt_lines(reason, attempts),
                };
                let task_event = self.report.event(body, task);
                (
                    reason.clone(),
                    Some(task_event),
                    self.report.event(failed(reason), task),
                )
            }
            Halt::Blocked(reason) => (reason.clone(), None, self.report.plan_event(failed(reason))),
            Halt::Task(Stop::BudgetSpent { detail, stopped_by }) => {
                let body = PlanBudgetExhausted::new(detail.as_str(), *stopped_by);
                (detail.clone(), None, self.report.event(body, task))
            }
            Halt::KeySpent { key, day } => {
                let body = super::budget::key_spent_event(key, day);
                (body.detail.clone(), None, self.report.event(body, task))
            }
        }
    }

    /// Stops the plan on `task`.
    pub(super) async fn stop_plan(&self, task: &StoredTask, halt: Halt) -> TaskEnd {
        let (reason, task_event, plan_event) = self.halt_events(task, &halt);
        let budget_pause = match &halt {
            Halt::Task(Stop::BudgetSpent { .. }) => Some(""),
            Halt::KeySpent { key, .. } => Some(key.as_str()),
            _ => None,
        };
        let call = Fail {
            plan: &self.plan,
            lock: &self.lease.value,
            reason: &reason,
            task_event: task_event.as_ref(),
            plan_event: &plan_event,
            budget_pause,
        };
        let abort = &self.pool.shutdown.abort;
        match redis_retry("stop plan", abort, || self.pool.store.call(&call)).await {
            Some(FailReply::Failed) => self.notify(&plan_event),
            Some(FailReply::Fenced) => return TaskEnd::Interrupted(Interruption::LeaseLost),
            None => return TaskEnd::Interrupted(Interruption::Stopped),
        }
        match halt {
            Halt::Task(Stop::Failed { reason, attempts }) => {
                self.pool.metrics.task(TaskOutcome::dead_lettered);
                let lines = attempt_lines(&reason, &attempts);
                let letter = DeadLetter::task(&self.plan, &task.id, &reason, lines);
                let _ = redis_retry("dead letter", abort, || {
                    self.pool.store.dead_letter(&letter)
                })
                .await;
                self.report
                    .count(&[(Counter::TasksFailed, 1), (Counter::PlansFailed, 1)])
                    .await;
                let last_at = attempts.last().map(|a| a.at);
                warn!(reason, ?last_at, "plan failed");
            }
            Halt::Blocked(reason) => {
                self.report.count(&[(Counter::PlansFailed, 1)]).await;
                warn!(reason, "plan failed");
            }
            Halt::Task(Stop::BudgetSpent { detail, .. }) => {
                self.report
                    .count(&[(Counter::PlansBudgetExhausted, 1)])
                    .await;
                warn!(detail, "plan paused: its budget is spent");
            }
            Halt::KeySpent { key, .. } => {
                self.report
                    .count(&[(Counter::PlansBudgetExhausted, 1)])
                    .await;
                warn!(key, "plan paused: its key's daily budget is spent");
            }
        }
        TaskEnd::Stopped
    }
}
