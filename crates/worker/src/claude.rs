//! Runs one task through the Claude Code CLI and reads its stream-json output.
//!
//! The CLI runs in its own process group with stdin carrying the prompt (never an argument the
//! CLI could read as a flag), under a wall-clock limit and a silence limit. Its stream is read
//! as it arrives: tool uses are reported as progress, `api_retry` announcements for statuses
//! that will never succeed stop the run at once, and only a final `result` with `subtype`
//! `success` and `is_error` false counts as success. Every failure is a [`ClaudeError`] that
//! carries its retry decision.
//!
//! Two ways to run a task: [`run`] starts one process per task (cold), and [`WarmSession`]
//! keeps one process per held plan in `--input-format stream-json` mode and feeds it each task
//! as a message (warm), which saves the CLI's start-up (about 0.45 s) on every task but the
//! first. Both read the same stream with the same limits and checks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use baton_core::{ClaudeSessionId, PlanOptions};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Silence allowed before the CLI's first line, whatever `--silence-timeout` says: start-up on
/// a loaded machine can take seconds.
const STARTUP_ALLOWANCE: Duration = Duration::from_secs(30);

/// How the run starts its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionArg {
    /// `--session-id`: a new conversation with an id chosen by baton.
    New(ClaudeSessionId),
    /// `--resume`: continue the committed conversation.
    Resume(ClaudeSessionId),
}

impl SessionArg {
    /// The session id either way.
    pub fn id(self) -> ClaudeSessionId {
        match self {
            Self::New(id) | Self::Resume(id) => id,
        }
    }
}

/// One CLI run.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub bin: &'a Path,
    pub cwd: &'a Path,
    pub config_dir: &'a Path,
    pub session: SessionArg,
    pub options: &'a PlanOptions,
    /// What is left of the plan's budget, passed as `--max-budget-usd`.
    pub budget_left_usd: Option<f64>,
    pub prompt: &'a str,
    pub timeout: Duration,
    pub silence_timeout: Duration,
}

/// Something seen on the stream while the task runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
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
pub struct Outcome {
    pub session_id: String,
    pub result: String,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Size of the conversation at the last model call (input incl. cache + output).
    pub context_tokens: u64,
    pub duration_ms: u64,
    pub num_turns: u64,
    /// Files written or edited, relative to the workspace when inside it.
    pub files: Vec<String>,
    /// When the `result` line was read.
    pub result_at: SystemTime,
}

/// What to do about a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Transient: try again, resuming the same committed conversation.
    Retry,
    /// The conversation cannot be resumed: start a new session seeded with a recap.
    NewSession,
    /// Will not succeed by trying again: stop the plan.
    Fail,
}

/// A run that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClaudeError {
    #[error("error starting the Claude CLI ({bin})")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("API error {}: {message}", status.map(|s| s.to_string()).unwrap_or_else(|| "(no status)".into()))]
    Api {
        status: Option<u16>,
        message: String,
    },
    #[error("the CLI found no conversation to resume: {0}")]
    NoConversation(String),
    #[error("the CLI reported session {got}, expected {expected}")]
    SessionMismatch { expected: String, got: String },
    #[error("the run ended with {subtype}: {message}")]
    Unsuccessful { subtype: String, message: String },
    #[error("the CLI ran past the task timeout of {0:?}")]
    Timeout(Duration),
    #[error("the CLI printed nothing for {0:?}")]
    Silent(Duration),
    #[error("the CLI exited ({status}) without a result: {stderr}")]
    NoResult { status: String, stderr: String },
    #[error("the run was stopped (lease lost or shutdown)")]
    Cancelled,
    #[error("the CLI's transcript did not show the turn's last message within {0:?}")]
    TranscriptLag(Duration),
    #[error("error reading the CLI's output")]
    Io(#[from] std::io::Error),
}

