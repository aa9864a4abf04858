//! Running tasks through the Claude Code CLI.
//!
//! # Layout
//! - `process`: the command line, environment and process group; stopping a CLI.
//! - `stream`: reading its stream-json output under a wall-clock and a silence limit.
//! - `cold`: one process per task ([`run`]).
//! - `warm`: one process per held plan, fed a task per message ([`WarmSession`]).
//! - `error`: every way a run fails ([`ClaudeError`]), each with its retry decision.
//!
//! The prompt goes on stdin or in a stream-json message, never as an argument the CLI could
//! read as a flag. Only a final `result` with `subtype` `success` and `is_error` false is a
//! success.

mod cold;
mod error;
mod process;
mod stream;
pub(crate) mod version;
mod warm;

use std::path::Path;
use std::time::{Duration, SystemTime};

use baton_core::{ClaudeSessionId, PlanOptions};

pub(crate) use cold::run;
pub(crate) use error::ClaudeError;
pub(crate) use process::spawn_key;
pub(crate) use warm::WarmSession;

/// How the run starts its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionArg {
    /// `--session-id`: a new conversation with an id chosen by baton.
    New(ClaudeSessionId),
    /// `--resume`: continue the committed conversation.
    Resume(ClaudeSessionId),
}

impl SessionArg {
    /// The session id either way.
    pub(crate) fn id(self) -> ClaudeSessionId {
        match self {
            Self::New(id) | Self::Resume(id) => id,
        }
    }
}

/// One CLI run: what to run, where, and within which limits.
#[derive(Debug, Clone)]
pub(crate) struct Invocation<'a> {
    pub(crate) bin: &'a Path,
    /// The plan's workspace (canonical).
    pub(crate) cwd: &'a Path,
    pub(crate) config_dir: &'a Path,
    pub(crate) session: SessionArg,
    pub(crate) options: &'a PlanOptions,
    /// The task's JSON Schema (`--json-schema`), as JSON text.
    pub(crate) json_schema: Option<&'a str>,
    /// What is left of the plan's budget, passed as `--max-budget-usd`.
    pub(crate) budget_left_usd: Option<f64>,
    pub(crate) prompt: &'a str,
    pub(crate) timeout: Duration,
    pub(crate) silence_timeout: Duration,
    /// How the run reaches the model, and the box it runs in.
    pub(crate) reach: Reach<'a>,
    /// The attempt span's W3C `traceparent` (a worker that exports traces): the CLI's
    /// `TRACEPARENT`, with `CLAUDE_CODE_PROPAGATE_TRACEPARENT=1`.
    pub(crate) traceparent: Option<String>,
}

impl Invocation<'_> {
    /// The working directory the CLI sees: `/workspace` in a box, the workspace without one.
    pub(crate) fn model_cwd(&self) -> &Path {
        crate::pool::model_cwd(self.reach.sandbox.is_some(), self.cwd)
    }
}

/// How a CLI run reaches the model: the worker's gateway with the hold's token, from inside
/// the worker's box (or, with `--sandbox off`, through the gateway's loopback port).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach<'a> {
    pub(crate) sandbox: Option<&'a crate::sandbox::Sandbox>,
    /// The gateway's base URL for a run without a box.
    pub(crate) loopback_url: &'a str,
    /// The hold's gateway token: the CLI's API key.
    pub(crate) token: &'a str,
    /// `--trust-repo-settings`.
    pub(crate) trust_repo_settings: bool,
}

/// Something seen on the stream while the task runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// The model used a tool; `file_path` when it names a file.
    ToolUse {
        tool: String,
        file_path: Option<String>,
    },
    /// The CLI is retrying an API error inside itself (429/529/5xx).
    ApiRetry {
        status: Option<u16>,
        attempt: u64,
        delay_ms: u64,
    },
}

/// A successful run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) result: String,
    /// This task's cost (a warm process's running total is turned into differences).
    pub(crate) cost_usd: f64,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    /// Size of the conversation at the last model call (input incl. cache + output).
    pub(crate) context_tokens: u64,
    /// Files written or edited, relative to the workspace when inside it.
    pub(crate) files: Vec<String>,
    /// When the `result` line was read.
    pub(crate) result_at: SystemTime,
    /// The structured answer (`structured_output`, a run with `--json-schema`).
    pub(crate) structured: Option<serde_json::Value>,
}
