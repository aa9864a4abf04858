//! baton-worker: the pool process. It ingests submitted plan documents, claims plans, holds a
//! lease per plan, runs each task through the Claude Code CLI in the plan's one conversation,
//! commits results fenced by the lease, and hands work back when it stops.
//!
//! # Layout
//! - [`config`]: the settings ([`Config`]).
//! - `store`: typed Redis operations over `baton_core::keys` and `baton_core::scripts`.
//! - `ingest`: submit list → validated plan, or dead letter.
//! - `runner`: a slot's claim → run → commit → release loop, lease keeping, retries, fallback.
//! - [`claude`]: one CLI run (cold) or one long-lived CLI process per plan (warm), supervised,
//!   its stream read, its failures classified.
//! - [`executor`]: what runs a task (the CLI, or a benchmark executor) and the session mode.
//! - [`transcript`]: moving a conversation's files between machines through Redis.
//! - `recap`: the first prompt of a session that replaces a lost one.
//! - `lifecycle`: heartbeat and the reaper of silent workers.
//!
//! The logic does not depend on how it is driven: [`run`] takes the config and two
//! cancellation tokens; `main.rs` wires them to signals, tests and benchmarks to whatever they like.

pub mod claude;
pub mod config;
pub mod executor;
mod ingest;
mod lifecycle;
mod recap;
mod runner;
pub mod store;
pub mod transcript;

use std::sync::Arc;

use baton_core::{Keys, WorkerId};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Config, Executor, SessionMode};
use runner::Worker;
use store::{Store, StoreSettings};

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid redis url")]
    RedisUrl(#[source] store::StoreError),
    #[error("workspace root {path} is unusable")]
    WorkspaceRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
    std::fs::create_dir_all(&config.workspace_root).map_err(|source| {
        StartError::WorkspaceRoot {
            path: config.workspace_root.display().to_string(),
            source,
        }
    })?;
    let workspace_root =
        config
            .workspace_root
            .canonicalize()
            .map_err(|source| StartError::WorkspaceRoot {
                path: config.workspace_root.display().to_string(),
                source,
            })?;
    let config_dir = config.resolved_claude_config_dir();
    std::fs::create_dir_all(&config_dir).map_err(|source| StartError::ConfigDir {
        path: config_dir.display().to_string(),
        source,
    })?;
    let keys = Keys::new(&config.prefix);
    let settings = StoreSettings {
        event_cap: config.event_cap,
        retention_secs: config.retention.as_secs().max(1),
    };
    let store = Store::new(&config.redis_url, keys, settings).map_err(StartError::RedisUrl)?;
    let worker = Arc::new(Worker {
        id: WorkerId::for_this_process(host),
        cfg: config,
        store,
        config_dir,
        workspace_root,
        drain: shutdown.drain.clone(),
        abort: shutdown.abort.clone(),
        closing: std::sync::Mutex::new(std::collections::HashMap::new()),
    });
    info!(worker = %worker.id, concurrency = worker.cfg.concurrency, "worker starting");
    warn_about_redis_settings(&worker.store).await;

    // The heartbeat outlives the slots: a draining worker finishing its tasks is alive, and must
    // not be reaped (its running tasks would start a second time elsewhere).
    let liveness_stop = CancellationToken::new();
    let liveness = tokio::spawn(worker.clone().run_liveness(liveness_stop.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(worker.clone().run_ingest());
    for slot in 0..worker.cfg.concurrency {
        tasks.spawn(worker.clone().run_slot(slot));
    }
    // Every loop watches `drain`; running tasks watch `abort`. Wait for all of them.
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            warn!(error = %e, "a worker loop ended abnormally");
        }
    }
    worker.wait_for_all_closing().await;
    liveness_stop.cancel();
    if let Err(e) = liveness.await {
        warn!(error = %e, "the heartbeat loop ended abnormally");
    }
    // Hand back whatever is still listed as ours (a claim that raced the shutdown), and leave.
    let stop = CancellationToken::new();
    let handed = runner::redis_retry("hand back", &stop, || worker.reap(&worker.id, u64::MAX));
    if tokio::time::timeout(std::time::Duration::from_secs(10), handed)
        .await
        .is_err()
    {
        warn!("could not reach redis to hand back work; the reaper of another worker will");
    }
    info!(worker = %worker.id, "worker stopped");
    Ok(())
}

/// Warns when Redis is configured in a way that can lose committed work.
async fn warn_about_redis_settings(store: &Store) {
    let Ok(mut conn) = store.conn().await else {
        warn!("redis is not reachable yet; the worker will keep trying");
        return;
    };
    let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut conn)
        .await;
    if let Ok(v) = policy {
        if let Some(p) = v.get(1) {
            if p != "noeviction" {
                warn!(policy = %p, "redis maxmemory-policy is not noeviction: under memory pressure Redis may evict baton's keys and lose plans");
            }
        }
    }
    let aof: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut conn)
        .await;
    if let Ok(v) = aof {
        if v.get(1).map(String::as_str) == Some("no") {
            warn!("redis has appendonly off: a Redis crash loses writes since the last snapshot (enable AOF with appendfsync everysec)");
        }
    }
}
