//! The documents clients `LPUSH` onto the submit list, and their validation.
//!
//! A **plan document** creates a plan, or adds tasks to an existing one (a follow-up):
//! ```json
//! {"plan_id": "todo-app", "workspace": "todo-app",
//!  "tasks": [{"id": "model", "type": "create_file", "prompt": "Create todo.py ..."}],
//!  "options": {"model": "sonnet", "permission_mode": "acceptEdits",
//!              "allowed_tools": ["Read", "Write"], "append_system_prompt": "...",
//!              "max_budget_usd": 2.5, "session_ttl_secs": 3600}}
//! ```
//! Every field but `tasks` (and each task's `prompt`) is optional.
//!
//! An **action document** asks for something to be done to an existing plan, through the same
//! list so that it is applied exactly once by a worker, atomically in the plan's own script:
//! `{"plan_id": "todo-app", "action": "retry"}`.
//!
//! [`Document::parse`] turns raw bytes into one of them or a [`ValidationError`] that names the
//! field and the problem, which the worker stores with the document on the dead-letter list.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::ids::{PlanId, TaskId};
use crate::plan::{
    PlanOptions, TaskSpec, Workspace, MAX_DOCUMENT_BYTES, MAX_PROMPT_BYTES, MAX_TASKS_PER_DOCUMENT,
};
use crate::repo::RepoRequest;

/// A document that failed validation: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ValidationError {
    /// JSON path of the field, e.g. `tasks[2].prompt`; `document` for the whole document.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub problem: String,
}

impl ValidationError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A validated document.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A new plan, or tasks for an existing one.
    Plan(Box<Submission>),
    /// Something to do to an existing plan.
    Action(ActionRequest),
}

/// A validated plan document: a new plan, or (when `plan_id` names an existing plan) a
/// follow-up whose tasks join that plan's conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    /// `None` when the document gave none: the ingesting worker then assigns one.
    pub plan_id: Option<PlanId>,
    pub workspace: Option<Workspace>,
    /// The git repository the plan's code goes to (one commit per task on a branch).
    pub repo: Option<RepoRequest>,
    pub tasks: Vec<TaskSpec>,
    pub options: Option<PlanOptions>,
}

// Wire shapes: every field optional or loosely typed so that the checks below, not serde,
// produce the messages users see for the common mistakes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    #[serde(default)]
    plan_id: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    tasks: Option<Vec<RawTask>>,
    #[serde(default)]
    options: Option<PlanOptions>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    repo: Option<RawRepo>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    max_budget_usd: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    branch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    review: Option<bool>,
    #[serde(default)]
    json_schema: Option<serde_json::Value>,
}

impl Document {
    /// Parses and validates a raw document.
    ///
    /// # Errors
    /// A [`ValidationError`] naming the first field found wrong: size, UTF-8, JSON syntax,
    /// types, unknown fields, ids, workspace, prompts, option values, actions.
    pub fn parse(raw: &[u8]) -> Result<Self, ValidationError> {
        if raw.len() > MAX_DOCUMENT_BYTES {
            return Err(ValidationError::new(
                "document",
                format!("is {} bytes; the limit is {MAX_DOCUMENT_BYTES}", raw.len()),
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|e| {
            ValidationError::new(
                "document",
                format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
            )
        })?;
        check_shape(text)?;
        let de = &mut serde_json::Deserializer::from_str(text);
        let doc: RawDocument = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let field = if path == "." {
                "document".to_owned()
            } else {
                path
            };
            let problem = if inner.is_syntax() || inner.is_eof() {
                format!("is not valid JSON: {inner}")
            } else {
                inner.to_string()
            };
            ValidationError::new(field, problem)
        })?;
        // `check_shape` refused trailing data already; this keeps the parse honest on its own.
        de.end().map_err(|e| {
            ValidationError::new("document", format!("has data after the JSON value: {e}"))
        })?;
        match &doc.action {
            Some(action) => check_action(action, &doc).map(Self::Action),
            None => Submission::check(doc).map(|s| Self::Plan(Box::new(s))),
        }
    }
}

impl Submission {
    fn check(doc: RawDocument) -> Result<Self, ValidationError> {
        for (field, present) in [
            ("note", doc.note.is_some()),
            ("max_budget_usd", doc.max_budget_usd.is_some()),
        ] {
            if present {
                return Err(ValidationError::new(
                    field,
                    "is only for action documents; a plan's budget is options.max_budget_usd",
                ));
            }
        }
        let plan_id = doc
            .plan_id
            .map(|s| {
                s.parse::<PlanId>()
                    .map_err(|e| ValidationError::new("plan_id", e.to_string()))
            })
            .transpose()?;
        let workspace = doc
            .workspace
            .map(|s| {
                s.parse::<Workspace>()
                    .map_err(|e| ValidationError::new("workspace", e))
            })
            .transpose()?;
        let raw_tasks = doc.tasks.ok_or_else(|| {
            ValidationError::new("tasks", "is missing; a plan needs at least one task")
        })?;
        if raw_tasks.is_empty() {
            return Err(ValidationError::new(
                "tasks",
                "is empty; a plan needs at least one task",
            ));
        }
        if raw_tasks.len() > MAX_TASKS_PER_DOCUMENT {
            return Err(ValidationError::new(
                "tasks",
                format!(
                    "has {} tasks; the limit is {MAX_TASKS_PER_DOCUMENT}",
                    raw_tasks.len()
                ),
            ));
        }
        let tasks = check_tasks(raw_tasks)?;
        if let Some(o) = &doc.options {
            check_options(o)?;
            if let (Some(after), Some(me)) = (&o.after, &plan_id) {
                if let Some(i) = after.iter().position(|p| p == me) {
                    return Err(ValidationError::new(
                        format!("options.after[{i}]"),
                        "names the plan itself; it would wait forever",
                    ));
                }
            }
        }
        let repo = doc.repo.map(check_repo).transpose()?;
        if let (Some(r), Some(plan)) = (&repo, &plan_id) {
            r.for_plan(plan)
                .map_err(|e| ValidationError::new("repo.branch", e))?;
        }
        Ok(Self {
            plan_id,
            workspace,
            repo,
            tasks,
            options: doc.options,
        })
    }
}

