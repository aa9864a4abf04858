//! Events: one JSON object each, published on the channel and appended to the plan's event
//! list (where the publishing script adds `seq`, the event's position in that list, so a
//! watcher that catches up from the list and then follows the channel can drop repeats).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{PlanId, TaskId, WorkerId};
use crate::vocab::closed_enum;

closed_enum! {
    /// What happened. Named once here; the wire name is the snake_case string.
    pub enum EventKind ("event kind") {
        /// A document was validated and its tasks were added to a plan.
        PlanAccepted = "plan_accepted",
        /// A document failed validation and went to the dead-letter list.
        SubmissionRejected = "submission_rejected",
        TaskStarted = "task_started",
        /// A tool use seen on the CLI's stream, e.g. a file written.
        TaskProgress = "task_progress",
        TaskSucceeded = "task_succeeded",
        TaskRetrying = "task_retrying",
        TaskFailed = "task_failed",
        SessionCreated = "session_created",
        SessionResumed = "session_resumed",
        /// The session resumed on a worker other than the one that ran the plan's previous task.
        SessionHandoff = "session_handoff",
        /// The session could not be resumed; a new one starts with a recap (`reason` says why).
        SessionFallback = "session_fallback",
        /// The session grew past the context threshold; a new one starts with a recap.
        SessionRotated = "session_rotated",
        PlanCompleted = "plan_completed",
        PlanFailed = "plan_failed",
        PlanCancelled = "plan_cancelled",
        PlanBudgetExhausted = "plan_budget_exhausted",
        /// The pool stopped claiming work until a rate limit resets.
        PoolPaused = "pool_paused",
        /// The pool claims again (`baton resume --all`).
        PoolResumed = "pool_resumed",
        /// A user paused the plan (`baton pause`).
        PlanPaused = "plan_paused",
        /// A user resumed the plan (`baton resume`).
        PlanResumed = "plan_resumed",
        /// A task with `"review": true` committed; the plan waits for a reviewer.
        ReviewRequested = "review_requested",
        /// The reviewer approved the task (`baton approve`); the plan goes on.
        ReviewApproved = "review_approved",
        /// The reviewer rejected the task (`baton reject`); it runs again with the note.
        ReviewRejected = "review_rejected",
        /// A webhook delivery was given up or refused (the plan goes on regardless).
        WebhookFailed = "webhook_failed",
    }
}

impl EventKind {
    /// True for the kinds after which a plan runs no more until someone acts.
    pub fn ends_plan(self) -> bool {
        matches!(
            self,
            Self::PlanCompleted
                | Self::PlanFailed
                | Self::PlanCancelled
                | Self::PlanBudgetExhausted
        )
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// Absent only for pool-wide events (`pool_paused`) and documents that had no valid id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<PlanId>,
    /// RFC 3339, UTC.
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// 0-based position of the task in its plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_index: Option<u64>,
    /// Position in the plan's event list, set when the event is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Kind-specific fields (`reason`, `result`, `cost_usd`, `tool`, `file_path`...).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Event {
    /// A new event stamped now.
    pub fn new(kind: EventKind, plan_id: Option<&PlanId>) -> Self {
        Self {
            kind,
            plan_id: plan_id.cloned(),
            at: crate::time::now_rfc3339(),
            worker: None,
            task_id: None,
            task_index: None,
            seq: None,
            fields: Map::new(),
        }
    }
    /// Sets the acting worker.
    pub fn worker(mut self, worker: &WorkerId) -> Self {
        self.worker = Some(worker.clone());
        self
    }
    /// Sets the task concerned.
    pub fn task(mut self, id: &TaskId, index: u64) -> Self {
        self.task_id = Some(id.clone());
        self.task_index = Some(index);
        self
    }
    /// Adds a kind-specific field.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }
    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        // An Event holds only strings, numbers and JSON values: serializing cannot fail.
        serde_json::to_string(self).expect("events serialize")
    }
    /// A kind-specific field as text, if present.
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_their_fields() {
        let plan: PlanId = "p".parse().unwrap();
        let e = Event::new(EventKind::TaskSucceeded, Some(&plan))
            .worker(&"w".parse().unwrap())
            .task(&"t".parse().unwrap(), 2)
            .with("cost_usd", 0.5);
        let back: Event = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back, e);
        assert!(e.to_json().contains(r#""kind":"task_succeeded""#));
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
        }
    }
}
