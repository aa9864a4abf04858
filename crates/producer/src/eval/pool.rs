//! The pool `baton eval` starts for itself (like the demo): a redis-server, the model stand-in
//! when offline, and two workers standing for two machines (workspace root, state dir, CLI config
//! dir and HOME of their own; nothing shared but Redis and the git remotes).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One of the pool's worker "machines".
struct Machine {
    root: PathBuf,
    worker: Option<Child>,
}

/// How the embedded workers run.
#[derive(Debug, Clone)]
pub(super) struct WorkerSettings {
    pub(super) concurrency: u16,
    pub(super) session_mode: String,
    pub(super) claude_bin: PathBuf,
    /// The folder of the plans' bare remotes (`--repo-allow-path`).
    pub(super) remotes: PathBuf,
    /// `--rotate-at-tokens`, when not the worker's default.
    pub(super) rotate_at_tokens: Option<u64>,
}

/// The embedded pool; every process it started is killed when it is dropped.
pub(super) struct EmbeddedPool {
    pub(super) redis_url: String,
    _redis: Child,
    _standin: Option<Child>,
    /// The model endpoint the workers use, when it is the stand-in.
    standin_url: Option<String>,
    machines: Vec<Machine>,
    settings: WorkerSettings,
}

/// A program installed next to this `baton` (the workspace's build puts them side by side).
fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("finding baton's own path")?;
    let path = me.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found next to {} (build the workspace: cargo build --workspace --bins)",
            name,
            me.display()
        );
    }
    Ok(path)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    std::fs::File::create(dir.join(format!("{name}.log")))
        .with_context(|| format!("creating {name}.log in {}", dir.display()))
}

impl EmbeddedPool {
    /// Starts redis-server and, with `answers` (offline), the stand-in serving the suite's
    /// answer keys. Workers start with [`EmbeddedPool::start_worker`].
    pub(super) async fn start(
        dir: &Path,
        answers: Option<&Path>,
        settings: WorkerSettings,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let redis = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(log_file(dir, "redis")?)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (install it: apt-get install redis-server)")?;
        let redis_url = format!("redis://127.0.0.1:{port}");
        wait_for_redis(&redis_url).await?;
        let (standin, standin_url) = match answers {
            Some(answers) => {
                let (child, url) = start_standin(dir, answers).await?;
                (Some(child), Some(url))
            }
            None => (None, None),
        };
        let machines = ["a", "b"]
            .iter()
            .map(|m| Machine {
                root: dir.join(format!("machine-{m}")),
                worker: None,
            })
            .collect();
        Ok(Self {
            redis_url,
            _redis: redis,
            _standin: standin,
            standin_url,
            machines,
            settings,
        })
    }

    /// How many machines the pool has.
    pub(super) fn machines(&self) -> usize {
        self.machines.len()
    }

    /// Starts the worker of machine `m` (if it is not running).
    pub(super) fn start_worker(&mut self, m: usize) -> Result<()> {
        let s = &self.settings;
        let machine = &mut self.machines[m];
        if machine.worker.is_some() {
            return Ok(());
        }
        let root = &machine.root;
        let home = root.join("home");
        for d in ["workspaces", "state", "claude", "home"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("worker.log"))?;
        let mut cmd = Command::new(sibling("baton-worker")?);
        cmd.arg("--redis-url")
            .arg(&self.redis_url)
            .arg("--workspace-root")
            .arg(root.join("workspaces"))
            .arg("--state-dir")
            .arg(root.join("state"))
            .arg("--claude-config-dir")
            .arg(root.join("claude"))
            .arg("--claude-bin")
            .arg(&s.claude_bin)
            .arg("--concurrency")
            .arg(s.concurrency.to_string())
            .arg("--session-mode")
            .arg(&s.session_mode)
            .arg("--repo-allow-path")
            .arg(&s.remotes)
            .env("HOME", &home)
            .env("RUST_BACKTRACE", "0")
            .env("BATON_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(n) = s.rotate_at_tokens {
            cmd.arg("--rotate-at-tokens").arg(n.to_string());
        }
        if let Some(url) = &self.standin_url {
            cmd.env("ANTHROPIC_BASE_URL", url)
                .env("ANTHROPIC_API_KEY", "baton-eval-standin")
                .env_remove("ANTHROPIC_AUTH_TOKEN");
        }
        machine.worker = Some(cmd.spawn().context("starting baton-worker")?);
        Ok(())
    }

    /// Stops the worker of machine `m` (SIGTERM: it finishes what it runs, hands its plans
    /// back, and exits).
    pub(super) async fn stop_worker(&mut self, m: usize) -> Result<()> {
        let Some(mut child) = self.machines[m].worker.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(90), child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    tracing::warn!(%status, machine = m, "worker exited badly");
                }
            }
            Err(_) => {
                let _ = child.kill().await;
            }
        }
        Ok(())
    }

    /// A worker that exited on its own (it refused to start, say): its log's end.
    pub(super) fn exited_worker(&mut self) -> Option<String> {
        for m in &mut self.machines {
            let exited = m
                .worker
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited {
                m.worker = None;
                let log = std::fs::read_to_string(m.root.join("worker.log")).unwrap_or_default();
                // Its last error and causes (a backtrace, if any, left out).
                let last = log.rfind("Error:").map_or(log.as_str(), |i| &log[i..]);
                let last = last.split("Stack backtrace:").next().unwrap_or(last);
                let tail: Vec<&str> = last
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(15)
                    .collect();
                return Some(tail.join("\n"));
            }
        }
        None
    }
}

async fn wait_for_redis(url: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    for _ in 0..100 {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
            if pong.is_ok() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("redis-server at {url} did not answer within 10 s (see pool/redis.log in --out)")
}

/// Starts `baton-standin --answers`, returning it and its base URL.
async fn start_standin(dir: &Path, answers: &Path) -> Result<(Child, String)> {
    let mut child = Command::new(sibling("baton-standin")?)
        .arg("--answers")
        .arg(answers)
        .stdout(Stdio::piped())
        .stderr(log_file(dir, "standin")?)
        .kill_on_drop(true)
        .spawn()
        .context("starting baton-standin")?;
    let stdout = child.stdout.take().context("the stand-in's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .context("the stand-in did not print its address within 20 s")??;
    let Some(addr) = line
        .as_deref()
        .and_then(|l| l.strip_prefix("BATON_STANDIN_ADDR="))
    else {
        let log = std::fs::read_to_string(dir.join("standin.log")).unwrap_or_default();
        bail!("the stand-in did not start: {}", log.trim());
    };
    Ok((child, format!("http://{addr}")))
}
