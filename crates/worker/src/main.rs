//! `baton-worker`: parses flags (each also settable as a `BATON_*` variable), wires signals,
//! and calls `baton_worker::run`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use baton_worker::{Config, Shutdown};
use clap::Parser;
use tracing::{info, warn};

/// A baton worker: claims plans from Redis and runs their tasks, in order, through one resumed
/// Claude Code session per plan. Run as many as you like, on as many machines as you like,
/// against the same Redis.
///
/// SIGTERM or Ctrl-C: stop claiming, let running tasks finish within --shutdown-grace, hand the
/// rest back, exit 0. A second signal stops running tasks at once (they are handed back too).
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Args {
    /// Redis URL: redis://[user:password@]host:port[/db].
    #[arg(
        long,
        env = "BATON_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Key prefix, shared by every worker and client of one pool.
    #[arg(long, env = "BATON_PREFIX", default_value = "baton", value_parser = parse_prefix)]
    prefix: String,
    /// Folder holding every plan's workspace. For several machines, mount it at the same path
    /// on each (the CLI's transcripts record absolute paths).
    #[arg(long, env = "BATON_WORKSPACE_ROOT", default_value = "./workspaces")]
    workspace_root: PathBuf,
    /// Plans this process runs at once.
    #[arg(long, env = "BATON_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// The Claude Code CLI executable.
    #[arg(long, env = "BATON_CLAUDE_BIN", default_value = "claude")]
    claude_bin: PathBuf,
    /// The CLI's config dir, exported to it as CLAUDE_CONFIG_DIR [default: $CLAUDE_CONFIG_DIR,
    /// else ~/.claude].
    #[arg(long, env = "BATON_CLAUDE_CONFIG_DIR")]
    claude_config_dir: Option<PathBuf>,
    /// Wall-clock limit of one task run (e.g. 30m, 90s).
    #[arg(long, env = "BATON_TASK_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    task_timeout: Duration,
    /// Limit on a task run printing nothing (a hung stream).
    #[arg(long, env = "BATON_SILENCE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    silence_timeout: Duration,
    /// How long an idle plan's Claude session is kept (renewed on every task; plans may set
    /// their own with options.session_ttl_secs). Accepts seconds or a duration (3600, 1h).
    #[arg(long, env = "BATON_SESSION_TTL", default_value = "3600", value_parser = parse_secs)]
    session_ttl: Duration,
    /// How long a plan's results, events and metadata are kept after its last use.
    #[arg(long, env = "BATON_RETENTION", default_value = "7days", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// Lease on a plan's lock, renewed every third of it while the worker lives.
    #[arg(long, env = "BATON_LEASE", default_value = "30s", value_parser = humantime::parse_duration)]
    lease: Duration,
    /// A worker silent for this long is dead: its plans go back to the ready list.
    #[arg(long, env = "BATON_DEAD_AFTER", default_value = "60s", value_parser = humantime::parse_duration)]
    dead_after: Duration,
    /// Attempts per task before it goes to the dead-letter list and the plan stops.
    #[arg(long, env = "BATON_MAX_ATTEMPTS", default_value_t = 4)]
    max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[arg(long, env = "BATON_RETRY_DELAY", default_value = "2s", value_parser = humantime::parse_duration)]
    retry_delay: Duration,
    /// Longest retry delay.
    #[arg(long, env = "BATON_RETRY_MAX_DELAY", default_value = "60s", value_parser = humantime::parse_duration)]
    retry_max_delay: Duration,
    /// Tasks run for one plan before the worker gives other plans a turn.
    #[arg(long, env = "BATON_MAX_TASKS_PER_HOLD", default_value_t = 20)]
    max_tasks_per_hold: u32,
    /// Context size in tokens past which a plan's session is rotated to a new one seeded with a
    /// recap of the plan.
    #[arg(long, env = "BATON_ROTATE_AT_TOKENS", default_value_t = 150_000)]
    rotate_at_tokens: u64,
    /// Times a task may be recovered from dead workers before it is treated as poison.
    #[arg(long, env = "BATON_MAX_RECOVERIES", default_value_t = 3)]
    max_recoveries: u64,
    /// Time running tasks get to finish after SIGTERM.
    #[arg(long, env = "BATON_SHUTDOWN_GRACE", default_value = "60s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// warm: one CLI process per held plan, fed each task as a stream-json message (saves the
    /// CLI's start-up on every task but the first of a hold). cold: one `claude -p --resume`
    /// process per task. Both hand the session over through Redis after every task.
    #[arg(long, env = "BATON_SESSION_MODE", default_value = "warm")]
    session_mode: baton_worker::SessionMode,
    /// A warm process unused for this long is closed at its next use and a new one resumes.
    #[arg(long, env = "BATON_WARM_IDLE_TIMEOUT", default_value = "2m", value_parser = humantime::parse_duration)]
    warm_idle_timeout: Duration,
    /// For benchmarks of the queue only: `instant` answers every task in-process at once,
    /// `spawn:<program>` runs <program> per task instead of the CLI. Default: claude.
    #[arg(long, env = "BATON_EXECUTOR", default_value = "claude")]
    executor: baton_worker::Executor,
}

