//! Cold runs: one `claude -p` process per task, the prompt on stdin (plain text, whatever it
//! starts with), stdin then closed so the CLI never waits for more.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::process::{spawn, stderr_tail, terminate};
use super::stream::{read_turn, StreamReader};
use super::{ClaudeError, Invocation, Outcome, Progress};

/// How long a CLI that closed its output gets to exit before it is stopped.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Runs one task. Progress goes to `progress` as it happens; `cancel` stops the run (the child's
/// process group is terminated) and yields [`ClaudeError::Cancelled`].
///
/// # Errors
/// Any [`ClaudeError`]; see [`ClaudeError::decision`] for what each means.
pub(crate) async fn run(
    inv: &Invocation<'_>,
    progress: &mpsc::UnboundedSender<Progress>,
    cancel: &CancellationToken,
) -> Result<Outcome, ClaudeError> {
    let mut child = spawn(inv, false, false)?;
    // Piped in `process::command`, so each is there exactly once.
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let stdout = child.stdout.take().expect("stdout was piped");
    let read_stderr = stderr_tail(child.stderr.take().expect("stderr was piped"));
    let prompt = inv.prompt.to_owned();
    let write_prompt = async move {
        let _ = stdin.write_all(prompt.as_bytes()).await;
        let _ = stdin.shutdown().await;
    };
    let mut reader = StreamReader::new(inv.model_cwd(), inv.session.id());
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
    let status = match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            terminate(&mut child).await;
            child.wait().await?
        }
    };
    read?;
    reader.finish(status.to_string(), stderr_tail)
}
