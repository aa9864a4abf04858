//! What baton stores in Redis besides events: pending tasks, task results, session records,
//! plan states and dead letters. All JSON, so any Redis client can read them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A pending task as kept in `p:{P}:tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTask {
    pub id: String,
    /// 0-based position in the plan, assigned at ingest.
    pub index: u64,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub prompt: String,
    /// How many times a worker died while running this task (a poison-task guard).
    #[serde(default)]
    pub recoveries: u64,
}

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Has tasks waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// Every task so far succeeded; a follow-up may add more.
    Completed,
    /// A task failed for good; `baton retry` resumes from it.
    Failed,
    /// Ended by `baton cancel`.
    Cancelled,
}

impl PlanState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A string that names no plan state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plan state {0:?}")]
pub struct UnknownPlanState(pub String);

impl FromStr for PlanState {
    type Err = UnknownPlanState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(UnknownPlanState(other.to_owned())),
        })
    }
}

impl fmt::Display for PlanState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one task, appended to `p:{P}:results` when it is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: String,
    pub task_index: u64,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub prompt: String,
    /// The CLI's final text.
    pub result: String,
    pub session_id: String,
    pub worker: String,
    pub attempts: u32,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// Files the model wrote or edited, as seen in its tool uses.
    #[serde(default)]
    pub files: Vec<String>,
    pub finished_at: String,
}

/// A plan's Claude session, in `p:{P}:session` with a TTL renewed on every use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub created_at: String,
    pub last_used_at: String,
    /// The worker that ran the last committed task (a resume elsewhere is a handoff).
    pub last_worker: String,
    /// Tasks committed in this session.
    pub tasks: u64,
    /// The conversation's size in tokens at the last task, from the CLI's usage.
    #[serde(default)]
    pub context_tokens: u64,
    /// SHA-256 of the committed transcript, hex; empty when none was stored.
    #[serde(default)]
    pub transcript_sha256: String,
    pub ttl_secs: u64,
}

/// What went to the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub at: String,
    /// `submission` (a document failed validation) or `task` (a task failed for good).
    pub kind: String,
    pub reason: String,
    /// The field at fault, for a rejected document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Each attempt's reason, for a failed task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<String>,
    /// The document as received (invalid UTF-8 replaced), for a rejected document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}