fn parse_prefix(s: &str) -> Result<String, String> {
    s.parse::<baton_core::PlanId>()
        .map(String::from)
        .map_err(|e| format!("prefix {e}"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        Ok(_) => Err("must be at least 1 second".into()),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string()),
    }
}

impl Args {
    fn into_config(self) -> Config {
        let mut c = Config::new(self.redis_url, self.workspace_root);
        c.prefix = self.prefix;
        c.concurrency = self.concurrency as usize;
        c.claude_bin = self.claude_bin;
        c.claude_config_dir = self.claude_config_dir;
        c.task_timeout = self.task_timeout;
        c.silence_timeout = self.silence_timeout;
        c.session_ttl = self.session_ttl;
        c.retention = self.retention;
        c.lease = self.lease;
        c.dead_after = self.dead_after;
        c.max_attempts = self.max_attempts.max(1);
        c.retry_base_delay = self.retry_delay;
        c.retry_max_delay = self.retry_max_delay;
        c.max_tasks_per_hold = self.max_tasks_per_hold.max(1);
        c.rotate_at_tokens = self.rotate_at_tokens;
        c.max_recoveries = self.max_recoveries;
        c.shutdown_grace = self.shutdown_grace;
        c.session_mode = self.session_mode;
        c.warm_idle_timeout = self.warm_idle_timeout;
        c.executor = self.executor;
        c
    }
}

async fn signal_stream(
) -> anyhow::Result<impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>
{
    use tokio::signal::unix::{signal, SignalKind};
    let term = std::sync::Arc::new(tokio::sync::Mutex::new(
        signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
    ));
    let int = std::sync::Arc::new(tokio::sync::Mutex::new(
        signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
    ));
    Ok(move || {
        let (term, int) = (term.clone(), int.clone());
        Box::pin(async move {
            let mut t = term.lock().await;
            let mut i = int.lock().await;
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = args.into_config();
    let grace = config.shutdown_grace;
    let shutdown = Shutdown::default();
    let mut next_signal = signal_stream().await?;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let run = baton_worker::run(config, host.trim(), shutdown.clone());
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => return r.context("worker failed to start"),
        _ = next_signal() => {}
    }
    info!(grace = ?grace, "signal received: draining (a second signal stops running tasks at once)");
    shutdown.drain.cancel();
    tokio::select! {
        r = &mut run => return r.context("worker failed"),
        _ = next_signal() => warn!("second signal: stopping running tasks"),
        _ = tokio::time::sleep(grace) => warn!("shutdown grace over: stopping running tasks"),
    }
    shutdown.abort.cancel();
    run.await.context("worker failed")
}
