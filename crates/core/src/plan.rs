//! The parts of a plan: its options, workspace and tasks, and the limits they must keep. A
//! document is parsed and checked into these by [`crate::document`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::grants::ToolGrant;
use crate::ids::{PlanId, TaskId};

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Largest prompt accepted, in bytes.
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;
/// Most tasks in one document.
pub const MAX_TASKS_PER_DOCUMENT: usize = 1000;
/// Linux's limit on one command-line argument (`MAX_ARG_STRLEN`, 32 pages), in bytes with its
/// terminating NUL.
pub const MAX_ARG_STRLEN: usize = 131_072;
/// Largest `options.append_system_prompt`, in bytes: what fits in the one argument
/// `--append-system-prompt=<text>` (with its NUL) the CLI is given.
pub const MAX_APPEND_SYSTEM_PROMPT_BYTES: usize =
    MAX_ARG_STRLEN - "--append-system-prompt=".len() - 1;
/// Longest workspace path accepted.
pub const MAX_WORKSPACE_LEN: usize = 200;
/// Longest session TTL accepted (30 days).
pub const MAX_SESSION_TTL_SECS: u64 = 30 * 24 * 3600;

/// Claude Code's `--permission-mode`. `bypassPermissions` is deliberately absent: whoever can
/// write to Redis could otherwise let the model run anything (and the CLI refuses it as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PermissionMode {
    /// Lets the model write files without asking; the default, since plans write code.
    #[default]
    #[serde(rename = "acceptEdits")]
    AcceptEdits,
    #[serde(rename = "default")]
    Default,
    #[serde(rename = "plan")]
    Plan,
    #[serde(rename = "dontAsk")]
    DontAsk,
    #[serde(rename = "auto")]
    Auto,
}

impl PermissionMode {
    /// The value passed to `--permission-mode`.
    pub fn as_cli_arg(self) -> &'static str {
        match self {
            Self::AcceptEdits => "acceptEdits",
            Self::Default => "default",
            Self::Plan => "plan",
            Self::DontAsk => "dontAsk",
            Self::Auto => "auto",
        }
    }
}

/// Per-plan settings, passed to the CLI on every task (a resumed run restores none of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<PermissionMode>,
    /// Tools the model may use without asking (the CLI's `--allowed-tools`), typed: see
    /// [`ToolGrant`] for the shapes and what a grant may name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<ToolGrant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_system_prompt: Option<String>,
    /// Budget for the whole plan, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    /// How long an idle plan's Claude session is kept (default: the worker's `--session-ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ttl_secs: Option<u64>,
    /// `high`, `normal` (the default) or `low`: workers claim higher plans first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<crate::vocab::Priority>,
    /// The plan is accepted now and claimed only from this time on (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Plans that must complete before this one is claimed; if one fails or is cancelled,
    /// this plan fails with that reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<PlanId>>,
    /// A short label shared by plans that count against one pool-wide limit of running plans
    /// (`baton limit set KEY N`), e.g. `repo:web` or `team:payments`. A plan with a `repo` and
    /// no key gets `repo:<url>`. Set when the plan is created; a follow-up may repeat it only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// A webhook: the worker that produces one of `events` POSTs it to `url`, signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// The CLI's `--max-turns`: model turns (tool round trips) one task may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// The CLI's `--fallback-model`: models to use while the main one is overloaded
    /// (comma-separated, in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_model: Option<String>,
    /// The CLI's `--effort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    /// MCP servers for the plan (the CLI's `--mcp-config`, an object with `mcpServers`),
    /// passed with `--strict-mcp-config` so that a worker's own MCP servers never reach a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_config: Option<serde_json::Map<String, serde_json::Value>>,
    /// Custom subagents (the CLI's `--agents`): name -> {description, prompt, ...}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tools the model may not use (the CLI's `--disallowed-tools`), in the same shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallowed_tools: Option<Vec<ToolGrant>>,
    /// What each task after the first starts from: the plan's one conversation (the default),
    /// a new conversation seeded with baton's recap, or a new conversation with nothing but its
    /// own prompt. The last two exist to measure what the conversation buys (`baton eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<TaskContext>,
}

crate::vocab::closed_enum! {
    /// What a task after the first starts from (`options.context`).
    pub enum TaskContext ("task context") {
        /// The plan's one conversation, resumed (baton's point; the default).
        Conversation = "conversation",
        /// A new conversation whose first prompt recaps the tasks before.
        Recap = "recap",
        /// A new conversation holding nothing but the task's prompt.
        NoContext = "none",
    }
}

