//! baton-worker: the pool process. It ingests submitted documents, claims plans, holds a lease
//! per plan, runs each task through the Claude Code CLI in the plan's one conversation,
//! commits results fenced by the lease, and hands work back when it stops.
//!
//! # Layout
//! The modules follow a plan's way through the worker (docs/ARCHITECTURE.md has the map):
//! - [`exit`]: the process's exit codes.
//! - [`config`]: the settings ([`Config`]), parsed from flags and `BATON_*` variables;
//!   `state_dir`: the default `--state-dir` (the platform's state dir).
//! - `pool`: what every loop shares (id, settings, store, shutdown, tracked tasks).
//! - `ingest`: submit list → validated plan or action, or a dead letter; `grants`: the checks
//!   of a plan's tool grants and MCP servers against this worker's settings; `hosts`: host
//!   allow lists (webhooks, remote MCP servers).
//! - `claim`: a slot's loop: claim a plan, hold it, claim the next.
//! - `hold`: one held plan (`Hold`), the one dispatcher: it runs the tasks in order and is the
//!   execution path's only code that publishes events, counts, sends webhooks and pauses the pool (`hold::commit`,
//!   `hold::stop`, `hold::dependencies`, `hold::report`); `lease`: the lease and its keeper.
//! - `attempt`: an `Attempt` runs a task's attempts and returns their outcome and the typed
//!   executor events they produced; `session`: which session an attempt runs in (resume,
//!   first, fallback, rotation) and the transcript restore.
//! - `engine`: the `Engine` trait (run, discard, finish) and its warm, cold and benchmark
//!   implementations.
//! - `testing` (feature `testing`): one worker in-process with scripted engines, for fast tests.
//! - `scheduler`: fires recurring plans' ticks while this worker holds the scheduler lease.
//! - `liveness`: heartbeat and the reaper of silent workers; `metrics`: Prometheus metrics and
//!   their endpoint (`--metrics-addr`).
//! - `claude`: the CLI itself (process, stream, cold runs, warm sessions, errors); `spare`:
//!   CLIs started and parked before their plan, claimed by a plan's first task; `handover`:
//!   a spare's folders renamed to the plan's.
//! - [`sandbox`]: the bubblewrap box every CLI run lives in, and its in-box relay; `gateway`:
//!   the model gateway (hold tokens, the real credentials, the boxes' CONNECT proxy); `hosts`:
//!   operators' host allow lists.
//! - `store`: Redis connections, script calls, plain commands; `reconnect`: riding out outages.
//! - `git`: plans with a repository: mirrors, checkouts, checkpoint commits and pushes.
//! - [`traces`]: OpenTelemetry traces (`--otlp-endpoint`), the plan's trace kept with the plan.
//! - `transcript`, `recap`, `workspace`: files on disk; `paths`: paths as the worker compares
//!   them.
//!
//! The logic does not depend on how it is driven: [`run`] takes the config and the shutdown
//! tokens; `main.rs` wires them to signals.

mod attempt;
mod claim;
mod claimed;
mod claude;
pub mod config;
mod decision;
mod engine;
mod executor;
pub mod exit;
pub mod gateway;
mod git;
mod grants;
mod handover;
mod hold;
mod hosts;
mod ingest;
mod lease;
mod liveness;
mod metrics;
mod paths;
mod pool;
mod recap;
mod reconnect;
pub mod sandbox;
mod scheduler;
mod session;
mod spare;
mod state_dir;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod traces;
mod transcript;
mod webhook;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

