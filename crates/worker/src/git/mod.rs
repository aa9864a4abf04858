//! The code follows the plan: a plan with a `repo` keeps its files in git, one checkpoint commit
//! per task on the plan's branch, recorded in the same fenced Redis commit as the result and the
//! transcript, so files and conversation always rewind together.
//!
//! # Layout
//! - this module: running git safely ([`Git`]) and what can go wrong ([`GitError`]);
//! - `mirror`: a bare mirror per repository URL under `--state-dir`, fetched incrementally;
//! - `checkout`: a plan's work tree (its workspace) with its git dir kept outside it, reset to
//!   the checkpoint before every attempt, committed and pushed after a success;
//! - `local`: which local-path repositories a plan may name (`--repo-allow-path`).
//! - `nested`: repositories a task made inside its workspace, neutralised before a checkpoint.
//!
//! git runs with `GIT_TERMINAL_PROMPT=0` (never waits for a password), hooks and fsmonitor off,
//! the `ext`/`fd` transports refused (and `file` too unless a local folder is allowed), a timeout
//! on every call, in a process group of its own that is killed when the call times out. The
//! plan's git dir is never inside the workspace, so what the model writes there cannot configure
//! or hook the git baton runs. A local remote's own `receive-pack`/`upload-pack` do not see
//! settings given with `-c` (git clears them for the other repository), so for a local URL those
//! programs are named with the safe settings on their own command line: the remote's hooks and
//! `core.alternateRefsCommand` never run.

mod checkout;
mod local;
mod mirror;
mod nested;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::repo::redact;

use crate::decision::Decision;

pub(crate) use checkout::{Checkout, Checkpoint, CommitInfo, Committed};
pub(crate) use local::LocalRepos;

/// Settings every git call is made with, forced on the command line whatever the worker's
/// global config says: no hooks (the model can write files; it must not run code through
/// baton's git), no fsmonitor daemons, no command-running transports, no background gc.
const SAFE_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "protocol.ext.allow=never",
    "protocol.fd.allow=never",
    "gc.auto=0",
    "maintenance.auto=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
    // A repository the model made inside the workspace is never entered: git would read its
    // config (filters, textconv, fsmonitor) and run what it names, outside the box.
    "submodule.recurse=false",
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
    "fetch.recurseSubmodules=false",
    "push.recurseSubmodules=no",
];

/// What git keeps of the worker's environment: what finding and reaching remotes needs (PATH,
/// HOME for the operator's ssh keys and git config, an ssh agent, proxies, CA files), nothing
/// else. No `BATON_*`, no Redis URL, no API key: a program git starts never sees them.
const GIT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM",
    "XDG_CONFIG_HOME",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
];

/// What a local remote's own git programs run with (`--receive-pack`, `--upload-pack`): that
/// git clears `-c` settings for the other repository, so it would read the remote's config and
/// run its hooks and `core.alternateRefsCommand` (`true`: none, so no `.have` lines either).
const REMOTE_SAFE_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.alternateRefsCommand=true",
    "core.fsmonitor=false",
];

/// A git operation that failed, with what it means for the attempt.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GitError {
    #[error("cannot reach the repository {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("base {base:?} is not a branch, tag or commit of {url}")]
    UnknownBase { base: String, url: String },
    #[error("the plan's checkpoint {commit} is no longer in {url} (was the branch deleted?)")]
    CheckpointGone { commit: String, url: String },
    #[error("branch {branch} of {url} is at {at}, which is neither the plan's checkpoint nor an unrecorded commit of this plan: it was changed outside baton")]
    BranchMoved {
        branch: String,
        url: String,
        at: String,
    },
    #[error("the push to {branch} was refused (it moved meanwhile): {detail}")]
    PushRefused { branch: String, detail: String },
    #[error("git {what} ran past its timeout of {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("git {what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("repo.url {url} {problem}")]
    Refused { url: String, problem: String },
    #[error("cannot run git ({bin})")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("local file operation failed on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    /// What the failure means for the attempt. A repository out of reach, a slow git, a push
    /// that lost a race: try again. A base or checkpoint that is not there, a branch someone
    /// else moved, no git at all: trying again will not help; the plan stops (and `baton
    /// retry` picks it up after a fix).
    pub(crate) fn decision(&self) -> Decision {
        match self {
            Self::Unreachable { .. }
            | Self::PushRefused { .. }
            | Self::Timeout { .. }
            | Self::Failed { .. }
            | Self::Io { .. } => Decision::Retry,
            Self::UnknownBase { .. }
            | Self::CheckpointGone { .. }
            | Self::BranchMoved { .. }
            | Self::Refused { .. }
            | Self::Spawn { .. } => Decision::Fail,
        }
    }
}

/// Who the checkpoint commits are by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Author {
    pub(crate) name: String,
    pub(crate) email: String,
}

impl std::str::FromStr for Author {
    type Err = String;

    /// `Name <email>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once('<')
            .ok_or_else(|| format!("{s:?} is not `Name <email>`"))?;
        let email = rest
            .strip_suffix('>')
            .ok_or_else(|| format!("{s:?} is not `Name <email>`"))?;
        let name = name.trim();
        if name.is_empty() || email.is_empty() || s.chars().any(char::is_control) {
            return Err(format!("{s:?} is not `Name <email>`"));
        }
        Ok(Self {
            name: name.to_owned(),
            email: email.trim().to_owned(),
        })
    }
}

