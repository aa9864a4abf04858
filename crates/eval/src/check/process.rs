//! Running one tool of a toolchain: stdin closed, its output captured, in a process group of
//! its own (`npm`, `node --test` and `cargo` start children), killed with that group when it
//! outlives its time. When the future running it is dropped, only the tool itself is killed
//! (`kill_on_drop`); what it started ends when its pipes close.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::CheckError;

/// How long one checking tool (`tsc`, `mypy`, `cargo check`, a test run) may take.
pub(super) const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one install step (`npm install`, `pip install`) may take.
pub(super) const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What a tool left.
#[derive(Debug)]
pub(super) struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Ran {
    pub(super) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The end of stdout and stderr together, for a report or an error.
    pub(super) fn tail(&self) -> String {
        tail(&format!("{}\n{}", self.stdout, self.stderr), 30)
    }
}

/// How a tool run ended when it did not end by itself.
#[derive(Debug)]
pub(super) enum RunFailure {
    /// It could not be started (not installed, not executable).
    Spawn(std::io::Error),
    /// It ran past its time and was killed.
    TimedOut(Duration),
}

impl RunFailure {
    /// The failure as a [`CheckError`] of `tool`.
    pub(super) fn into_error(self, tool: &str) -> CheckError {
        match self {
            RunFailure::Spawn(source) => CheckError::Run {
                tool: tool.to_owned(),
                source,
            },
            RunFailure::TimedOut(after) => CheckError::Tool {
                tool: tool.to_owned(),
                detail: format!("timed out after {} s", after.as_secs()),
            },
        }
    }
}

/// Runs `program args` in `cwd` with `env` added to this process's environment, for at most
/// `timeout`.
pub(super) async fn run(
    program: &Path,
    args: &[&OsStr],
    cwd: &Path,
    env: &[(&str, &OsStr)],
    timeout: Duration,
) -> Result<Ran, RunFailure> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(RunFailure::Spawn)?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(source)) => Err(RunFailure::Spawn(source)),
        Err(_) => {
            kill_group(pid);
            Err(RunFailure::TimedOut(timeout))
        }
    }
}

/// `pairs` in the shape [`run`] takes.
pub(super) fn env_of(
    pairs: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static OsStr)> {
    pairs.iter().map(|(k, v)| (*k, OsStr::new(*v))).collect()
}

/// Kills the process group of a tool that ran too long (the child itself goes with the dropped
/// future, `kill_on_drop`; the group takes the children it started).
#[expect(
    unsafe_code,
    reason = "kill(2) on a child's process group; libc has no safe wrapper"
)]
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the group this child leads
        // (`process_group(0)`); it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// The last `lines` lines of `text`, trimmed, at most 4000 characters.
pub(super) fn tail(text: &str, lines: usize) -> String {
    let text = text.trim();
    let all: Vec<&str> = text.lines().collect();
    let kept = all[all.len().saturating_sub(lines)..].join("\n");
    let skip = kept.chars().count().saturating_sub(4000);
    kept.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 3), "");
        assert_eq!(tail("only", 3), "only");
    }

    #[tokio::test]
    async fn a_tool_past_its_time_is_killed_with_its_children() {
        let dir = std::env::temp_dir();
        let pidfile = dir.join(format!("baton-eval-child-{}", std::process::id()));
        let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
        let began = std::time::Instant::now();
        let out = run(
            Path::new("sh"),
            &["-c".as_ref(), script.as_ref()],
            &dir,
            &[],
            Duration::from_millis(500),
        )
        .await;
        assert!(matches!(out, Err(RunFailure::TimedOut(_))), "{out:?}");
        assert!(began.elapsed() < Duration::from_secs(5));
        // The child it started went with its group.
        let child = std::fs::read_to_string(&pidfile).expect("the child's pid");
        let _ = std::fs::remove_file(&pidfile);
        let proc_dir = Path::new("/proc").join(child.trim());
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            // Gone, or a zombie waiting for init to reap it.
            std::fs::read_to_string(proc_dir.join("stat"))
                .map_or(true, |s| s.split_whitespace().nth(2) == Some("Z"))
        });
        assert!(
            gone,
            "the tool's child {} outlived its group's kill",
            child.trim()
        );
    }

    #[tokio::test]
    async fn a_missing_tool_is_a_spawn_failure() {
        let out = run(
            Path::new("/nonexistent/tool"),
            &[],
            &std::env::temp_dir(),
            &[],
            TOOL_TIMEOUT,
        )
        .await;
        assert!(matches!(out, Err(RunFailure::Spawn(_))), "{out:?}");
    }
}