impl ClaudeError {
    /// The retry decision this failure carries.
    pub fn decision(&self) -> Decision {
        match self {
            Self::Api {
                status: Some(400 | 401 | 403),
                ..
            } => Decision::Fail,
            Self::Api { .. } => Decision::Retry,
            Self::NoConversation(_) => Decision::NewSession,
            Self::SessionMismatch { .. } => Decision::NewSession,
            Self::Unsuccessful { subtype, .. } if subtype == "error_max_budget_usd" => {
                Decision::Fail
            }
            Self::Unsuccessful { .. } => Decision::Retry,
            Self::Spawn { .. } => Decision::Fail,
            Self::Timeout(_)
            | Self::Silent(_)
            | Self::NoResult { .. }
            | Self::TranscriptLag(_)
            | Self::Io(_) => Decision::Retry,
            Self::Cancelled => Decision::Retry,
        }
    }
}

/// Environment variables the child must not inherit: they would make the CLI believe it runs
/// inside another Claude Code session, or change its behaviour behind baton's back.
fn scrubbed(name: &str) -> bool {
    name == "CLAUDECODE" || name.starts_with("CLAUDE_CODE_")
}

fn command(inv: &Invocation<'_>, warm: bool) -> Command {
    let mut cmd = Command::new(inv.bin);
    cmd.arg("-p");
    if warm {
        cmd.arg("--input-format=stream-json");
    }
    cmd.arg("--output-format=stream-json")
        .arg("--verbose")
        .arg(format!(
            "--permission-mode={}",
            inv.options.permission_mode.unwrap_or_default().as_cli_arg()
        ));
    match inv.session {
        SessionArg::New(id) => cmd.arg(format!("--session-id={id}")),
        SessionArg::Resume(id) => cmd.arg(format!("--resume={id}")),
    };
    if let Some(m) = &inv.options.model {
        cmd.arg(format!("--model={m}"));
    }
    for t in inv.options.allowed_tools.iter().flatten() {
        cmd.arg(format!("--allowed-tools={t}"));
    }
    if let Some(s) = &inv.options.append_system_prompt {
        cmd.arg(format!("--append-system-prompt={s}"));
    }
    if let Some(b) = inv.budget_left_usd {
        cmd.arg(format!("--max-budget-usd={b:.4}"));
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(scrubbed) {
            cmd.env_remove(&name);
        }
    }
    cmd.env("CLAUDE_CONFIG_DIR", inv.config_dir)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .current_dir(inv.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Starts the CLI for `inv` (`warm`: reading stream-json messages on stdin).
fn spawn(inv: &Invocation<'_>, warm: bool) -> Result<Child, ClaudeError> {
    command(inv, warm)
        .spawn()
        .map_err(|source| ClaudeError::Spawn {
            bin: inv.bin.display().to_string(),
            source,
        })
}

/// Reads the child's stderr to its end (at most 1 MiB) and keeps the last 2,000 characters,
/// for error messages.
async fn stderr_tail(mut stderr: ChildStderr) -> String {
    let mut buf = Vec::new();
    let _ = (&mut stderr).take(1 << 20).read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf);
    let skip = text.chars().count().saturating_sub(2000);
    text.chars()
        .skip(skip)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Sends `signal` to the child's whole process group (the CLI starts helpers of its own).
#[allow(unsafe_code)]
fn signal_group(child: &Child, signal: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory of
        // ours. The group was created for this child (`process_group(0)`), so its id is the pid.
        unsafe {
            libc::kill(-(pid as i32), signal);
        }
    }
}

/// Stops the child: SIGTERM to its group, a short grace, then SIGKILL.
async fn terminate(child: &mut Child) {
    signal_group(child, libc::SIGTERM);
    if tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .is_err()
    {
        signal_group(child, libc::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Runs one task. Progress goes to `progress` as it happens; `cancel` stops the run (the child's
/// process group is terminated) and yields [`ClaudeError::Cancelled`].
///
/// # Errors
/// Any [`ClaudeError`]; see [`ClaudeError::decision`] for what each means.
pub async fn run(
    inv: &Invocation<'_>,
    progress: &mpsc::UnboundedSender<Progress>,
    cancel: &CancellationToken,
) -> Result<Outcome, ClaudeError> {
    let mut child = spawn(inv, false)?;
    // The prompt goes on stdin, then stdin closes: the CLI reads it as plain text, whatever it
    // starts with, and never waits for more.
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let prompt = inv.prompt.to_owned();
    let write_prompt = async move {
        let _ = stdin.write_all(prompt.as_bytes()).await;
        let _ = stdin.shutdown().await;
    };
    let stdout = child.stdout.take().expect("stdout was piped");
    let read_stderr = stderr_tail(child.stderr.take().expect("stderr was piped"));
    let mut reader = StreamReader::new(inv.cwd, inv.session.id());
    let read_stdout = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut started = false;
        read_turn(
            &mut lines,
            &mut reader,
            &mut started,
            inv,
            false,
            progress,
            cancel,
        )
        .await
        .map(|_| ())
    };
    // Stop the child as soon as the stream says so: stderr only ends when the child does.
    let stdout_then_stop = async {
        let (read, ()) = tokio::join!(read_stdout, write_prompt);
        if read.is_err() {
            terminate(&mut child).await;
        }
        read
    };
    let (read, stderr_tail) = tokio::join!(stdout_then_stop, read_stderr);
    // Its output is closed; a CLI that does not exit soon after is stopped, never waited on forever.
    let status = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            terminate(&mut child).await;
            child.wait().await?
        }
    };
    read?;
    reader.finish(status.to_string(), stderr_tail)
}

/// Reads stream lines into `reader` under the invocation's limits: until the end of the stream,
/// or (with `until_result`) until a `result` line. `Ok(true)` when a result line was read.
async fn read_turn<R: AsyncBufRead + Unpin>(
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
                    if until_result && reader.result.is_some() {
                        return Ok(true);
                    }
                }
                Ok(Ok(None)) => return Ok(reader.result.is_some()),
                Ok(Err(e)) => return Err(ClaudeError::Io(e)),
            },
        }
    }
}