/// How the worker runs git.
pub(crate) struct Git {
    bin: PathBuf,
    timeout: Duration,
    author: Author,
    /// `<state-dir>/repos`: one bare mirror per repository URL.
    mirrors: PathBuf,
    /// `<state-dir>/checkouts`: one git dir per plan, outside every workspace.
    checkouts: PathBuf,
    /// One fetch at a time per mirror (concurrent fetches into one repository fight over its
    /// ref locks).
    fetch_locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// The local repositories plans may name.
    local: LocalRepos,
}

impl Git {
    /// Git for a worker whose state lives in `state_dir`, accepting the local repositories
    /// `local` allows.
    pub(crate) fn new(
        bin: PathBuf,
        timeout: Duration,
        author: Author,
        state_dir: &Path,
        local: LocalRepos,
    ) -> Self {
        Self {
            bin,
            timeout,
            author,
            mirrors: state_dir.join("repos"),
            checkouts: state_dir.join("checkouts"),
            fetch_locks: Mutex::new(HashMap::new()),
            local,
        }
    }

    /// Why a plan may not use `url` on this worker, if it may not (a local path outside the
    /// allowed folders, or inside the worker's own).
    pub(crate) fn check_url(&self, url: &baton_core::RepoUrl) -> Result<(), String> {
        self.local.check(url)
    }

    /// `--receive-pack=…`/`--upload-pack=…` (`program`) for a local `url`: the remote's git
    /// program with the safe settings on its command line. Nothing for a network URL (the other
    /// side is another machine's git, and a host may accept only the plain command).
    fn remote_program(&self, url: &baton_core::RepoUrl, program: &str) -> Option<String> {
        url.local_path()?;
        let bin = self.bin.display().to_string().replace('\'', "'\\''");
        let config: String = REMOTE_SAFE_CONFIG
            .iter()
            .map(|c| format!(" -c {c}"))
            .collect();
        Some(format!("--{program}='{bin}'{config} {program}"))
    }

    fn fetch_lock(&self, mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
        // Never held across an await; a panic elsewhere cannot poison it.
        let mut locks = self.fetch_locks.lock().expect("fetch lock map");
        locks.entry(mirror.to_owned()).or_default().clone()
    }

    /// Runs `git <args>` with `git_dir` (and `work_tree`), under the timeout. Returns stdout;
    /// a non-zero exit is an error carrying (redacted) stderr.
    async fn run<I, S>(
        &self,
        what: &str,
        git_dir: Option<&Path>,
        work_tree: Option<&Path>,
        args: I,
    ) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.output(what, git_dir, work_tree, args).await?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(GitError::Failed {
            what: what.to_owned(),
            detail: stderr_of(&out),
        })
    }

    /// Like [`Git::run`], but any exit status is returned to the caller.
    async fn output<I, S>(
        &self,
        what: &str,
        git_dir: Option<&Path>,
        work_tree: Option<&Path>,
        args: I,
    ) -> Result<std::process::Output, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = tokio::process::Command::new(&self.bin);
        for c in SAFE_CONFIG {
            cmd.arg("-c").arg(c);
        }
        // The local transport only when a folder is allowed (a submodule or a redirect cannot
        // bring a file:// remote in otherwise); `user`: not for a submodule either.
        cmd.arg("-c").arg(if self.local.any() {
            "protocol.file.allow=user"
        } else {
            "protocol.file.allow=never"
        });
        if let Some(d) = git_dir {
            cmd.arg("--git-dir").arg(d);
        }
        if let Some(w) = work_tree {
            cmd.arg("--work-tree").arg(w);
        }
        cmd.args(args)
            .env_clear()
            .envs(
                GIT_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", &self.author.name)
            .env("GIT_AUTHOR_EMAIL", &self.author.email)
            .env("GIT_COMMITTER_NAME", &self.author.name)
            .env("GIT_COMMITTER_EMAIL", &self.author.email)
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            // Never wait for a passphrase or a host-key answer.
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        let began = std::time::Instant::now();
        let child = cmd.spawn().map_err(|source| GitError::Spawn {
            bin: self.bin.display().to_string(),
            source,
        })?;
        let pid = child.id();
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(out) => {
                tracing::debug!(what, elapsed = ?began.elapsed(), "git");
                out.map_err(|source| GitError::Spawn {
                    bin: self.bin.display().to_string(),
                    source,
                })
            }
            Err(_) => {
                kill_group(pid);
                Err(GitError::Timeout {
                    what: what.to_owned(),
                    timeout: self.timeout,
                })
            }
        }
    }
}

/// Kills the process group of a git that ran too long (it may have started ssh or helpers).
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

/// The end of a git's stderr, redacted (git prints URLs, and URLs can carry credentials that a
/// worker's own config added).
fn stderr_of(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    let skip = text.chars().count().saturating_sub(600);
    redact(&text.chars().skip(skip).collect::<String>())
}

/// True when git's message says the remote could not be reached or read.
fn unreachable(detail: &str) -> bool {
    const SIGNS: &[&str] = &[
        "Could not read from remote repository",
        "does not appear to be a git repository",
        "unable to access",
        "Connection refused",
        "Could not resolve host",
        "not found",
        "No such file or directory",
        "Connection timed out",
        "Host key verification failed",
        "Permission denied",
        "Authentication failed",
    ];
    SIGNS.iter().any(|s| detail.contains(s))
}

#[cfg(test)]
mod tests;
