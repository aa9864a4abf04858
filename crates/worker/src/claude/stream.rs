//! Reading the CLI's stream-json output: one JSON object a line, read as it arrives under a
//! wall-clock limit and a silence limit. Tool uses become progress; an `api_retry` for a status
//! that will never succeed stops the run at once; only a `result` with `subtype` `success` and
//! `is_error` false is a success. Lines that are not JSON are the CLI's chatter and ignored
//! (the final result decides), as an unknown command is in mini-redis.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use baton_core::ClaudeSessionId;
use serde_json::Value;
use tokio::io::{AsyncBufRead, Lines};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ClaudeError, Invocation, Outcome, Progress};

/// Silence allowed before the CLI's first line, whatever `--silence-timeout` says: start-up on
/// a loaded machine can take seconds.
const STARTUP_ALLOWANCE: Duration = Duration::from_secs(30);

/// The `subtype` of a result the CLI stopped at `--max-budget-usd`.
const BUDGET_SUBTYPE: &str = "error_max_budget_usd";
/// The `subtype` of a result the CLI stopped at `--max-turns`.
const MAX_TURNS_SUBTYPE: &str = "error_max_turns";

/// Reads stream lines into `reader` under the invocation's limits: until the end of the stream,
/// or (with `until_result`) until a `result` line. `Ok(true)` when a result line was read.
/// `started` tells whether the process printed anything yet (its start-up allowance).
pub(super) async fn read_turn<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
    reader: &mut StreamReader,
    started: &mut bool,
    inv: &Invocation<'_>,
    until_result: bool,
    progress: &mpsc::UnboundedSender<Progress>,
    cancel: &CancellationToken,
) -> Result<bool, ClaudeError> {
    let deadline = Instant::now() + inv.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClaudeError::Timeout(inv.timeout));
        }
        // The silence limit is for a stream that goes quiet; a CLI still starting up on a
        // loaded machine gets at least STARTUP_ALLOWANCE (the wall-clock limit still holds).
        let silence = if *started {
            inv.silence_timeout
        } else {
            inv.silence_timeout.max(STARTUP_ALLOWANCE)
        };
        let wait = left.min(silence);
        tokio::select! {
            _ = cancel.cancelled() => return Err(ClaudeError::Cancelled),
            line = tokio::time::timeout(wait, lines.next_line()) => match line {
                Err(_) if wait == silence => return Err(ClaudeError::Silent(silence)),
                Err(_) => return Err(ClaudeError::Timeout(inv.timeout)),
                Ok(Ok(Some(line))) => {
                    *started = true;
                    if let Some(stop) = reader.line(&line, progress) {
                        return Err(stop);
                    }
                    if until_result && reader.has_result() {
                        return Ok(true);
                    }
                }
                Ok(Ok(None)) => return Ok(reader.has_result()),
                Ok(Err(e)) => return Err(ClaudeError::Io(e)),
            },
        }
    }
}

/// What one turn's stream said so far.
pub(super) struct StreamReader {
    cwd: PathBuf,
    expected: ClaudeSessionId,
    init_session: Option<String>,
    result: Option<Value>,
    files: Vec<String>,
    context_tokens: u64,
    /// The turn's last assistant message: a warm turn waits for it to be in the transcript.
    pub(super) last_assistant_uuid: Option<String>,
    result_at: Option<SystemTime>,
}

impl StreamReader {
    /// A reader for a run in `cwd` that must continue session `expected`.
    pub(super) fn new(cwd: &Path, expected: ClaudeSessionId) -> Self {
        Self {
            cwd: cwd.to_owned(),
            expected,
            init_session: None,
            result: None,
            files: Vec::new(),
            context_tokens: 0,
            last_assistant_uuid: None,
            result_at: None,
        }
    }

    fn has_result(&self) -> bool {
        self.result.is_some()
    }

