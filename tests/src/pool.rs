//! A test's pool: its Redis, its stand-in, worker processes on separate "machines" (config dirs
//! and HOMEs of their own), the `baton` CLI, and what a test reads back from Redis.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use baton_core::{Event, Keys};

use crate::proc::{bin, claude_bin, Proc, TempDir};
use crate::redis_server::Redis;
use crate::standin::Standin;

/// Settings for a worker process.
#[derive(Debug, Clone)]
pub struct WorkerOpts {
    pub concurrency: u16,
    pub workspace_root: PathBuf,
    pub config_dir: PathBuf,
    /// The worker's own state (repository cache, plans' git dirs).
    pub state_dir: PathBuf,
    pub home: Option<PathBuf>,
    /// The CLI the worker runs (the pinned one unless a test wraps it).
    pub claude_bin: PathBuf,
    /// `BATON_LOG` for the worker.
    pub log_filter: String,
    /// More environment for the worker.
    pub env: Vec<(String, String)>,
    pub extra: Vec<String>,
    /// The URL the worker connects with, when not the pool's plain `redis://` one (TLS, a
    /// Cluster, Sentinels); its TLS flags go in `extra`.
    pub redis_url: Option<String>,
}

/// A `baton-worker` process.
pub struct Worker {
    pub proc: Proc,
    pub log: PathBuf,
}

impl Worker {
    pub fn start(redis: &Redis, standin: &Standin, opts: &WorkerOpts) -> Result<Self> {
        let log = opts
            .config_dir
            .with_extension(format!("{}.log", uuid::Uuid::new_v4().simple()));
        let logf = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin("baton-worker"));
        cmd.arg("--redis-url")
            .arg(opts.redis_url.clone().unwrap_or_else(|| redis.url()))
            .arg("--workspace-root")
            .arg(&opts.workspace_root)
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--claude-bin")
            .arg(&opts.claude_bin)
            .arg("--claude-config-dir")
            .arg(&opts.config_dir)
            .arg("--state-dir")
            .arg(&opts.state_dir)
            .args(&opts.extra)
            .env("ANTHROPIC_BASE_URL", standin.base_url())
            .env("ANTHROPIC_API_KEY", "test-key-not-real")
            .env("BATON_LOG", &opts.log_filter)
            .env("NO_COLOR", "1")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(logf);
        if let Some(h) = &opts.home {
            cmd.env("HOME", h);
        }
        let child = cmd.spawn().context("starting baton-worker")?;
        Ok(Self {
            proc: Proc {
                child,
                name: "baton-worker".into(),
            },
            log,
        })
    }

    /// The worker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.proc.signal(libc::SIGTERM);
        self.proc.wait_exit(within)
    }
}

/// Runs the `baton` CLI.
pub fn baton(redis: &Redis, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    baton_at(&redis.url(), args, stdin)
}

