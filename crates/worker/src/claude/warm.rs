//! Warm sessions: one long-lived CLI process per held plan in `--input-format stream-json`
//! mode, fed each task as a user message, which saves the CLI's start-up (about 0.45 s) on
//! every task of a hold but the first. Each turn is read with the same limits and checks as a
//! cold run, then the worker waits until the transcript holds the turn before it is committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_core::ClaudeSessionId;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::process::{spawn, stderr_tail, terminate};
use super::stream::{read_turn, StreamReader};
use super::{ClaudeError, Invocation, Outcome, Progress, SessionArg};
use crate::transcript::SessionFiles;

/// How long a warm turn waits for the CLI to have written the turn to its transcript after
/// the `result` line (2.1.331 writes before; older versions 60-100 ms after).
const TRANSCRIPT_WAIT: Duration = Duration::from_secs(5);
/// How long a process whose stream ended gets to report its exit status.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long a closed process gets to exit on its own before it is stopped.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// One long-lived CLI process for one plan's session, fed a task per message.
///
/// Only the hold that started it uses it. The hold closes it when the plan is released, aborts
/// it on any failure (the task then runs again from the committed transcript in a new
/// process), and does not reuse it for a conversation it did not produce itself, with other
/// settings, or once it sat idle too long.
pub(crate) struct WarmSession {
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
    /// A claimed spare's own gateway grant (counted as the hold's): good while this process is.
    grant: Option<crate::gateway::Grant>,
}

/// How long a spare gets to answer its claim (it may still be starting).
const CLAIM_WAIT: Duration = Duration::from_secs(30);
/// The request id of a spare's claim.
const CLAIM_ID: &str = "baton-claim";

impl WarmSession {
    /// Starts the process for `inv`'s session (new or resumed); the first task is sent by
    /// [`WarmSession::turn`].
    ///
    /// # Errors
    /// [`ClaudeError::Spawn`].
    pub(crate) fn start(inv: &Invocation<'_>) -> Result<Self, ClaudeError> {
        Self::spawned(inv, false)
    }

    /// Starts a spare for `inv`'s new session: it parks until [`WarmSession::claim`].
    ///
    /// # Errors
    /// [`ClaudeError::Spawn`].
    pub(crate) fn park(inv: &Invocation<'_>) -> Result<Self, ClaudeError> {
        Self::spawned(inv, true)
    }

    fn spawned(inv: &Invocation<'_>, parked: bool) -> Result<Self, ClaudeError> {
        let mut child = spawn(inv, true, parked)?;
        // Piped in `process::command`, so each is there exactly once.
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
            cwd: inv.model_cwd().to_owned(),
            transcript: SessionFiles::new(inv.config_dir, inv.cwd, session).jsonl(),
            fingerprint: fingerprint(inv),
            cost_so_far: 0.0,
            started: false,
            last_used: Instant::now(),
            grant: None,
        })
    }

    /// Binds a parked spare to `inv`'s session, whose folders it already sees (the spare's
    /// were handed over): a `claim_session` for the working directory `inv`'s CLI sees, and its
    /// answer awaited. The process then runs `inv` as if started for it, and keeps `grant`.
    ///
    /// # Errors
    /// What the CLI said, or that it said nothing (the process must then be dropped).
    pub(crate) async fn claim(
        mut self,
        inv: &Invocation<'_>,
        grant: crate::gateway::Grant,
    ) -> Result<Self, String> {
        let request = serde_json::json!({"type": "control_request", "request_id": CLAIM_ID,
            "request": {"subtype": "claim_session", "cwd": inv.model_cwd()}});
        let mut line = request.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("the spare's stdin: {e}"))?;
        self.stdin.flush().await.map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(CLAIM_WAIT, claim_answer(&mut self.lines))
            .await
            .map_err(|_| format!("no answer to the claim within {CLAIM_WAIT:?}"))??;
        if answer["subtype"] != "success" {
            return Err(format!("the claim was refused: {answer}"));
        }
        self.cwd = inv.model_cwd().to_owned();
        self.transcript = SessionFiles::new(inv.config_dir, inv.cwd, self.session).jsonl();
        self.fingerprint = fingerprint(inv);
        self.grant = Some(grant);
        self.last_used = Instant::now();
        Ok(self)
    }

    /// True when the process has exited (a spare that died while parked).
    pub(crate) fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The session the process runs.
    pub(crate) fn session(&self) -> ClaudeSessionId {
        self.session
    }

    /// True when this process can run `inv`: it resumes this process's session with the same
    /// settings, and the process has not sat idle past `idle_limit`. (Whether the committed
    /// conversation is the one this process produced is the hold's to say.)
    pub(crate) fn fits(&self, inv: &Invocation<'_>, idle_limit: Duration) -> bool {
        inv.session == SessionArg::Resume(self.session)
            && self.fingerprint == fingerprint(inv)
            && self.last_used.elapsed() < idle_limit
    }

    /// Sends `inv.prompt` as the next user message and reads the turn to its `result`, under
    /// the same limits as a cold run; then waits until the transcript holds the turn.
    ///
    /// # Errors
    /// Any [`ClaudeError`]. The process must then be [aborted](WarmSession::abort).
    pub(crate) async fn turn(
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
            let status = match tokio::time::timeout(EXIT_WAIT, self.child.wait()).await {
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
    /// machine before it returns (`engine::Closing` makes a later hold of the plan wait).
    pub(crate) async fn close(self) {
        let Self {
            mut child,
            stdin,
            grant,
            ..
        } = self;
        // A spare's token ends with its hold, not with the process's way out.
        drop(grant);
        drop(stdin);
        if tokio::time::timeout(CLOSE_WAIT, child.wait())
            .await
            .is_err()
        {
            terminate(&mut child).await;
        }
    }

    /// Holds every process of this CLI's box (or, unboxed, of its process tree) still until
    /// the returned value is dropped: the CLI itself, and whatever its tools left running.
    pub(crate) async fn freeze(&self) -> Option<crate::sandbox::freeze::Frozen> {
        let root = self.child.id()?;
        // It waits (briefly) for each stop to land: not on the runtime's threads.
        tokio::task::spawn_blocking(move || crate::sandbox::freeze::freeze(root))
            .await
            .ok()
    }

    /// Stops the process at once (a failed or interrupted turn): its process group gets
    /// SIGTERM, then SIGKILL. Returns when it is gone, so nothing it does outlives the lease.
    pub(crate) async fn abort(mut self) {
        self.grant = None;
        terminate(&mut self.child).await;
    }
}

/// What a process is started with, besides its session and budget: a task that needs anything
/// else needs another process.
fn fingerprint(inv: &Invocation<'_>) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}",
        inv.bin.display(),
        inv.cwd.display(),
        inv.config_dir.display(),
        serde_json::to_string(inv.options).unwrap_or_default(),
        inv.json_schema.unwrap_or_default()
    )
}

