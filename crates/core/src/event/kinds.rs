//! What each kind of event says: one struct per kind, the fields its readers rely on. The names
//! here are the wire names (the README's Events table); a field renamed here fails to compile in
//! every writer and reader at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::EventKind;
use crate::ids::{ClaudeSessionId, WorkerId};
use crate::records::DiffStat;
use crate::vocab::{closed_enum, FallbackReason, PlanState};

closed_enum! {
    /// How a `plan_accepted` came about.
    pub enum AcceptStatus ("accept status") {
        /// The document created the plan.
        Created = "created",
        /// The document added tasks to an existing plan.
        Appended = "appended",
        /// `baton retry` put a failed plan's failed task back.
        Retried = "retried",
    }
}

closed_enum! {
    /// How the worker ran the CLI for an attempt.
    pub enum SessionMode ("session mode") {
        /// One CLI process per held plan, fed each task as a stream-json message.
        Warm = "warm",
        /// One `claude -p --resume` process per task.
        Cold = "cold",
    }
}

closed_enum! {
    /// What ran an attempt (`task_started`'s `mode`): the CLI in one of its [`SessionMode`]s, or
    /// a benchmark executor, which runs no CLI.
    pub enum AttemptMode ("attempt mode") {
        /// The CLI, one process per held plan.
        Warm = "warm",
        /// The CLI, one process per task.
        Cold = "cold",
        /// No CLI: answered in-process (the `instant` benchmark executor, and the scripted
        /// engines of the in-process test harness).
        Instant = "instant",
        /// No CLI: a program run per task (the `spawn:<program>` benchmark executor).
        Spawn = "spawn",
    }
}

impl From<SessionMode> for AttemptMode {
    fn from(m: SessionMode) -> Self {
        match m {
            SessionMode::Warm => Self::Warm,
            SessionMode::Cold => Self::Cold,
        }
    }
}

closed_enum! {
    /// Who stopped a plan whose budget was spent.
    pub enum StoppedBy ("budget stopper") {
        /// The worker: nothing was left before the task started.
        Worker = "worker",
        /// The CLI's own `--max-budget-usd`.
        Cli = "cli",
        /// The model gateway refused a request mid-task.
        Gateway = "gateway",
    }
}

closed_enum! {
    /// Who acted, for the events a person causes.
    pub enum Actor ("actor") {
        /// A person, through `baton` or the dashboard.
        User = "user",
    }
}

/// `plan_accepted`: a document was validated and its tasks added (or a retry applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanAccepted {
    pub status: AcceptStatus,
    /// How many tasks the document added (absent for a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// The index of the first task added (absent for a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_task_index: Option<u64>,
    /// The plan's state after the document (absent for a retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PlanState>,
}

/// `submission_rejected`: a document failed validation and went to the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRejected {
    pub reason: String,
    /// The document's field at fault (`plan_id`, `tasks[2].prompt`...); absent only in the
    /// events `baton watch` rebuilds from dead letters that named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub dead_letter_id: String,
}

/// `task_started`: an attempt of a task began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStarted {
    /// 1-based.
    pub attempt: u32,
    pub session_id: ClaudeSessionId,
    pub mode: AttemptMode,
    /// The plan's OpenTelemetry trace id (32 hex digits), once a worker that exports traces
    /// held the plan: the attempt's spans, and its CLI's, are in that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// `task_progress`: something the CLI's stream showed while a task ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskProgress {
    /// The CLI retrying a 429/529 itself.
    ApiRetry(ApiRetry),
    /// A tool use, e.g. a file written.
    ToolUse(ToolUse),
}

/// A tool use seen on the CLI's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
}

/// The CLI retrying an API error itself (its `api_retry` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRetry {
    /// Always `true`: what tells this progress from a tool use on the wire.
    pub api_retry: bool,
    /// The HTTP status, when the CLI said.
    pub status: Option<u16>,
    /// The CLI's own attempt number.
    pub cli_attempt: u64,
    pub delay_ms: u64,
}

/// `task_succeeded`: a task's result was committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSucceeded {
    pub result: String,
    pub session_id: ClaudeSessionId,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// Files the task wrote (as the CLI's tool uses named them).
    pub files: Vec<String>,
    pub attempts: u32,
    /// When the run started, ms since the epoch (with microseconds).
    pub run_started_ms: f64,
    /// When its `result` line arrived.
    pub result_at_ms: f64,
    /// When it was over: a cold CLI exited, a warm CLI's transcript held the turn.
    pub run_ended_ms: f64,
    /// What the model gateway forwarded for the attempt.
    pub gateway_requests: u64,
    pub gateway_input_tokens: u64,
    pub gateway_output_tokens: u64,
    /// The checked answer, with a `json_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<Value>,
    /// What the commit sent of the transcript: the whole pack, or the turn's chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_bytes: Option<u64>,
    /// With a `repo`: the checkpoint's commit and what it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<DiffStat>,
    /// With a `repo`: git's time before the run (checkout) and after it (commit and push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_ms: Option<f64>,
    /// When the worker reached the task's other steps (with `run_started_ms`, `result_at_ms`
    /// and `run_ended_ms`: where a task's time goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamps: Option<TaskStamps>,
}