/// How long a warm turn waits for the CLI to have written the turn to its transcript after
/// the `result` line (2.1.331 writes before; older versions 60-100 ms after).
const TRANSCRIPT_WAIT: Duration = Duration::from_secs(5);

/// One long-lived CLI process for one plan's session, fed a task per message.
///
/// It is only ever used by the slot holding the plan's lease. Whoever holds it closes it when
/// the plan is released, aborts it on any failure (the task then runs again from the committed
/// transcript in a new process), and does not reuse it once it sat idle too long or once the
/// committed session is not the one it last produced.
pub struct WarmSession {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    session: ClaudeSessionId,
    cwd: PathBuf,
    transcript: PathBuf,
    fingerprint: String,
    /// `total_cost_usd` is the process's running total: each task costs the difference.
    cost_so_far: f64,
    started: bool,
    last_used: Instant,
    /// The digest of the transcript committed after this process's last turn.
    committed_digest: Option<String>,
}

impl WarmSession {
    /// Starts the process for `inv`'s session (new or resumed); the first task is sent by
    /// [`WarmSession::turn`].
    ///
    /// # Errors
    /// [`ClaudeError::Spawn`].
    pub fn start(inv: &Invocation<'_>) -> Result<Self, ClaudeError> {
        let mut child = spawn(inv, true)?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr = tokio::spawn(stderr_tail(child.stderr.take().expect("stderr was piped")));
        let session = inv.session.id();
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            stderr,
            session,
            cwd: inv.cwd.to_owned(),
            transcript: crate::transcript::SessionFiles::new(inv.config_dir, inv.cwd, session)
                .jsonl(),
            fingerprint: Self::fingerprint(inv),
            cost_so_far: 0.0,
            started: false,
            last_used: Instant::now(),
            committed_digest: None,
        })
    }

    /// What a process is started with, besides its session and budget: a task that needs
    /// anything else needs another process.
    fn fingerprint(inv: &Invocation<'_>) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            inv.bin.display(),
            inv.cwd.display(),
            inv.config_dir.display(),
            serde_json::to_string(inv.options).unwrap_or_default()
        )
    }

    /// True when `inv` resumes exactly the conversation this process holds: the same session,
    /// whose committed transcript (`committed_digest`) is the one this process produced, with
    /// the same settings, and the process has not sat idle past `idle_limit`.
    pub fn continues(
        &self,
        inv: &Invocation<'_>,
        committed_digest: &str,
        idle_limit: Duration,
    ) -> bool {
        inv.session == SessionArg::Resume(self.session)
            && self.committed_digest.as_deref() == Some(committed_digest)
            && self.fingerprint == Self::fingerprint(inv)
            && self.last_used.elapsed() < idle_limit
    }

    /// Records the digest of the transcript committed after the last turn.
    pub fn committed(&mut self, digest: &str) {
        self.committed_digest = (!digest.is_empty()).then(|| digest.to_owned());
    }

    /// Sends `inv.prompt` as the next user message and reads the turn to its `result`, under
    /// the same limits as a cold run; then waits until the transcript holds the turn.
    ///
    /// # Errors
    /// Any [`ClaudeError`]. The process must then be [aborted](WarmSession::abort).
    pub async fn turn(
        &mut self,
        inv: &Invocation<'_>,
        progress: &mpsc::UnboundedSender<Progress>,
        cancel: &CancellationToken,
    ) -> Result<Outcome, ClaudeError> {
        let message = serde_json::json!({
            "type": "user",
            "message": {"role": "user", "content": inv.prompt},
        });
        let mut line = message.to_string();
        line.push('\n');
        // A failed write means the process is gone: the read below sees the end of its stream.
        let _ = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.flush().await
        }
        .await;
        let mut reader = StreamReader::new(&self.cwd, self.session);
        let got_result = read_turn(
            &mut self.lines,
            &mut reader,
            &mut self.started,
            inv,
            true,
            progress,
            cancel,
        )
        .await?;
        if !got_result {
            let status = match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await
            {
                Ok(Ok(s)) => s.to_string(),
                _ => "still running".to_owned(),
            };
            let stderr = tokio::time::timeout(Duration::from_secs(1), &mut self.stderr)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return reader.finish(status, stderr);
        }
        let last_uuid = reader.last_assistant_uuid.clone();
        let mut out = reader.finish("running".into(), String::new())?;
        let total = out.cost_usd;
        out.cost_usd = (total - self.cost_so_far).max(0.0);
        self.cost_so_far = total;
        if let Some(uuid) = last_uuid {
            wait_for_transcript(&self.transcript, &uuid, TRANSCRIPT_WAIT).await?;
        }
        self.last_used = Instant::now();
        Ok(out)
    }

    /// Ends the process after a clean last turn: closes its stdin and waits for it to exit
    /// (at most a few seconds, then it is stopped). The CLI appends a last line to the
    /// transcript on its way out, so nothing may resume or restore this session on this
    /// machine before it returns (the runner makes a later hold of the plan wait for it).
    pub async fn close(self) {
        let Self {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(3), child.wait())
            .await
            .is_err()
        {
            terminate(&mut child).await;
        }
    }

    /// Stops the process at once (a failed or interrupted turn): its process group gets
    /// SIGTERM, then SIGKILL. Returns when it is gone, so nothing it does outlives the lease.
    pub async fn abort(mut self) {
        terminate(&mut self.child).await;
    }
}