/// Reads a spare's stdout to the answer to its claim (what it prints while parked is skipped):
/// the answer's `response` object.
async fn claim_answer(
    lines: &mut Lines<BufReader<ChildStdout>>,
) -> Result<serde_json::Value, String> {
    loop {
        let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? else {
            return Err("the spare exited before it answered the claim".into());
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["type"] == "control_response" && v["response"]["request_id"] == CLAIM_ID {
            return Ok(v["response"].clone());
        }
    }
}

/// How much of the transcript's end is searched for the turn's last message.
const TRANSCRIPT_TAIL: u64 = 4 << 20;

/// The last [`TRANSCRIPT_TAIL`] bytes of the transcript, read through `open_inside`: the file
/// is writable from the box, and a link there (to `/dev/zero`, a FIFO, a worker file) must
/// neither be read nor hang the worker.
fn transcript_tail(path: &Path) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let dir = path.parent()?;
    let mut f =
        crate::transcript::open_inside(path, dir, std::fs::OpenOptions::new().read(true)).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TRANSCRIPT_TAIL)))
        .ok()?;
    let mut bytes = Vec::new();
    f.take(TRANSCRIPT_TAIL).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Waits until the transcript file holds `uuid` (the turn's last assistant message).
async fn wait_for_transcript(path: &Path, uuid: &str, within: Duration) -> Result<(), ClaudeError> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(bytes) = transcript_tail(path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("baton-warm-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("s.jsonl")
    }

    /// The warm turn's wait for its transcript: done as soon as the turn's last message is in
    /// the file (written late, as older CLIs do), and a typed failure after the limit when it
    /// never comes (on the paused clock: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn the_transcript_wait_ends_when_the_turn_is_written_or_at_its_limit() {
        let path = transcript();
        std::fs::write(&path, "{\"uuid\":\"earlier\"}\n").unwrap();
        let late = path.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut text = std::fs::read_to_string(&late).unwrap();
            text.push_str("{\"uuid\":\"the-turn\"}\n");
            std::fs::write(&late, text).unwrap();
        });
        let t0 = Instant::now();
        wait_for_transcript(&path, "the-turn", TRANSCRIPT_WAIT)
            .await
            .unwrap();
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(400),
            "{took:?}"
        );
        writer.await.unwrap();

        let t0 = Instant::now();
        let never = wait_for_transcript(&path, "another-turn", TRANSCRIPT_WAIT).await;
        assert!(
            matches!(never, Err(ClaudeError::TranscriptLag(d)) if d == TRANSCRIPT_WAIT),
            "{never:?}"
        );
        assert!(t0.elapsed() >= TRANSCRIPT_WAIT);
        // A link planted in the project folder is never followed.
        let link = path.with_file_name("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let linked = wait_for_transcript(&link, "the-turn", Duration::from_millis(50)).await;
        assert!(linked.is_err(), "a link is not read");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