/// When a worker reached each of its own steps of a task, in ms since the epoch (with
/// microseconds), on the worker's clock. With the run's stamps in `task_succeeded` and the
/// event's arrival, they split a task's time into claim, preparation (files and session), the
/// run, packing, and the commit with its publication.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaskStamps {
    /// The plan was claimed: the first task of a hold only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_ms: Option<f64>,
    /// The hold began the task: its lease taken (the first task of a hold), or the commit of
    /// the task before returned.
    pub began_ms: f64,
    /// The successful attempt's files and session were ready (checkout, transcript restored,
    /// recap), just before its run was prepared and started.
    pub prepared_ms: f64,
    /// The run's transcript was packed and its commit sent.
    pub committing_ms: f64,
}

/// `task_retrying`: the task runs again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRetrying {
    /// The next attempt.
    pub attempt: u32,
    pub reason: String,
    /// The wait before it (0: at once, in a new session).
    pub delay_ms: u64,
}

/// `task_failed`: the task failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFailed {
    pub reason: String,
    /// Each attempt's reason.
    pub attempts: Vec<String>,
}

/// `session_created`, `session_resumed`, `session_handoff`, `session_rotated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionNote {
    pub session_id: ClaudeSessionId,
    /// On a resume or handoff: the worker that ran the plan's previous task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_worker: Option<WorkerId>,
}

/// `session_fallback`: the session could not be resumed; a new one starts with a recap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFallback {
    pub session_id: ClaudeSessionId,
    pub reason: FallbackReason,
}

/// `plan_completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanCompleted {
    /// With a `repo`: the branch's last checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// `plan_failed` and `plan_cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStopped {
    pub reason: String,
}

/// `plan_budget_exhausted`: the plan is paused (state `paused`, reason `budget`) until its
/// budget is raised (`baton budget PLAN --usd`); or, with `key`, until the next UTC day
/// (`until_ms`) or the key's daily budget is raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanBudgetExhausted {
    /// Always `budget`.
    pub reason: String,
    pub detail: String,
    pub stopped_by: StoppedBy,
    /// The concurrency key whose daily budget is spent (absent: the plan's own budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the plan goes on by itself (ms since the epoch): the next UTC day, for a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl PlanBudgetExhausted {
    /// The event for a budget spent, as `stopped_by` found it.
    pub fn new(detail: impl Into<String>, stopped_by: StoppedBy) -> Self {
        Self {
            reason: "budget".to_owned(),
            detail: detail.into(),
            stopped_by,
            key: None,
            until_ms: None,
        }
    }
}

/// `plan_budget_raised`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanBudgetRaised {
    /// The plan's budget now (USD).
    pub max_budget_usd: f64,
}

/// `pool_paused`: a rate limit with a reset time (`retry_after_ms`, `until_ms`), or a person
/// (`by: "user"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolPaused {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

/// `pool_resumed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolResumed {
    pub by: Actor,
}

/// `plan_paused`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPaused {
    pub reason: String,
    /// Whether the running task was stopped.
    pub now: bool,
}

/// An event with no fields of its own (`plan_resumed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bare {}

/// `review_requested`: a task with `"review": true` committed; the plan waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRequested {
    pub result: String,
    /// How often the task was rejected before.
    pub rework: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<DiffStat>,
}

/// `review_approved`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewApproved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `review_rejected`: the task runs again with the note as the rework's prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRejected {
    pub note: String,
}

/// `webhook_failed`: a delivery given up or refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookFailed {
    /// The kind not delivered.
    pub event: EventKind,
    /// Without its query.
    pub url: String,
    pub reason: String,
    pub attempts: u32,
}

/// `schedule_fired`: a schedule submitted a plan (the event's `plan_id`), published on the
/// channel only (the firing script is in the pool's slot, not the plan's); the plan's own
/// events start with its `plan_accepted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFired {
    /// The schedule's name.
    pub schedule: String,
    /// The tick, RFC 3339 in UTC (for a run-now: when it was asked).
    pub tick: String,
    /// Due ticks skipped before this one: after an outage only the latest fires.
    pub missed: u64,
    /// `true` for `baton schedule run-now`.
    pub run_now: bool,
}