crate::vocab::closed_enum! {
    /// The CLI's `--effort` levels.
    pub enum Effort ("effort level") {
        Low = "low",
        Medium = "medium",
        High = "high",
        Xhigh = "xhigh",
        Max = "max",
    }
}

/// Most turns a plan may allow a task.
pub const MAX_TURNS: u32 = 1000;
/// Largest `mcp_config` or `agents` object, as JSON.
pub const MAX_CLI_OBJECT_BYTES: usize = 64 * 1024;

/// Plan option `notify`: where a plan's important events are POSTed (as the JSON published on
/// the channel, signed with HMAC-SHA256 by the worker's `BATON_WEBHOOK_SECRET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// An `http` or `https` URL; its host must be on the delivering worker's `--webhook-allow`.
    pub url: String,
    /// Which events: any of [`Notify::EVENTS`].
    pub events: Vec<crate::event::EventKind>,
}

impl Notify {
    /// The events a webhook can ask for: those a worker produces that end a plan or wait for
    /// a person.
    pub const EVENTS: &'static [crate::event::EventKind] = &[
        crate::event::EventKind::PlanCompleted,
        crate::event::EventKind::PlanFailed,
        crate::event::EventKind::PlanBudgetExhausted,
        crate::event::EventKind::ReviewRequested,
    ];

    /// Checks the URL and the events; the problem names the sub-field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let url = url::Url::parse(&self.url).map_err(|e| ("url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err((
                "url",
                format!("uses {:?}; only http and https are delivered", url.scheme()),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(("url", "has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err((
                "url",
                "carries credentials; the worker signs each delivery with its BATON_WEBHOOK_SECRET instead".into(),
            ));
        }
        if self.url.len() > 2000 {
            return Err(("url", "is longer than 2000 characters".into()));
        }
        if self.events.is_empty() {
            return Err(("events", "is empty; name the events to deliver".into()));
        }
        if let Some(e) = self.events.iter().find(|e| !Self::EVENTS.contains(e)) {
            let known: Vec<&str> = Self::EVENTS.iter().map(|e| e.as_str()).collect();
            return Err((
                "events",
                format!("{e} cannot be delivered; known: {}", known.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Most plans one plan may wait for.
pub const MAX_AFTER: usize = 100;

impl PlanOptions {
    /// `not_before` in milliseconds since the epoch (`None`: not set, or not a valid time,
    /// which validation refuses).
    pub fn not_before_ms(&self) -> Option<u64> {
        let t = humantime::parse_rfc3339_weak(self.not_before.as_deref()?).ok()?;
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        u64::try_from(d.as_millis()).ok()
    }
}

/// A workspace path relative to the worker's workspace root: one or more components of the
/// id character set, no `.` or `..`, not absolute. Symlinks are checked by the worker, on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Workspace(String);

impl Workspace {
    /// The path as text, with `/` separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The default workspace of a plan: a folder named after it.
    pub fn for_plan(plan: &PlanId) -> Self {
        Self(plan.as_str().to_owned())
    }
}

impl FromStr for Workspace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > MAX_WORKSPACE_LEN {
            return Err(format!("is longer than {MAX_WORKSPACE_LEN} characters"));
        }
        if s.starts_with('/') {
            return Err("must be relative to the worker's workspace root, not absolute".into());
        }
        for part in s.split('/') {
            match part {
                "" => return Err("has an empty path component".into()),
                "." | ".." => {
                    return Err(format!(
                        "may not contain {part:?}: it must stay inside the workspace root"
                    ))
                }
                _ => {}
            }
            if let Some(c) = part
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            {
                return Err(format!(
                    "contains {c:?}; allowed are letters, digits, '-', '_', '.' and '/' between folders"
                ));
            }
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for Workspace {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Workspace> for String {
    fn from(w: Workspace) -> String {
        w.0
    }
}

impl fmt::Display for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One task as submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Generated (a UUID) when the document gives none.
    pub id: TaskId,
    /// A free label (`create_file`, `refactor`...), carried into results and events.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub prompt: String,
    /// After this task commits, the plan waits for a reviewer (`baton approve` / `reject`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
    /// The task's answer must match this JSON Schema (see `structured`), kept as JSON text:
    /// the scripts pass it through untouched (Lua's cjson would turn an empty array into an
    /// object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<String>,
}