/// Runs the `baton` CLI against `url` (TLS, a Cluster, Sentinels).
pub fn baton_at(url: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut child = Command::new(bin("baton"))
        .arg("--redis-url")
        .arg(url)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

/// A test's whole pool: Redis, the stand-in, a temp folder, and the key layout.
pub struct Pool {
    pub redis: Redis,
    pub standin: Standin,
    pub dir: TempDir,
    pub keys: Keys,
    pub workers: Vec<Worker>,
}

impl Pool {
    pub fn start() -> Result<Self> {
        Self::start_with_redis(Redis::start()?)
    }

    pub fn start_with_redis(redis: Redis) -> Result<Self> {
        Ok(Self {
            redis,
            standin: Standin::start()?,
            dir: TempDir::new("pool"),
            keys: Keys::default(),
            workers: Vec::new(),
        })
    }

    /// Options for a worker on its own "machine" (config dir and HOME of its own), sharing the
    /// pool's workspace root.
    pub fn machine(&self, name: &str, concurrency: u16) -> WorkerOpts {
        let home = self.dir.path().join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("create home");
        WorkerOpts {
            concurrency,
            workspace_root: self.dir.path().join("workspaces"),
            config_dir: self.dir.path().join(format!("claude-{name}")),
            state_dir: self.dir.path().join(format!("state-{name}")),
            home: Some(home),
            claude_bin: claude_bin(),
            env: Vec::new(),
            log_filter: std::env::var("BATON_TEST_LOG")
                .unwrap_or_else(|_| "info,baton_worker=debug".into()),
            redis_url: None,
            extra: vec![
                // Where the tests keep their bare remotes, and nothing else of the pool's.
                "--repo-allow-path".into(),
                crate::git::remotes_dir(self.dir.path())
                    .display()
                    .to_string(),
                "--lease".into(),
                "6s".into(),
                "--dead-after".into(),
                "8s".into(),
                "--retry-delay".into(),
                "200ms".into(),
                "--retry-max-delay".into(),
                "1s".into(),
            ],
        }
    }

    /// Options for a worker on a machine that shares nothing with the others but Redis (and
    /// the remotes plans name): a workspace root, state dir, HOME and CLI config dir of its own.
    pub fn separate_machine(&self, name: &str, concurrency: u16) -> WorkerOpts {
        let mut opts = self.machine(name, concurrency);
        opts.workspace_root = self.dir.path().join(format!("machine-{name}/workspaces"));
        opts
    }

    /// Starts `baton dashboard` on a free loopback port; with `token`, actions are enabled and
    /// need it. Returns the process and the base URL.
    pub fn start_dashboard(&self, token: Option<&str>) -> Result<(Proc, String)> {
        self.start_dashboard_with(token, &[])
    }

    /// [`Pool::start_dashboard`] with more flags for `baton dashboard`.
    pub fn start_dashboard_with(
        &self,
        token: Option<&str>,
        extra: &[&str],
    ) -> Result<(Proc, String)> {
        let port = crate::proc::free_port();
        let mut cmd = Command::new(bin("baton"));
        cmd.arg("--redis-url")
            .arg(self.redis.url())
            .arg("dashboard")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(t) = token {
            cmd.arg("--allow-actions").env("BATON_DASHBOARD_TOKEN", t);
        }
        let proc = Proc {
            child: cmd.spawn().context("starting baton dashboard")?,
            name: "baton dashboard".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("the dashboard did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok((proc, format!("http://127.0.0.1:{port}")))
    }

    /// Starts a worker; returns its index in `workers`.
    pub fn add_worker(&mut self, opts: &WorkerOpts) -> Result<usize> {
        self.workers
            .push(Worker::start(&self.redis, &self.standin, opts)?);
        Ok(self.workers.len() - 1)
    }

    pub async fn conn(&self) -> Result<baton_connect::Conn> {
        self.redis.conn().await
    }

    /// `LPUSH`es a raw document onto the submit list.
    pub async fn submit(&self, doc: &str) -> Result<()> {
        let mut c = self.conn().await?;
        let _: i64 = redis::AsyncCommands::lpush(&mut c, self.keys.submit(), doc).await?;
        Ok(())
    }

    /// A plan's metadata field.
    pub async fn plan_field(&self, plan: &str, field: &str) -> Result<Option<String>> {
        let mut c = self.conn().await?;
        Ok(redis::AsyncCommands::hget(&mut c, self.keys.plan(&plan.parse()?), field).await?)
    }

    /// The end of every worker's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        let logs: Vec<String> = self.workers.iter().map(|w| w.log()).collect();
        let all = logs.join("\n---\n");
        let skip = all.chars().count().saturating_sub(
            if std::env::var_os("BATON_TEST_FULL_LOGS").is_some() {
                1_000_000
            } else {
                6000
            },
        );
        all.chars().skip(skip).collect()
    }

    /// Waits until the plan's state is one of `states`; fails with the workers' logs otherwise.
    pub async fn wait_state(
        &self,
        plan: &str,
        states: &[&str],
        within: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.plan_field(plan, "state").await? {
                if states.contains(&s.as_str()) {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                bail!(
                    "plan {plan} did not reach {states:?} within {within:?}; worker logs:\n{tail}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` tasks of the plan are committed and it is no longer running, and returns
    /// its state (a follow-up's plan is still `completed` from before until it is ingested).
    pub async fn wait_done(&self, plan: &str, n: u64, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let done: u64 = self
                .plan_field(plan, "done")
                .await?
                .and_then(|d| d.parse().ok())
                .unwrap_or(0);
            let state = self.plan_field(plan, "state").await?.unwrap_or_default();
            if done >= n && (state == "completed" || state == "failed") {
                return Ok(state);
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                bail!("plan {plan} did not commit {n} tasks within {within:?} (done {done}, state {state}); worker logs:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The plan's stored events.
    pub async fn events(&self, plan: &str) -> Result<Vec<Event>> {
        let mut c = self.conn().await?;
        let raw: Vec<String> =
            redis::AsyncCommands::lrange(&mut c, self.keys.events(&plan.parse()?), 0, -1).await?;
        raw.iter().map(|r| strict_event(r)).collect()
    }

    /// The plan's committed results.
    pub async fn results(&self, plan: &str) -> Result<Vec<baton_core::records::TaskResult>> {
        let mut c = self.conn().await?;
        let raw: Vec<String> =
            redis::AsyncCommands::lrange(&mut c, self.keys.results(&plan.parse()?), 0, -1).await?;
        Ok(raw
            .iter()
            .map(|r| serde_json::from_str(r))
            .collect::<Result<_, _>>()?)
    }

    /// Waits for the dead letter of a document naming `plan` (the first found); fails with the
    /// workers' logs otherwise.
    /// Every dead letter, newest first (a letter that does not parse is an error: the format
    /// is baton's own).
    pub async fn dead_letters(&self) -> Result<Vec<baton_core::records::DeadLetter>> {
        let mut c = self.conn().await?;
        let dead: Vec<String> =
            redis::AsyncCommands::lrange(&mut c, self.keys.dead(), 0, -1).await?;
        dead.iter()
            .map(|d| serde_json::from_str(d).map_err(Into::into))
            .collect()
    }

    pub async fn wait_dead_letter(
        &self,
        plan: &str,
        within: Duration,
    ) -> Result<baton_core::records::DeadLetter> {
        let deadline = Instant::now() + within;
        let mut c = self.conn().await?;
        loop {
            let dead: Vec<String> =
                redis::AsyncCommands::lrange(&mut c, self.keys.dead(), 0, -1).await?;
            let found = dead
                .iter()
                .filter_map(|d| serde_json::from_str::<baton_core::records::DeadLetter>(d).ok())
                .find(|l| l.plan_id.as_ref().is_some_and(|p| p.as_str() == plan));
            if let Some(l) = found {
                return Ok(l);
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                bail!("no dead letter for {plan} within {within:?}; worker logs:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Pool-wide counter.
    pub async fn stat(&self, name: &str) -> Result<i64> {
        let mut c = self.conn().await?;
        let v: Option<i64> = redis::AsyncCommands::hget(&mut c, self.keys.stats(), name).await?;
        Ok(v.unwrap_or(0))
    }
}

/// An event as stored or published, parsed into its typed form, which must say all it said:
/// the typed event serializes back to the same JSON (a field the worker writes under a name the
/// typed event does not know, or a value of another type, fails here).
pub fn strict_event(raw: &str) -> Result<Event> {
    let ev: Event = serde_json::from_str(raw).with_context(|| format!("event {raw}"))?;
    let written: serde_json::Value = serde_json::from_str(raw)?;
    ensure!(
        ev.to_value() == written,
        "the typed event does not say all the stored one did:\n stored {written}\n typed  {}",
        ev.to_json()
    );
    Ok(ev)
}
