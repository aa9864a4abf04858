//! The worker's settings: one type, parsed by clap from flags and their `BATON_*` twins, with
//! each default written once (here). Tests and benchmarks parse a command line the same way.

use crate::paths::resolve_path;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

pub use crate::executor::{Executor, SessionMode};
pub use crate::state_dir::NoStateDir;
pub use size::ByteSize;

mod size;

/// A baton worker: claims plans from Redis and runs their tasks, in order, through one resumed
/// Claude Code session per plan. Run as many as you like, on as many machines as you like,
/// against the same Redis.
///
/// SIGTERM or Ctrl-C: stop claiming, let running tasks finish within --shutdown-grace, hand the
/// rest back, exit 0. A second signal stops running tasks at once (they are handed back too).
#[derive(Parser, Debug, Clone)]
#[command(name = "baton-worker", version, max_term_width = 100)]
pub struct Config {
    /// Where Redis is: the URL (one server, Cluster or Sentinel) and TLS settings.
    #[command(flatten)]
    pub redis: baton_connect::RedisArgs,
    /// Key prefix, shared by every worker and client of one pool.
    #[arg(long, env = "BATON_PREFIX", default_value = "baton", value_parser = parse_prefix)]
    pub prefix: String,
    /// Folder holding every plan's workspace (a box sees its plan's at `/workspace`).
    #[arg(long, env = "BATON_WORKSPACE_ROOT", default_value = "./workspaces")]
    pub workspace_root: PathBuf,
    /// Plans this process runs at once (1-256).
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Threads for the worker's own work (claims, commits, the CLI's output, the gateway),
    /// 1-64; unset: one per CPU. Large transcripts are packed on a pool of their own.
    #[arg(long, env = "BATON_THREADS", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Most a task's session may hold on disk (the transcript and the folder the CLI keeps
    /// beside it, which baton packs at every commit), e.g. 256MiB, 1GiB; at least 1 MiB. A task
    /// whose session is larger fails, naming both sizes, and nothing of its turn is committed.
    #[arg(long, env = "BATON_MAX_TRANSCRIPT_SIZE", default_value = "256MiB", value_parser = size::parse_session_cap)]
    pub max_transcript_size: ByteSize,
    /// The Claude Code CLI executable.
    #[arg(long, env = "BATON_CLAUDE_BIN", default_value = "claude")]
    pub claude_bin: PathBuf,
    /// The CLI's config dir (its CLAUDE_CONFIG_DIR) [default: $CLAUDE_CONFIG_DIR, ~/.claude].
    #[arg(long, env = "BATON_CLAUDE_CONFIG_DIR")]
    pub claude_config_dir: Option<PathBuf>,
    /// Wall-clock limit of one task run (e.g. 30m, 90s).
    #[arg(long, env = "BATON_TASK_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub task_timeout: Duration,
    /// Limit on a task run printing nothing (a hung stream; at least 30s before its first line).
    #[arg(long, env = "BATON_SILENCE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub silence_timeout: Duration,
    /// How long an idle plan's Claude session is kept (renewed on every task; plans may set
    /// their own with options.session_ttl_secs). Accepts seconds or a duration (3600, 1h).
    #[arg(long, env = "BATON_SESSION_TTL", default_value = "3600", value_parser = parse_secs)]
    pub session_ttl: Duration,
    /// How long a plan's results, events and metadata are kept after its last use.
    #[arg(long, env = "BATON_RETENTION", default_value = "7days", value_parser = parse_positive_duration)]
    pub retention: Duration,
    /// Events kept per plan (the oldest are trimmed).
    #[arg(long, env = "BATON_EVENT_CAP", default_value_t = baton_core::keys::DEFAULT_EVENT_CAP, value_parser = clap::value_parser!(u64).range(1..))]
    pub event_cap: u64,
    /// Lease on a plan's lock, renewed every third of it while the worker lives. A worker that
    /// cannot renew for a whole lease (cut off from Redis) stops the plan's task.
    #[arg(long, env = "BATON_LEASE", default_value = "10s", value_parser = parse_positive_duration)]
    pub lease: Duration,
    /// A worker whose heartbeat (every second) is this old is dead: its plans go back to the
    /// front of the ready list. Must exceed --lease by more than a heartbeat, so that a worker
    /// cut off from Redis has stopped its tasks before another takes them over.
    #[arg(long, env = "BATON_DEAD_AFTER", default_value = "12s", value_parser = parse_positive_duration)]
    pub dead_after: Duration,
    /// Take part in firing recurring plans (`baton schedule`): one worker at a time holds the
    /// scheduler lease and fires every schedule's ticks. `false`: this worker never does.
    #[arg(long, env = "BATON_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set)]
    pub scheduler: bool,
    /// Attempts per task before it goes to the dead-letter list and the plan stops.
    #[arg(long, env = "BATON_MAX_ATTEMPTS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[arg(long = "retry-delay", env = "BATON_RETRY_DELAY", default_value = "2s", value_parser = humantime::parse_duration)]
    pub retry_base_delay: Duration,
    /// Longest retry delay.
    #[arg(long, env = "BATON_RETRY_MAX_DELAY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub retry_max_delay: Duration,
    /// Tasks run for one plan before the worker gives other plans a turn.
    #[arg(long, env = "BATON_MAX_TASKS_PER_HOLD", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tasks_per_hold: u32,
    /// Context size in tokens past which a plan's session is rotated to a new one seeded with a
    /// recap of the plan.
    #[arg(long, env = "BATON_ROTATE_AT_TOKENS", default_value_t = 150_000)]
    pub rotate_at_tokens: u64,
    /// Times a task may be recovered from dead workers before it is treated as poison.
    #[arg(long, env = "BATON_MAX_RECOVERIES", default_value_t = 3)]
    pub max_recoveries: u64,
    /// Time running tasks get to finish after SIGTERM.
    #[arg(long, env = "BATON_SHUTDOWN_GRACE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// warm: one CLI process per held plan, fed each task as a stream-json message (saves the
    /// CLI's start-up on every task but the first of a hold). cold: one `claude -p --resume`
    /// process per task. Both hand the session over through Redis after every task.
    #[arg(long, env = "BATON_SESSION_MODE", default_value = "warm")]
    pub session_mode: SessionMode,
    /// CLIs parked ahead of plans, so a first task skips the CLI's start-up (~0.3 s; ~80 MiB
    /// each). Default: one per slot, at most 4 (none with --trust-repo-settings); 0: none.
    #[arg(long, env = "BATON_SPARE_CLI", value_parser = clap::value_parser!(u16).range(0..=256))]
    pub spare_cli: Option<u16>,
    /// A warm process unused for this long is closed at its next use and a new one resumes.
    #[arg(long, env = "BATON_WARM_IDLE_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    pub warm_idle_timeout: Duration,
    /// Folder for the worker's own state: a cache of the git repositories plans name (one
    /// mirror per URL) and each plan's git dir. Keep it outside the workspace root, one per
    /// worker process [default: $XDG_STATE_HOME/baton, else $HOME/.local/state/baton].
    #[arg(long, env = "BATON_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Folders under which a plan's `repo.url` may be a local path (an absolute path or
    /// file://), repeatable (the environment variable takes them comma-separated). Default:
    /// none, so every local-path repository is refused and git runs with file:// off. Never
    /// inside the workspace root or the state dir, whatever this says.
    #[arg(
        long = "repo-allow-path",
        env = "BATON_REPO_ALLOW_PATH",
        value_delimiter = ',',
        value_name = "PREFIX"
    )]
    pub repo_allow_paths: Vec<PathBuf>,
    /// The git executable (plans with a `repo`).
    #[arg(long, env = "BATON_GIT_BIN", default_value = "git")]
    pub git_bin: PathBuf,
    /// Author and committer of the checkpoint commits, as `Name <email>`.
    #[arg(long, env = "BATON_GIT_AUTHOR", default_value = "baton <baton@localhost>", value_parser = parse_author)]
    pub git_author: String,
    /// Limit on one git command (a clone, fetch or push); one past it is stopped and the
    /// attempt retried.
    #[arg(long, env = "BATON_GIT_TIMEOUT", default_value = "5m", value_parser = parse_positive_duration)]
    pub git_timeout: Duration,
    /// Serve Prometheus metrics at http://<addr>/metrics (e.g. 0.0.0.0:9464). Off unless set.
    #[arg(long, env = "BATON_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Export OpenTelemetry traces over OTLP/HTTP to this collector (e.g. http://127.0.0.1:4318;
    /// `/v1/traces` is added). Off unless set, or OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT is.
    #[arg(long, env = "BATON_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Hosts plans' webhooks (options.notify.url) may reach, comma-separated: host names or IP
    /// addresses, or `*.example.com` for the subdomains of example.com. Empty (the default): no
    /// webhook is delivered, so a document cannot make workers call internal addresses.
    /// Deliveries are signed with the BATON_WEBHOOK_SECRET variable, which must then be set.
    #[arg(long, env = "BATON_WEBHOOK_ALLOW", value_delimiter = ',')]
    pub webhook_allow: Vec<String>,
    /// Commands a plan's MCP servers may start (options.mcp_config: a server with `command`),
    /// by exact name: `--allow-mcp-command npx` lets a plan start `npx`, not `/usr/bin/npx` or
    /// `./npx` (the name is looked up on the worker's PATH); a server's `args` are data.
    /// Repeatable, or comma-separated. Empty (the default): no plan may start an MCP server.
    #[arg(
        long = "allow-mcp-command",
        env = "BATON_ALLOW_MCP_COMMAND",
        value_delimiter = ','
    )]
    pub allow_mcp_command: Vec<String>,
    /// How long a webhook delivery is retried, with backoff, before it is given up (then the
    /// plan gets a `webhook_failed` event).
    #[arg(long, env = "BATON_WEBHOOK_RETRY_FOR", default_value = "2m", value_parser = humantime::parse_duration)]
    pub webhook_retry_for: Duration,
    /// The webhooks' signing secret: read from BATON_WEBHOOK_SECRET only (a flag would show
    /// in the process list).
    #[arg(skip = std::env::var("BATON_WEBHOOK_SECRET").ok().filter(|s| !s.is_empty()).map(Secret))]
    pub webhook_secret: Option<Secret>,
    /// The box around every CLI run (docs: README, Trust). `auto` (the default) and `on` run
    /// each CLI, with everything it starts, in a bubblewrap sandbox that sees the plan's
    /// workspace and the model and nothing else; the worker refuses to start where the sandbox
    /// cannot, saying why. `off` runs plans with the worker's own access (logged as a warning,
    /// shown in the `baton_worker_info` metric and the dashboard).
    #[arg(long, env = "BATON_SANDBOX", default_value = "auto")]
    pub sandbox: crate::sandbox::SandboxMode,
    /// The bubblewrap executable the sandbox uses.
    #[arg(long, env = "BATON_SANDBOX_BWRAP", default_value = "bwrap")]
    pub sandbox_bwrap: PathBuf,
    /// Hosts a sandboxed run may reach besides the model (through the worker's CONNECT proxy:
    /// HTTPS, or any TCP protocol tunnelled), comma-separated: names, IP addresses, or
    /// `*.example.com` for its subdomains (the same entries as --webhook-allow). Empty (the
    /// default): the model only. A plan's remote MCP servers (`type` http or sse) may be only
    /// at these hosts. Repeatable, or comma-separated.
    #[arg(long, env = "BATON_SANDBOX_ALLOW_HOST", value_delimiter = ',')]
    pub sandbox_allow_host: Vec<String>,
    /// Extra folders every box may read (toolchains, a shared read-only cache), comma-separated.
    /// The CLI's own folder is always readable.
    #[arg(long, env = "BATON_SANDBOX_READ", value_delimiter = ',')]
    pub sandbox_read: Vec<PathBuf>,
    /// Extra folders every box may write, comma-separated: shared by all plans, so only for
    /// caches that hold nothing secret (a package cache). None by default.
    #[arg(long, env = "BATON_SANDBOX_WRITE", value_delimiter = ',')]
    pub sandbox_write: Vec<PathBuf>,
    /// Let a plan's repository configure the CLI: its `.claude/settings.json` (hooks, env,
    /// permissions) is read as project settings. Off by default: a repository is data, and its
    /// settings are ignored. Even when on, they run inside the box.
    #[arg(long, env = "BATON_TRUST_REPO_SETTINGS")]
    pub trust_repo_settings: bool,
    /// For benchmarks of the queue only: `instant` answers every task in-process at once,
    /// `spawn:<program>` runs <program> per task instead of the CLI.
    #[arg(long, env = "BATON_EXECUTOR", default_value = "claude")]
    pub executor: Executor,
}