    /// Takes one line; returns an error when the run must stop now.
    pub(super) fn line(
        &mut self,
        line: &str,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Option<ClaudeError> {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return None;
        };
        match (
            v.get("type").and_then(Value::as_str),
            v.get("subtype").and_then(Value::as_str),
        ) {
            (Some("system"), Some("init")) => {
                self.init_session = v
                    .get("session_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            (Some("system"), Some("api_retry")) => return self.api_retry(&v, progress),
            (Some("assistant"), _) => self.assistant(&v, progress),
            (Some("result"), _) => {
                self.result = Some(v);
                self.result_at = Some(SystemTime::now());
            }
            _ => {}
        }
        None
    }

    /// The CLI retrying an API error inside itself: reported, or the run stopped at once for
    /// a status that will never succeed (the CLI would retry a 401 for minutes).
    fn api_retry(
        &self,
        v: &Value,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Option<ClaudeError> {
        let status = v
            .get("error_status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        if matches!(status, Some(400 | 401 | 403)) {
            return Some(ClaudeError::Api {
                status,
                message: v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("request refused")
                    .to_owned(),
            });
        }
        let _ = progress.send(Progress::ApiRetry {
            status,
            attempt: v.get("attempt").and_then(Value::as_u64).unwrap_or(0),
            delay_ms: v.get("retry_delay_ms").and_then(Value::as_u64).unwrap_or(0),
        });
        None
    }

    fn assistant(&mut self, v: &Value, progress: &mpsc::UnboundedSender<Progress>) {
        if let Some(u) = v.get("uuid").and_then(Value::as_str) {
            self.last_assistant_uuid = Some(u.to_owned());
        }
        let msg = v.get("message");
        if let Some(u) = msg.and_then(|m| m.get("usage")) {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.context_tokens = n("input_tokens")
                + n("cache_read_input_tokens")
                + n("cache_creation_input_tokens")
                + n("output_tokens");
        }
        let blocks = msg
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"));
        for block in blocks {
            let tool = block
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let file_path = block
                .get("input")
                .and_then(|i| i.get("file_path").or_else(|| i.get("notebook_path")))
                .and_then(Value::as_str)
                .map(|p| self.relative(p));
            let writes = matches!(
                tool.as_str(),
                "Write" | "Edit" | "MultiEdit" | "NotebookEdit"
            );
            if let (true, Some(f)) = (writes, &file_path) {
                if !self.files.contains(f) {
                    self.files.push(f.clone());
                }
            }
            let _ = progress.send(Progress::ToolUse { tool, file_path });
        }
    }

    fn relative(&self, p: &str) -> String {
        Path::new(p)
            .strip_prefix(&self.cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.to_owned())
    }

    /// The run's outcome, from its result line (if any), the process status and stderr.
    pub(super) fn finish(self, status: String, stderr: String) -> Result<Outcome, ClaudeError> {
        let expected = self.expected.to_string();
        let Some(r) = self.result else {
            if stderr.contains("No conversation found") {
                return Err(ClaudeError::NoConversation(stderr));
            }
            return Err(ClaudeError::NoResult { status, stderr });
        };
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let is_error = r.get("is_error").and_then(Value::as_bool).unwrap_or(true);
        let subtype = s("subtype");
        let text = s("result");
        if is_error || subtype != "success" {
            return Err(failure(&r, subtype, text, stderr));
        }
        // Never trust an id from a run that did not continue the conversation we asked for.
        let got = s("session_id");
        if got != expected || self.init_session.as_deref().is_some_and(|i| i != expected) {
            return Err(ClaudeError::SessionMismatch { expected, got });
        }
        let usage = r.get("usage");
        let n = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Ok(Outcome {
            result: text,
            cost_usd: r
                .get("total_cost_usd")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            input_tokens: n("input_tokens")
                + n("cache_read_input_tokens")
                + n("cache_creation_input_tokens"),
            output_tokens: n("output_tokens"),
            context_tokens: self.context_tokens,
            files: self.files,
            result_at: self.result_at.unwrap_or_else(SystemTime::now),
            structured: r.get("structured_output").filter(|v| !v.is_null()).cloned(),
        })
    }
}

/// The error a failed `result` stands for. The CLI keeps `subtype: success` on API errors, so
/// `api_error_status` is read first.
fn failure(r: &Value, subtype: String, text: String, stderr: String) -> ClaudeError {
    if let Some(status) = r.get("api_error_status").and_then(Value::as_u64) {
        return ClaudeError::Api {
            status: u16::try_from(status).ok(),
            message: text,
        };
    }
    if stderr.contains("No conversation found") || text.contains("No conversation found") {
        return ClaudeError::NoConversation(if text.is_empty() { stderr } else { text });
    }
    if text.starts_with("API Error") {
        return ClaudeError::Api {
            status: None,
            message: text,
        };
    }
    let message = if text.is_empty() { stderr } else { text };
    if subtype == BUDGET_SUBTYPE {
        return ClaudeError::BudgetSpent(message);
    }
    if subtype == MAX_TURNS_SUBTYPE {
        let turns = r
            .get("num_turns")
            .map(ToString::to_string)
            .unwrap_or_default();
        return ClaudeError::MaxTurns(if message.is_empty() {
            format!("stopped after {turns} turns")
        } else {
            message
        });
    }
    ClaudeError::Unsuccessful { subtype, message }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
