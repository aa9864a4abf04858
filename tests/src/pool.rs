//! A test's pool: its Redis, its stand-in, worker processes on separate "machines" (config dirs
//! and HOMEs of their own), the `baton` CLI, and what a test reads back from Redis (through
//! baton-client, typed: a plan is a `PlanId`, a state a `PlanState`, a counter a `Counter`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use baton_client::{Client, ClientError, PlanView};
use baton_core::records::{DeadLetter, TaskResult};
use baton_core::{Counter, Event, EventKind, Keys, PlanField, PlanId, PlanState};

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
            // No spare CLIs unless a test asks (`--spare-cli N`): each costs a CLI start, and
            // most tests are about something else.
            .env("BATON_SPARE_CLI", "0")
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
    /// How the pool's reads reach Redis (baton-client, as `baton status` and the dashboard
    /// read): a client per read, connected afresh, so a read after a Redis restart does not
    /// meet the connection the restart broke.
    connector: baton_connect::Connector,
}

impl Pool {
    pub fn start() -> Result<Self> {
        Self::start_with_redis(Redis::start()?)
    }

    pub fn start_with_redis(redis: Redis) -> Result<Self> {
        Self::start_with(redis, Standin::start()?)
    }

    /// A pool on `redis` whose model is `standin` (one started with answer keys, say).
    pub fn start_with(redis: Redis, standin: Standin) -> Result<Self> {
        let keys = Keys::default();
        let connector = baton_connect::Connector::new(&baton_connect::RedisArgs {
            redis_url: redis.url(),
            ..Default::default()
        })?;
        Ok(Self {
            connector,
            redis,
            standin,
            dir: TempDir::new("pool"),
            keys,
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

    /// The pool's read library (baton-client), over a connection of its own (made on its
    /// first read).
    pub fn client(&self) -> Client {
        Client::connect(&self.connector, self.keys.clone())
    }

    /// A failed wait with the workers' logs (when it timed out), for a failing test's message.
    fn waited(&self, e: ClientError) -> anyhow::Error {
        match e {
            ClientError::TimedOut { .. } => {
                anyhow!("{e}; worker logs:\n{}", self.log_tail())
            }
            other => other.into(),
        }
    }

    /// One read through a fresh client. Against Sentinels or a Cluster, a read Redis asks to
    /// retry (a failover under way) is made again for up to 30 s, as connecting is.
    async fn read<T, F, Fut>(&self, read: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        let failover = self.redis.url() != self.redis.node_url();
        loop {
            match read(self.client()).await {
                Err(e) if failover && e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return Ok(other?),
            }
        }
    }

    /// The plan as a reader sees it; `None` when there is no such plan.
    pub async fn plan(&self, plan: &PlanId) -> Result<Option<PlanView>> {
        self.read(|c| async move { c.plan(plan).await }).await
    }

    /// The plan's state; `None` when there is no such plan.
    pub async fn state(&self, plan: &PlanId) -> Result<Option<PlanState>> {
        Ok(self.plan(plan).await?.and_then(|v| v.state()))
    }

    /// A plan hash field as stored (for the fields a [`PlanView`] reads typed, prefer it).
    pub async fn plan_field(&self, plan: &PlanId, field: PlanField) -> Result<Option<String>> {
        let mut c = self.client().conn();
        Ok(redis::AsyncCommands::hget(&mut c, self.keys.plan(plan), field.as_str()).await?)
    }

    /// Waits until the plan's state is one of `states`; fails with the workers' logs otherwise.
    pub async fn wait_state(
        &self,
        plan: &PlanId,
        states: &[PlanState],
        within: Duration,
    ) -> Result<PlanState> {
        self.client()
            .wait_state(plan, states, within)
            .await
            .map_err(|e| self.waited(e))
    }

    /// Waits until `n` tasks of the plan are committed and it is no longer running, and returns
    /// its state (a follow-up's plan is still `completed` from before until it is ingested).
    pub async fn wait_done(&self, plan: &PlanId, n: u64, within: Duration) -> Result<PlanState> {
        let what = format!("commit {n} task(s) and end");
        let view = self
            .client()
            .wait_plan(plan, &what, within, |v| {
                v.tasks_done() >= n
                    && matches!(v.state(), Some(PlanState::Completed | PlanState::Failed))
            })
            .await
            .map_err(|e| self.waited(e))?;
        Ok(view.state().unwrap_or(PlanState::Failed))
    }

    /// Waits until the plan has stored an event of `kind`; returns the first such.
    pub async fn wait_event(
        &self,
        plan: &PlanId,
        kind: EventKind,
        within: Duration,
    ) -> Result<Event> {
        self.client()
            .wait_event(plan, kind, within)
            .await
            .map_err(|e| self.waited(e))
    }

    /// Waits until the plan has stored at least `n` events of `kind`; returns all its events.
    pub async fn wait_events(
        &self,
        plan: &PlanId,
        kind: EventKind,
        n: usize,
        within: Duration,
    ) -> Result<Vec<Event>> {
        let what = format!("{n} {kind} event(s)");
        self.client()
            .wait_events(plan, &what, within, |evs| {
                (evs.iter().filter(|e| e.kind() == kind).count() >= n).then(|| evs.to_vec())
            })
            .await
            .map_err(|e| self.waited(e))
    }

    /// Tasks of the plan committed so far (0 when there is no such plan).
    pub async fn done(&self, plan: &PlanId) -> Result<u64> {
        Ok(self.plan(plan).await?.map_or(0, |v| v.tasks_done()))
    }

    /// Waits until the pool-wide `counter` is at least `n`; returns its value.
    pub async fn wait_counter(&self, counter: Counter, n: i64, within: Duration) -> Result<i64> {
        self.client()
            .wait_counter(counter, n, within)
            .await
            .map_err(|e| self.waited(e))
    }

    /// The plan's stored events (an error if one does not decode).
    pub async fn events(&self, plan: &PlanId) -> Result<Vec<Event>> {
        let stored = self
            .read(|c| async move { c.events_after(plan, None).await })
            .await?;
        stored.iter().map(|(_, raw)| strict_event(raw)).collect()
    }

    /// The plan's committed results (an error if one does not decode).
    pub async fn results(&self, plan: &PlanId) -> Result<Vec<TaskResult>> {
        self.read(|c| async move { c.results(plan).await }).await
    }

    /// Every dead letter, newest first (a letter that does not parse is an error: the format
    /// is baton's own).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        self.read(|c| async move { c.dead_letters_strict().await })
            .await
    }

    /// Waits for the dead letter of a document naming `plan` (the newest found); fails with
    /// the workers' logs otherwise.
    pub async fn wait_dead_letter(&self, plan: &PlanId, within: Duration) -> Result<DeadLetter> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self
                .read(|c| async move { c.dead_letter_for(plan).await })
                .await?
            {
                return Ok(l);
            }
            if Instant::now() > deadline {
                let tail = self.log_tail();
                bail!("no dead letter for {plan} within {within:?}; worker logs:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// True while a worker holds the plan or is about to: its lease is taken, or it is on a
    /// worker's in-flight list (claimed, not yet handed back).
    pub async fn held(&self, plan: &PlanId) -> Result<bool> {
        let mut c = self.client().conn();
        let locked: bool = redis::AsyncCommands::exists(&mut c, self.keys.lock(plan)).await?;
        if locked {
            return Ok(true);
        }
        let workers: Vec<String> =
            redis::AsyncCommands::zrange(&mut c, self.keys.workers(), 0, -1).await?;
        for w in workers.iter().filter_map(|w| w.parse().ok()) {
            let held: Vec<String> =
                redis::AsyncCommands::lrange(&mut c, self.keys.inflight(&w), 0, -1).await?;
            if held.iter().any(|h| h == plan.as_str()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Waits until no worker holds the plan (see [`Pool::held`]): its hold is over, so a check
    /// that nothing more happened to it is made after the moment it could have, not after a
    /// sleep that hopes so.
    pub async fn wait_unheld(&self, plan: &PlanId, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while self.held(plan).await? {
            if Instant::now() > deadline {
                let tail = self.log_tail();
                bail!("plan {plan} was still held after {within:?}; worker logs:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// How many times the workers' logs say so far that a slot found the pool paused and
    /// claimed nothing (the slots' debug line, on in the tests' default log filter): a count
    /// that grows after a moment proves the claim loop looked after it.
    pub fn paused_claims(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.log().matches("pool paused; not claiming").count())
            .sum()
    }

    /// A pool-wide counter.
    pub async fn stat(&self, counter: Counter) -> Result<i64> {
        self.read(|c| async move { c.pool_counter(counter).await })
            .await
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