/// Waits until the transcript file holds `uuid` (the turn's last assistant message).
async fn wait_for_transcript(path: &Path, uuid: &str, within: Duration) -> Result<(), ClaudeError> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(bytes) = tokio::fs::read(path).await {
            if contains_bytes(&bytes, uuid.as_bytes()) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(ClaudeError::TranscriptLag(within));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True when `needle` occurs in `hay` (searched from the end: the newest lines are last).
fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).rev().any(|w| w == needle)
}

/// Reads the CLI's stream-json lines one by one.
struct StreamReader {
    cwd: PathBuf,
    expected: ClaudeSessionId,
    init_session: Option<String>,
    result: Option<Value>,
    files: Vec<String>,
    context_tokens: u64,
    last_assistant_uuid: Option<String>,
    result_at: Option<SystemTime>,
}

impl StreamReader {
    fn new(cwd: &Path, expected: ClaudeSessionId) -> Self {
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

    /// Takes one line; returns an error when the run must stop now.
    fn line(
        &mut self,
        line: &str,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Option<ClaudeError> {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            return None; // not JSON: the CLI's own chatter; the final result decides
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
            (Some("system"), Some("api_retry")) => {
                let status = v
                    .get("error_status")
                    .and_then(Value::as_u64)
                    .map(|s| s as u16);
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
            }
            (Some("assistant"), _) => {
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
                for block in msg
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if block.get("type").and_then(Value::as_str) != Some("tool_use") {
                        continue;
                    }
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
                    if matches!(
                        tool.as_str(),
                        "Write" | "Edit" | "MultiEdit" | "NotebookEdit"
                    ) {
                        if let Some(f) = &file_path {
                            if !self.files.contains(f) {
                                self.files.push(f.clone());
                            }
                        }
                    }
                    let _ = progress.send(Progress::ToolUse { tool, file_path });
                }
            }
            (Some("result"), _) => {
                self.result = Some(v);
                self.result_at = Some(SystemTime::now());
            }
            _ => {}
        }
        None
    }

