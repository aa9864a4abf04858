//! Events: one JSON object each, published on the channel and appended to the plan's event
//! list (where the publishing script adds `seq`, the event's position in that list, so a
//! watcher that catches up from the list and then follows the channel can drop repeats).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ClaudeSessionId, PlanId, TaskId, WorkerId};
use crate::vocab::closed_enum;

mod kinds;
#[cfg(test)]
mod tests;

pub use kinds::*;

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
        /// A person raised the plan's budget (`baton budget PLAN --usd`).
        PlanBudgetRaised = "plan_budget_raised",
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
        /// A schedule submitted a tick's plan (or a run-now's).
        ScheduleFired = "schedule_fired",
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

/// One event: who, when and which plan and task (the same for every kind), and what happened
/// ([`EventBody`], one struct per kind). The wire JSON is one flat object: `kind`, these fields
/// and the kind's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
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
    /// Position in the plan's event list, set by the script that stores the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// What happened, with the kind's own fields.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened: the kind (`"kind"` on the wire) and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    PlanAccepted(PlanAccepted),
    SubmissionRejected(SubmissionRejected),
    TaskStarted(TaskStarted),
    TaskProgress(TaskProgress),
    TaskSucceeded(Box<TaskSucceeded>),
    TaskRetrying(TaskRetrying),
    TaskFailed(TaskFailed),
    SessionCreated(SessionNote),
    SessionResumed(SessionNote),
    SessionHandoff(SessionNote),
    SessionFallback(SessionFallback),
    SessionRotated(SessionNote),
    PlanCompleted(PlanCompleted),
    PlanFailed(PlanStopped),
    PlanCancelled(PlanStopped),
    PlanBudgetExhausted(PlanBudgetExhausted),
    PlanBudgetRaised(PlanBudgetRaised),
    PoolPaused(PoolPaused),
    PoolResumed(PoolResumed),
    PlanPaused(PlanPaused),
    PlanResumed(Bare),
    ReviewRequested(ReviewRequested),
    ReviewApproved(ReviewApproved),
    ReviewRejected(ReviewRejected),
    WebhookFailed(WebhookFailed),
    ScheduleFired(ScheduleFired),
}

impl EventBody {
    /// The kind, as named on the wire.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::PlanAccepted(_) => EventKind::PlanAccepted,
            Self::SubmissionRejected(_) => EventKind::SubmissionRejected,
            Self::TaskStarted(_) => EventKind::TaskStarted,
            Self::TaskProgress(_) => EventKind::TaskProgress,
            Self::TaskSucceeded(_) => EventKind::TaskSucceeded,
            Self::TaskRetrying(_) => EventKind::TaskRetrying,
            Self::TaskFailed(_) => EventKind::TaskFailed,
            Self::SessionCreated(_) => EventKind::SessionCreated,
            Self::SessionResumed(_) => EventKind::SessionResumed,
            Self::SessionHandoff(_) => EventKind::SessionHandoff,
            Self::SessionFallback(_) => EventKind::SessionFallback,
            Self::SessionRotated(_) => EventKind::SessionRotated,
            Self::PlanCompleted(_) => EventKind::PlanCompleted,
            Self::PlanFailed(_) => EventKind::PlanFailed,
            Self::PlanCancelled(_) => EventKind::PlanCancelled,
            Self::PlanBudgetExhausted(_) => EventKind::PlanBudgetExhausted,
            Self::PlanBudgetRaised(_) => EventKind::PlanBudgetRaised,
            Self::PoolPaused(_) => EventKind::PoolPaused,
            Self::PoolResumed(_) => EventKind::PoolResumed,
            Self::PlanPaused(_) => EventKind::PlanPaused,
            Self::PlanResumed(_) => EventKind::PlanResumed,
            Self::ReviewRequested(_) => EventKind::ReviewRequested,
            Self::ReviewApproved(_) => EventKind::ReviewApproved,
            Self::ReviewRejected(_) => EventKind::ReviewRejected,
            Self::WebhookFailed(_) => EventKind::WebhookFailed,
            Self::ScheduleFired(_) => EventKind::ScheduleFired,
        }
    }

    /// The reason a kind gives for itself (`task_retrying`, `task_failed`, `plan_failed`,
    /// `plan_cancelled`, `plan_budget_exhausted`, `session_fallback`, `pool_paused`,
    /// `plan_paused`, `submission_rejected`, `webhook_failed`), if it gives one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::SubmissionRejected(e) => Some(&e.reason),
            Self::TaskRetrying(e) => Some(&e.reason),
            Self::TaskFailed(e) => Some(&e.reason),
            Self::SessionFallback(e) => Some(e.reason.as_str()),
            Self::PlanFailed(e) | Self::PlanCancelled(e) => Some(&e.reason),
            Self::PlanBudgetExhausted(e) => Some(&e.reason),
            Self::PoolPaused(e) => Some(&e.reason),
            Self::PlanPaused(e) => Some(&e.reason),
            Self::WebhookFailed(e) => Some(&e.reason),
            _ => None,
        }
    }

    /// The session an event names (`task_started`, `task_succeeded`, the session kinds).
    pub fn session_id(&self) -> Option<ClaudeSessionId> {
        match self {
            Self::TaskStarted(e) => Some(e.session_id),
            Self::TaskSucceeded(e) => Some(e.session_id),
            Self::SessionCreated(e)
            | Self::SessionResumed(e)
            | Self::SessionHandoff(e)
            | Self::SessionRotated(e) => Some(e.session_id),
            Self::SessionFallback(e) => Some(e.session_id),
            _ => None,
        }
    }
}

impl Event {
    /// A new event of `plan` (`None`: pool-wide, or a document without a valid id), stamped now.
    pub fn new(plan_id: Option<&PlanId>, body: impl Into<EventBody>) -> Self {
        Self {
            plan_id: plan_id.cloned(),
            at: crate::time::now_rfc3339(),
            worker: None,
            task_id: None,
            task_index: None,
            seq: None,
            body: body.into(),
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
    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }
    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        // An Event holds strings, numbers, closed enums and JSON values, all of which serialize.
        serde_json::to_string(self).expect("events serialize")
    }
    /// The event as a JSON value, for the few readers that show any event whole.
    pub fn to_value(&self) -> Value {
        // As `to_json`: serializing an Event cannot fail.
        serde_json::to_value(self).expect("events serialize")
    }
}

/// Each kind's struct becomes the body of its own kind; structs that several kinds share
/// (`SessionNote`, `PlanStopped`) are put in a body with [`EventBody`]'s variants directly.
macro_rules! into_body {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for EventBody {
            fn from(e: $ty) -> Self {
                Self::$variant(e.into())
            }
        })*
    };
}
into_body! {
    PlanAccepted => PlanAccepted,
    SubmissionRejected => SubmissionRejected,
    TaskStarted => TaskStarted,
    TaskProgress => TaskProgress,
    TaskSucceeded => TaskSucceeded,
    TaskRetrying => TaskRetrying,
    TaskFailed => TaskFailed,
    SessionFallback => SessionFallback,
    PlanCompleted => PlanCompleted,
    PlanBudgetExhausted => PlanBudgetExhausted,
    PlanBudgetRaised => PlanBudgetRaised,
    PoolPaused => PoolPaused,
    PoolResumed => PoolResumed,
    PlanPaused => PlanPaused,
    ReviewRequested => ReviewRequested,
    ReviewApproved => ReviewApproved,
    ReviewRejected => ReviewRejected,
    WebhookFailed => WebhookFailed,
    ScheduleFired => ScheduleFired,
}
