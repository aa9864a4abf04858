//! The worker's settings. Plain data: `main.rs` fills it from flags and `BATON_*` variables,
//! tests fill it directly.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::executor::{Executor, SessionMode};

/// Everything a worker process needs to know. Each field's default is the flag's default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Redis URL (`redis://[user:password@]host:port/db`).
    pub redis_url: String,
    /// Key prefix (default `baton`).
    pub prefix: String,
    /// Folder under which every plan's workspace lives.
    pub workspace_root: PathBuf,
    /// Plans this process runs at once.
    pub concurrency: usize,
    /// The Claude Code CLI to run.
    pub claude_bin: PathBuf,
    /// The CLI's config dir (exported as `CLAUDE_CONFIG_DIR`); `None`: `$CLAUDE_CONFIG_DIR`,
    /// else `$HOME/.claude`.
    pub claude_config_dir: Option<PathBuf>,
    /// Wall-clock limit of one CLI run.
    pub task_timeout: Duration,
    /// Limit on a CLI run printing nothing.
    pub silence_timeout: Duration,
    /// Default session TTL (plans may set their own).
    pub session_ttl: Duration,
    /// How long results, events and metadata of a plan are kept after its last use.
    pub retention: Duration,
    /// Lease on a plan's lock; renewed every third of it.
    pub lease: Duration,
    /// A worker whose heartbeat is older than this is dead and its plans are handed back.
    pub dead_after: Duration,
    /// Attempts per task before it goes to the dead-letter list.
    pub max_attempts: u32,
    /// First retry delay (doubles each time, with jitter, up to `retry_max_delay`).
    pub retry_base_delay: Duration,
    /// Longest retry delay.
    pub retry_max_delay: Duration,
    /// Tasks a worker runs for one plan before giving others a turn.
    pub max_tasks_per_hold: u32,
    /// Context size (tokens) past which a session is rotated to a new one seeded with a recap.
    pub rotate_at_tokens: u64,
    /// Times a task may be recovered from dead workers before it counts as poison.
    pub max_recoveries: u64,
    /// Events kept per plan.
    pub event_cap: u64,
    /// Time running tasks get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// One CLI process per held plan (warm) or per task (cold).
    pub session_mode: SessionMode,
    /// A warm process unused for this long is not reused (a new one resumes the session).
    pub warm_idle_timeout: Duration,
    /// What runs tasks: the Claude CLI, or a benchmark executor.
    pub executor: Executor,
}

impl Config {
    /// Defaults for everything but where Redis and the workspaces are.
    pub fn new(redis_url: impl Into<String>, workspace_root: impl Into<PathBuf>) -> Self {
        Self {
            redis_url: redis_url.into(),
            prefix: "baton".into(),
            workspace_root: workspace_root.into(),
            concurrency: 2,
            claude_bin: PathBuf::from("claude"),
            claude_config_dir: None,
            task_timeout: Duration::from_secs(30 * 60),
            silence_timeout: Duration::from_secs(5 * 60),
            session_ttl: Duration::from_secs(3600),
            retention: Duration::from_secs(baton_core::keys::DEFAULT_RETENTION_SECS),
            lease: Duration::from_secs(30),
            dead_after: Duration::from_secs(60),
            max_attempts: 4,
            retry_base_delay: Duration::from_secs(2),
            retry_max_delay: Duration::from_secs(60),
            max_tasks_per_hold: 20,
            rotate_at_tokens: 150_000,
            max_recoveries: 3,
            event_cap: baton_core::keys::DEFAULT_EVENT_CAP,
            shutdown_grace: Duration::from_secs(60),
            session_mode: SessionMode::Warm,
            warm_idle_timeout: Duration::from_secs(120),
            executor: Executor::Claude,
        }
    }

    /// The CLI config dir the worker's children use.
    pub fn resolved_claude_config_dir(&self) -> PathBuf {
        if let Some(d) = &self.claude_config_dir {
            return d.clone();
        }
        if let Some(d) = std::env::var_os("CLAUDE_CONFIG_DIR") {
            return PathBuf::from(d);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".claude")
    }
}