/// A secret setting: its `Debug` does not show it.
#[derive(Clone)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn parse_prefix(s: &str) -> Result<String, String> {
    s.parse::<baton_core::PlanId>()
        .map(String::from)
        .map_err(|e| format!("prefix {e}"))
}

fn parse_author(s: &str) -> Result<String, String> {
    s.parse::<crate::git::Author>().map(|_| s.to_owned())
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        Ok(_) => Err("must be at least 1 second".into()),
        Err(_) => parse_positive_duration(s),
    }
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d),
        Ok(_) => Err("must be at least 1 second".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// How often a worker records its heartbeat (and looks for dead workers).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

impl Config {
    /// The heartbeat period: a second, or a third of the lease if that is shorter.
    pub(crate) fn heartbeat(&self) -> Duration {
        HEARTBEAT.min(self.lease / 3)
    }

    /// Checks what no single flag can: the settings that only make sense together.
    ///
    /// # Errors
    /// A message naming the flags and the problem.
    pub fn check(&self) -> Result<(), String> {
        if self.dead_after <= self.lease + self.heartbeat() {
            return Err(format!(
                "--dead-after ({}) must be longer than --lease ({}) plus a heartbeat ({}): a \
                 worker cut off from Redis stops its tasks when its lease runs out, and only \
                 after that may another worker take them over",
                humantime::format_duration(self.dead_after),
                humantime::format_duration(self.lease),
                humantime::format_duration(self.heartbeat()),
            ));
        }
        // What the model writes lands in the workspace root: the worker's own folders may not
        // be in it (a task could rewrite the git dirs baton runs, or the CLI's settings), nor
        // may they hold it.
        let root = resolve_path(&self.workspace_root);
        let state_dir = resolve_path(&self.resolved_state_dir().map_err(|e| e.to_string())?);
        for (flag, dir) in [
            ("--state-dir", state_dir.clone()),
            (
                "--claude-config-dir",
                resolve_path(&self.resolved_claude_config_dir()),
            ),
        ] {
            if dir.starts_with(&root) {
                return Err(format!(
                    "{flag} ({}) is inside --workspace-root ({}): what plans write there could \
                     change the worker's own files; keep them apart",
                    dir.display(),
                    root.display()
                ));
            }
            if root.starts_with(&dir) {
                return Err(format!(
                    "--workspace-root ({}) is inside {flag} ({}): what plans write there could \
                     change the worker's own files; keep them apart",
                    root.display(),
                    dir.display()
                ));
            }
        }
        // A folder shared into every box may not hold the workspace root, the state dir or the
        // config dir (every plan's workspace, git dirs, transcripts), nor lie inside them.
        let own = [
            ("--workspace-root", root.clone()),
            ("--state-dir", state_dir),
            (
                "--claude-config-dir",
                resolve_path(&self.resolved_claude_config_dir()),
            ),
        ];
        self.check_shared_folders(&own)?;
        if !self.webhook_allow.is_empty() && self.webhook_secret.is_none() {
            return Err(
                "--webhook-allow names hosts, but BATON_WEBHOOK_SECRET is not set: every \
                 webhook delivery is signed with it"
                    .into(),
            );
        }
        Ok(())
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

    /// No folder shared into every box (`--sandbox-read`, `--sandbox-write`, the CLI's own
    /// folder) overlaps one of the worker's `own` folders.
    fn check_shared_folders(&self, own: &[(&str, PathBuf)]) -> Result<(), String> {
        // The CLI's own folder is shared read-only into every box too: a CLI installed in a
        // folder that holds the state dir (say `~/claude` with the default state dir) would let
        // every plan read every other plan's git dir.
        let cli_folder = (self.sandbox != crate::sandbox::SandboxMode::Off)
            .then(|| crate::sandbox::cli_folder(&self.claude_bin))
            .flatten();
        for (flag, shared) in self
            .sandbox_read
            .iter()
            .map(|p| ("--sandbox-read", p))
            .chain(self.sandbox_write.iter().map(|p| ("--sandbox-write", p)))
            .chain(
                cli_folder
                    .iter()
                    .map(|p| ("the CLI's folder (--claude-bin)", p)),
            )
        {
            let shared = resolve_path(shared);
            for (name, dir) in own {
                if dir.starts_with(&shared) || shared.starts_with(dir) {
                    return Err(format!(
                        "{flag} ({}) and {name} ({}) overlap: every plan's box would see the \
                         worker's own files",
                        shared.display(),
                        dir.display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The state dir: `--state-dir`, else `$XDG_STATE_HOME/baton`, else
    /// `$HOME/.local/state/baton`.
    ///
    /// # Errors
    /// [`NoStateDir`] when no flag is given and neither variable is an absolute path.
    pub fn resolved_state_dir(&self) -> Result<PathBuf, NoStateDir> {
        match &self.state_dir {
            Some(d) => Ok(d.clone()),
            None => crate::state_dir::default_state_dir(
                std::env::var_os("XDG_STATE_HOME"),
                std::env::var_os("HOME"),
            ),
        }
    }

    /// Whether CLI runs are boxed (`--sandbox auto` or `on`): only then may a plan grant
    /// `Bash`.
    pub fn sandbox_on(&self) -> bool {
        self.sandbox != crate::sandbox::SandboxMode::Off
    }

    /// The retention in whole seconds, as the scripts take it.
    pub(crate) fn retention_secs(&self) -> u64 {
        self.retention.as_secs().max(1)
    }
}

#[cfg(test)]
pub(crate) mod tests;
