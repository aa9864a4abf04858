//! What runs a task, and how sessions are kept between tasks.
//!
//! Production runs the Claude Code CLI ([`Executor::Claude`]), one process per held plan
//! ([`SessionMode::Warm`], the default) or one per task ([`SessionMode::Cold`]). The two other
//! executors exist for benchmarks of the queue itself: [`Executor::Instant`] answers in-process
//! at once, [`Executor::Spawn`] runs a trivial program per task. Both still go through every
//! step of baton's own logic (lease, session record, transcript packed and committed, restore
//! check, events), since they write a transcript line per task where the CLI would.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::str::FromStr;
use std::time::SystemTime;

use crate::claude::{ClaudeError, Invocation, Outcome};
use crate::transcript::SessionFiles;

/// What runs each task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Executor {
    /// The Claude Code CLI.
    #[default]
    Claude,
    /// Benchmarks only: answers in-process at once.
    Instant,
    /// Benchmarks only: runs this program (no arguments, in the workspace) per task and
    /// answers when it exits 0.
    Spawn(PathBuf),
}

impl FromStr for Executor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "claude" => Ok(Self::Claude),
            "instant" => Ok(Self::Instant),
            _ => match s.strip_prefix("spawn:") {
                Some(p) if !p.is_empty() => Ok(Self::Spawn(PathBuf::from(p))),
                _ => Err(format!(
                    "unknown executor {s:?}: expected claude, instant or spawn:<program>"
                )),
            },
        }
    }
}

impl fmt::Display for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Claude => f.write_str("claude"),
            Self::Instant => f.write_str("instant"),
            Self::Spawn(p) => write!(f, "spawn:{}", p.display()),
        }
    }
}

/// How the CLI process relates to tasks (named in baton-core: `task_started` carries it).
pub use baton_core::event::SessionMode;

/// Runs a task with a benchmark executor: spawns the program if there is one, then appends a
/// line to the session's transcript (creating it for a new session), as the CLI would.
pub(crate) async fn run_without_cli(
    executor: &Executor,
    inv: &Invocation<'_>,
) -> Result<Outcome, ClaudeError> {
    if let Executor::Spawn(program) = executor {
        let status = tokio::process::Command::new(program)
            .current_dir(inv.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|source| ClaudeError::Spawn {
                bin: program.display().to_string(),
                source,
            })?;
        if !status.success() {
            return Err(ClaudeError::NoResult {
                status: status.to_string(),
                stderr: String::new(),
            });
        }
    }
    // Plain std::fs: appending a line to a local file takes microseconds, less than handing
    // it to tokio's blocking pool would.
    let session = inv.session.id();
    let path = SessionFiles::new(inv.config_dir, inv.cwd, session).jsonl();
    let line = serde_json::json!({
        "type": "user",
        "sessionId": session.to_string(),
        "prompt_bytes": inv.prompt.len(),
    });
    let append = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = match std::fs::OpenOptions::new().append(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?
            }
            Err(e) => return Err(e),
        };
        // One write: `writeln!` on an unbuffered file would write each formatted piece apart.
        let mut text = line.to_string();
        text.push('\n');
        file.write_all(text.as_bytes())
    };
    append()?;
    Ok(Outcome {
        result: "ok".into(),
        cost_usd: 0.0,
        input_tokens: 0,
        output_tokens: 0,
        context_tokens: 0,
        files: Vec::new(),
        result_at: SystemTime::now(),
        structured: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_and_modes_parse_and_print_back() {
        for s in ["claude", "instant", "spawn:/bin/true"] {
            assert_eq!(s.parse::<Executor>().unwrap().to_string(), s);
        }
        assert!("spawn:".parse::<Executor>().is_err());
        assert!("fast".parse::<Executor>().unwrap_err().contains("instant"));
        assert_eq!("cold".parse::<SessionMode>().unwrap(), SessionMode::Cold);
        assert!("hot".parse::<SessionMode>().is_err());
    }
}