    fn relative(&self, p: &str) -> String {
        Path::new(p)
            .strip_prefix(&self.cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| p.to_owned())
    }

    fn finish(self, status: String, stderr: String) -> Result<Outcome, ClaudeError> {
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
            if let Some(status) = r.get("api_error_status").and_then(Value::as_u64) {
                return Err(ClaudeError::Api {
                    status: Some(status as u16),
                    message: text,
                });
            }
            if stderr.contains("No conversation found") || text.contains("No conversation found") {
                return Err(ClaudeError::NoConversation(if text.is_empty() {
                    stderr
                } else {
                    text
                }));
            }
            if text.starts_with("API Error") {
                return Err(ClaudeError::Api {
                    status: None,
                    message: text,
                });
            }
            let message = if text.is_empty() { stderr } else { text };
            return Err(ClaudeError::Unsuccessful { subtype, message });
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
            session_id: got,
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
            duration_ms: r.get("duration_ms").and_then(Value::as_u64).unwrap_or(0),
            num_turns: r.get("num_turns").and_then(Value::as_u64).unwrap_or(0),
            files: self.files,
            result_at: self.result_at.unwrap_or_else(SystemTime::now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> (
        StreamReader,
        mpsc::UnboundedSender<Progress>,
        mpsc::UnboundedReceiver<Progress>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id: ClaudeSessionId = "6bbba7b0-f321-478c-b8a3-4f20b5839a74".parse().unwrap();
        (StreamReader::new(Path::new("/w/p"), id), tx, rx)
    }

    #[test]
    fn success_needs_subtype_success_and_no_error() {
        let (mut r, tx, mut rx) = reader();
        r.line(r#"{"type":"system","subtype":"init","session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74"}"#, &tx);
        r.line(r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"/w/p/a.py"}}],"usage":{"input_tokens":10,"output_tokens":5}}}"#, &tx);
        r.line(r#"{"type":"result","subtype":"success","is_error":false,"result":"done","session_id":"6bbba7b0-f321-478c-b8a3-4f20b5839a74","total_cost_usd":0.1,"usage":{"input_tokens":7,"output_tokens":3}}"#, &tx);
        assert_eq!(
            rx.try_recv().unwrap(),
            Progress::ToolUse {
                tool: "Write".into(),
                file_path: Some("a.py".into())
            }
        );
        let o = r.finish("exit status: 0".into(), String::new()).unwrap();
        assert_eq!(
            (o.result.as_str(), o.files.len(), o.context_tokens),
            ("done", 1, 15)
        );
    }

    #[test]
    fn failures_carry_their_decision() {
        let (mut r, tx, _rx) = reader();
        r.line(r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"result":"API Error: overloaded"}"#, &tx);
        assert_eq!(
            r.finish(String::new(), String::new())
                .unwrap_err()
                .decision(),
            Decision::Retry
        );

        let (mut r, tx, _rx) = reader();
        let stop = r.line(r#"{"type":"system","subtype":"api_retry","attempt":1,"error_status":401,"error":"authentication_failed"}"#, &tx);
        assert_eq!(stop.unwrap().decision(), Decision::Fail);

        let (r, _tx, _rx) = reader();
        let e = r
            .finish(
                "exit status: 1".into(),
                "No conversation found with session ID: x".into(),
            )
            .unwrap_err();
        assert_eq!(e.decision(), Decision::NewSession);

        let (mut r, tx, _rx) = reader();
        r.line(r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"00000000-0000-0000-0000-000000000000"}"#, &tx);
        assert!(matches!(
            r.finish(String::new(), String::new()),
            Err(ClaudeError::SessionMismatch { .. })
        ));

        let (r, _tx, _rx) = reader();
        assert_eq!(
            r.finish("signal: 9".into(), String::new())
                .unwrap_err()
                .decision(),
            Decision::Retry
        );
    }
}
