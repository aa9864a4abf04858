//! What baton stores in Redis besides events and the plan hash: pending tasks, task results,
//! session records and dead letters. All JSON, so any Redis client can read them; ids are typed,
//! so a record that decodes holds only valid ones.

use serde::{Deserialize, Serialize};

use crate::ids::{ClaudeSessionId, PlanId, TaskId, WorkerId};
use crate::vocab::DeadLetterKind;

/// A pending task as kept in `p:{P}:tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTask {
    pub id: TaskId,
    /// 0-based position in the plan, assigned at ingest.
    pub index: u64,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub prompt: String,
    /// How many times a worker died while running this task (a poison-task guard).
    #[serde(default)]
    pub recoveries: u64,
    /// After this task commits, the plan waits for `baton approve` or `baton reject`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
    /// How many times a reviewer rejected this task: a rework's prompt is the reviewer's note.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rework: u64,
    /// The JSON Schema the task's structured answer must match, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The outcome of one task, appended to `p:{P}:results` when it is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: TaskId,
    pub task_index: u64,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub prompt: String,
    /// The CLI's final text.
    pub result: String,
    pub session_id: ClaudeSessionId,
    pub worker: WorkerId,
    pub attempts: u32,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    /// Files the model wrote or edited, as seen in its tool uses.
    #[serde(default)]
    pub files: Vec<String>,
    pub finished_at: String,
    /// The plan's checkpoint after this task (a plan with a git repository): the task's commit,
    /// or the previous checkpoint when the task changed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What the task's commit changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<DiffStat>,
    /// The task's structured answer (a task with a `json_schema`), checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
}

/// What a commit changed, as `git diff --numstat` counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffStat {
    pub files: u64,
    pub insertions: u64,
    pub deletions: u64,
}

/// A plan's Claude session, in `p:{P}:session` with a TTL renewed on every use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub session_id: ClaudeSessionId,
    pub created_at: String,
    pub last_used_at: String,
    /// The worker that ran the last committed task (a resume elsewhere is a handoff).
    pub last_worker: WorkerId,
    /// Tasks committed in this session.
    pub tasks: u64,
    /// The conversation's size in tokens at the last task, from the CLI's usage.
    #[serde(default)]
    pub context_tokens: u64,
    /// SHA-256 of the committed transcript, hex; empty when none was stored.
    #[serde(default)]
    pub transcript_sha256: String,
    /// The working directory the last task ran in (its absolute path on that worker).
    #[serde(default)]
    pub cwd: String,
    pub ttl_secs: u64,
}

/// What went to the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: uuid::Uuid,
    pub at: String,
    pub kind: DeadLetterKind,
    pub reason: String,
    /// The field at fault, for a rejected document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<PlanId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// Each attempt's reason, for a failed task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<String>,
    /// The document as received (invalid UTF-8 replaced), for a rejected document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

impl DeadLetter {
    /// A task that failed for good, with each attempt's reason.
    pub fn task(plan: &PlanId, task: &TaskId, reason: &str, attempts: Vec<String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            at: crate::time::now_rfc3339(),
            kind: DeadLetterKind::Task,
            reason: reason.to_owned(),
            field: None,
            plan_id: Some(plan.clone()),
            task_id: Some(task.clone()),
            attempts,
            document: None,
        }
    }

    /// A document that failed validation: the field at fault, the reason, the document as kept.
    pub fn submission(plan: Option<PlanId>, field: &str, reason: &str, document: String) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            at: crate::time::now_rfc3339(),
            kind: DeadLetterKind::Submission,
            reason: reason.to_owned(),
            field: Some(field.to_owned()),
            plan_id: plan,
            task_id: None,
            attempts: Vec::new(),
            document: Some(document),
        }
    }
}