use baton_core::scripts::Env;
use baton_core::{Keys, WorkerId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use config::{Config, Executor, SessionMode};
use engine::Closing;
use pool::Pool;
use store::Store;

/// How long the final hand-back at shutdown may wait for Redis.
const HAND_BACK_WAIT: Duration = Duration::from_secs(10);

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Redis(baton_connect::ConnectError),
    #[error("workspace root {path} is unusable")]
    WorkspaceRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    NoStateDir(#[from] config::NoStateDir),
    #[error(transparent)]
    WebhookClient(#[from] webhook::WebhookClientError),
    #[error("state dir {path} is unusable")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {addr}")]
    MetricsAddr {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the claude CLI is version {found}; baton was tested with {oldest} and newer: install a newer CLI (the README says how)")]
    CliTooOld { found: String, oldest: String },
    #[error("the worker has no model credential: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN); its model gateway puts it in place of each hold's token, and the CLI never sees it (a Claude Code login kept in a config dir is not used)")]
    NoCredential,
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error(transparent)]
    Gateway(#[from] gateway::GatewayError),
    #[error("claude config dir {path} is unusable")]
    ConfigDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How a caller stops a worker.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop claiming; let running tasks finish; hand the rest back.
    pub drain: CancellationToken,
    /// Stop running tasks now (they are handed back and run again elsewhere).
    pub abort: CancellationToken,
}

/// Runs a worker until `shutdown.drain` is cancelled and everything it held is handed back.
///
/// # Errors
/// Only start-up problems; Redis outages are ridden out.
pub async fn run(config: Config, host: &str, shutdown: Shutdown) -> Result<(), StartError> {
    run_as(config, WorkerId::for_this_process(host), shutdown).await
}

/// [`run`] under the worker id `id` (made first, for the traces' resource).
///
/// # Errors
/// Only start-up problems.
pub async fn run_as(config: Config, id: WorkerId, shutdown: Shutdown) -> Result<(), StartError> {
    let make_engine = engine::configured(&config);
    run_with(config, id, shutdown, make_engine).await
}

/// [`run`], with each hold's engine made by `make_engine` (the test harness's scripted one).
pub(crate) async fn run_with(
    config: Config,
    id: WorkerId,
    shutdown: Shutdown,
    make_engine: engine::MakeEngine,
) -> Result<(), StartError> {
    let tasks = TaskTracker::new();
    let pool = Arc::new(start(config, id, shutdown, make_engine, &tasks).await?);
    serve(pool, tasks).await
}

/// The folders a worker works in, made and canonical.
struct Dirs {
    workspace_root: std::path::PathBuf,
    config_dir: std::path::PathBuf,
    state_dir: std::path::PathBuf,
}

impl Dirs {
    fn prepare(config: &Config) -> Result<Self, StartError> {
        let root_error = |source| StartError::WorkspaceRoot {
            path: config.workspace_root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&config.workspace_root).map_err(root_error)?;
        let workspace_root = config.workspace_root.canonicalize().map_err(root_error)?;
        // Canonical: session files are checked against it as written (`transcript::open_inside`).
        let config_dir = config.resolved_claude_config_dir();
        let config_dir = std::fs::create_dir_all(&config_dir)
            .and_then(|()| config_dir.canonicalize())
            .map_err(|source| StartError::ConfigDir {
                path: config_dir.display().to_string(),
                source,
            })?;
        let state_dir = config.resolved_state_dir()?;
        let state_dir = std::fs::create_dir_all(&state_dir)
            .and_then(|()| state_dir.canonicalize())
            .map_err(|source| StartError::StateDir {
                path: state_dir.display().to_string(),
                source,
            })?;
        Ok(Self {
            workspace_root,
            config_dir,
            state_dir,
        })
    }
}

/// The CLI is recent enough, and the worker has a model credential (the CLI executor only).
async fn check_cli(config: &Config, upstream: &gateway::Upstream) -> Result<(), StartError> {
    if config.executor != Executor::Claude {
        return Ok(());
    }
    claude::version::check(&config.claude_bin)
        .await
        .map_err(|(found, oldest)| StartError::CliTooOld {
            found: found.to_string(),
            oldest: oldest.to_string(),
        })?;
    if !upstream.has_credential() {
        return Err(StartError::NoCredential);
    }
    Ok(())
}

/// The box every CLI run starts in (none for a benchmark executor, or with `--sandbox off`).
async fn probe_sandbox(
    config: &Config,
    gateway: &gateway::Gateway,
) -> Result<Option<sandbox::Sandbox>, StartError> {
    if config.executor != Executor::Claude {
        return Ok(None);
    }
    let sandbox = sandbox::Sandbox::probe(
        config.sandbox,
        &config.sandbox_bwrap,
        &config.claude_bin,
        gateway.socket(),
        &config.sandbox_read,
        &config.sandbox_write,
    )
    .await?;
    match &sandbox {
        Some(s) => info!(read = ?s.read_paths(), allow_hosts = ?config.sandbox_allow_host, "sandbox on: every CLI run is boxed (bubblewrap)"),
        None => warn!("sandbox OFF (--sandbox off): plans run with this worker's own access to its disk and network; run only trusted plans"),
    }
    Ok(sandbox)
}

/// Builds and checks what every loop of the worker shares.
async fn start(
    config: Config,
    id: WorkerId,
    shutdown: Shutdown,
    make_engine: engine::MakeEngine,
    tasks: &TaskTracker,
) -> Result<Pool, StartError> {
    let dirs = Dirs::prepare(&config)?;
    let author = config
        .git_author
        .parse()
        .expect("checked when the settings were parsed");
    let local_repos = git::LocalRepos::new(
        &config.repo_allow_paths,
        &dirs.workspace_root,
        &dirs.state_dir,
    );
    let git = git::Git::new(
        config.git_bin.clone(),
        config.git_timeout,
        author,
        &dirs.state_dir,
        local_repos,
    );
    let env = Env {
        keys: Keys::new(&config.prefix),
        event_cap: config.event_cap,
        retention_secs: config.retention_secs(),
    };
    let upstream = gateway::Upstream::from_env();
    check_cli(&config, &upstream).await?;
    let gateway = gateway::Gateway::start(upstream, &config.sandbox_allow_host).await?;
    let sandbox = probe_sandbox(&config, &gateway).await?;
    let connector = baton_connect::Connector::new(&config.redis).map_err(StartError::Redis)?;
    info!(redis = %connector.target(), "redis");
    let store = Store::new(&connector, env);
    let metrics = Arc::new(metrics::Metrics::new(
        metrics::RunMode::of(&config),
        sandbox.is_some(),
    ));
    let webhooks = Arc::new(webhook::Webhooks::new(&config)?);
    let spares = spare::Spares::new(spare::wanted(&config));
    Ok(Pool {
        id,
        cfg: config,
        store,
        workspace_root: dirs.workspace_root,
        config_dir: dirs.config_dir,
        git,
        metrics,
        shutdown,
        closing: Closing::new(tasks.clone()),
        transcripts: pool::KnownTranscripts::default(),
        claimed: claimed::Claimed::default(),
        user_paused: std::sync::atomic::AtomicBool::new(false),
        webhooks,
        spares,
        sandbox,
        gateway,
        make_engine,
    })
}

/// Runs the pool's loops until drained, then hands back what is left.
async fn serve(pool: Arc<Pool>, tasks: TaskTracker) -> Result<(), StartError> {
    info!(worker = %pool.id, concurrency = pool.cfg.concurrency, "worker starting");
    let metrics_stop = CancellationToken::new();
    let metrics_server = match pool.cfg.metrics_addr {
        Some(addr) => Some(
            metrics::serve(
                addr,
                pool.metrics.clone(),
                pool.store.clone(),
                metrics_stop.clone(),
            )
            .await
            .map_err(|source| StartError::MetricsAddr { addr, source })?,
        ),
        None => None,
    };
    warn_about_redis_settings(&pool.store).await;

    // The heartbeat outlives the slots: a draining worker finishing its tasks is alive, and must
    // not be reaped (its running tasks would start a second time elsewhere).
    let liveness_stop = CancellationToken::new();
    let liveness = tokio::spawn(liveness::run(pool.clone(), liveness_stop.clone()));
    tasks.spawn(ingest::run(pool.clone()));
    let parking = pool.clone();
    tasks.spawn(async move {
        let p = &parking;
        let place = spare::Place {
            workspace_root: &p.workspace_root,
            config_dir: &p.config_dir,
            cfg: &p.cfg,
            sandbox: p.sandbox.as_ref(),
            gateway: &p.gateway,
        };
        spare::keep_parked(&p.spares, &place, p.shutdown.drain.clone()).await;
    });
    if pool.cfg.scheduler {
        tasks.spawn(scheduler::run(pool.clone()));
    }
    for slot in 0..usize::from(pool.cfg.concurrency) {
        tasks.spawn(claim::run_slot(pool.clone(), slot));
    }
    // Every loop watches `drain`, running tasks watch `abort`; warm CLIs closing in the
    // background are tracked too. Wait for all of them.
    tasks.close();
    tasks.wait().await;
    // Webhook deliveries under way get a bounded grace; the rest are recorded as failed.
    pool.webhooks.finish().await;
    liveness_stop.cancel();
    if let Err(e) = liveness.await {
        warn!(error = %e, "the heartbeat loop ended abnormally");
    }
    // Hand back whatever is still listed as ours (a claim that raced the shutdown), and leave.
    let stop = CancellationToken::new();
    let handed = reconnect::redis_retry("hand back", &stop, || {
        liveness::reap(&pool, &pool.id, u64::MAX)
    });
    if tokio::time::timeout(HAND_BACK_WAIT, handed).await.is_err() {
        warn!("could not reach redis to hand back work; the reaper of another worker will");
    }
    metrics_stop.cancel();
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    info!(worker = %pool.id, "worker stopped");
    Ok(())
}

/// Warns when Redis is configured in a way that can lose committed work.
async fn warn_about_redis_settings(store: &Store) {
    let Some(policy) = store.config_get("maxmemory-policy").await else {
        warn!("redis is not reachable yet (or refuses CONFIG); the worker will keep trying");
        return;
    };
    if policy != "noeviction" {
        warn!(policy = %policy, "redis maxmemory-policy is not noeviction: under memory pressure Redis may evict baton's keys and lose plans");
    }
    if store.config_get("appendonly").await.as_deref() == Some("no") {
        warn!("redis has appendonly off: a Redis crash loses writes since the last snapshot (enable AOF with appendfsync everysec)");
    }
}