/// Each task of a plan document, checked; the ids unique (a missing one generated).
fn check_tasks(raw_tasks: Vec<RawTask>) -> Result<Vec<TaskSpec>, ValidationError> {
    let mut seen = HashSet::new();
    let mut tasks = Vec::with_capacity(raw_tasks.len());
    for (i, mut t) in raw_tasks.into_iter().enumerate() {
        let id = match t.id.take() {
            Some(s) => s
                .parse::<TaskId>()
                .map_err(|e| ValidationError::new(format!("tasks[{i}].id"), e.to_string()))?,
            None => TaskId::generate(),
        };
        if !seen.insert(id.clone()) {
            return Err(ValidationError::new(
                format!("tasks[{i}].id"),
                format!("{id:?} is used by an earlier task; task ids must be unique in a plan"),
            ));
        }
        tasks.push(check_task(i, id, t)?);
    }
    Ok(tasks)
}

/// Task `i` of a plan document, its id checked already: its prompt, type and output schema.
fn check_task(i: usize, id: TaskId, t: RawTask) -> Result<TaskSpec, ValidationError> {
    let prompt = t
        .prompt
        .ok_or_else(|| ValidationError::new(format!("tasks[{i}].prompt"), "is missing"))?;
    check_prompt(&prompt).map_err(|p| ValidationError::new(format!("tasks[{i}].prompt"), p))?;
    if let Some(k) = &t.kind {
        if k.len() > 64 || k.chars().any(char::is_control) {
            return Err(ValidationError::new(
                format!("tasks[{i}].type"),
                "must be at most 64 characters without control characters",
            ));
        }
    }
    Ok(TaskSpec {
        id,
        kind: t.kind,
        prompt,
        review: t.review.unwrap_or(false),
        json_schema: t
            .json_schema
            .map(|schema| {
                crate::structured::check_schema(&schema)
                    .map(|()| schema.to_string())
                    .map_err(|p| ValidationError::new(format!("tasks[{i}].json_schema"), p))
            })
            .transpose()?,
    })
}

/// The document's outline, before its fields are read: exactly one JSON value (nothing after
/// it but whitespace), an object, and objects where the document has objects. serde would
/// read a struct from an array of its fields in order (`[null, null, [...]]`), a second way to
/// write a document that no client means and no reader of the dead-letter list expects.
fn check_shape(text: &str) -> Result<(), ValidationError> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let problem = if e.is_syntax() && e.to_string().starts_with("trailing characters") {
            format!("has data after the JSON value; a document is one JSON object ({e})")
        } else {
            format!("is not valid JSON: {e}")
        };
        ValidationError::new("document", problem)
    })?;
    let object = |v: Option<&Value>, field: &str| match v {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(Value::Array(_)) => Err(ValidationError::new(
            field,
            "is a JSON array; write it as an object with named fields",
        )),
        // Other types: serde's message names the type and the field.
        Some(_) => Ok(()),
    };
    if !value.is_object() {
        let what = match &value {
            Value::Array(_) => {
                "a JSON array; a document is a JSON object with named fields ({\"tasks\": [...]})"
            }
            _ => "not a JSON object; a document is a JSON object ({\"tasks\": [...]})",
        };
        return Err(ValidationError::new("document", format!("is {what}")));
    }
    object(value.get("repo"), "repo")?;
    object(value.get("options"), "options")?;
    if let Some(o) = value.get("options") {
        object(o.get("notify"), "options.notify")?;
    }
    if let Some(Value::Array(tasks)) = value.get("tasks") {
        for (i, t) in tasks.iter().enumerate() {
            object(Some(t), &format!("tasks[{i}]"))?;
        }
    }
    Ok(())
}

fn check_repo(raw: RawRepo) -> Result<RepoRequest, ValidationError> {
    let url = raw
        .url
        .ok_or_else(|| ValidationError::new("repo.url", "is missing"))?
        .parse()
        .map_err(|e| ValidationError::new("repo.url", e))?;
    let name = |field: &str, v: Option<String>| {
        v.map(|s| s.parse().map_err(|e| ValidationError::new(field, e)))
            .transpose()
    };
    Ok(RepoRequest {
        url,
        base: name("repo.base", raw.base)?,
        branch: name("repo.branch", raw.branch)?,
    })
}

fn check_prompt(p: &str) -> Result<(), String> {
    if p.trim().is_empty() {
        return Err("is empty; the CLI fails on an empty prompt".into());
    }
    if p.len() > MAX_PROMPT_BYTES {
        return Err(format!(
            "is {} bytes; the limit is {MAX_PROMPT_BYTES}",
            p.len()
        ));
    }
    if p.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(())
}

mod action;
mod options;
#[cfg(test)]
mod tests;

use action::check_action;
pub use action::{ActionRequest, PlanAction};
use options::check_options;
