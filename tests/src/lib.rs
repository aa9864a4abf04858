//! Test harness: starts real `redis-server` processes on free loopback ports, the model
//! stand-in, real `baton-worker` processes and the `baton` CLI, and gives tests a Redis client
//! and the stand-in's request log. Everything it starts is stopped when dropped.
//!
//! The binaries come from the workspace build (`cargo build --workspace` runs before the tests);
//! the Claude CLI from `$BATON_CLAUDE_BIN` or `<repo>/.tools/node_modules/.bin/claude`, where the
//! test script installs the pinned version.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_core::{Event, Keys};
use serde_json::Value;

pub mod faults;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// A built binary of the workspace, from the same `target/<profile>/` as the running executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // Tests run from target/<profile>/deps/, the fault-suite binary from target/<profile>/.
    let mut dir = exe.parent().expect("an executable has a folder");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps/ has a parent");
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// The Claude Code CLI the tests run.
pub fn claude_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BATON_CLAUDE_BIN") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".tools/node_modules/.bin/claude");
    assert!(
        p.exists(),
        "the Claude CLI is not installed at {}: run scripts/test.sh",
        p.display()
    );
    p
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A temporary folder removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "baton-test-{label}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    /// Sends a signal (e.g. `libc::SIGSTOP`).
    #[allow(unsafe_code)]
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid touches no memory of ours.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
    /// Waits up to `within` for the process to exit; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real redis-server on a free port.
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    pub proc: Option<Proc>,
    extra: Vec<String>,
}

impl Redis {
    /// Starts one without persistence.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts one with extra config arguments (e.g. `["--appendonly", "yes"]`).
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        let mut r = Self {
            port: free_port(),
            dir: TempDir::new("redis"),
            proc: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.spawn()?;
        Ok(r)
    }

    fn spawn(&mut self) -> Result<()> {
        let child = Command::new("redis-server")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("")
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (is it installed? scripts/test.sh installs it)")?;
        self.proc = Some(Proc {
            child,
            name: "redis-server".into(),
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server did not start on port {}", self.port)
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port and folder.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// Starts it again after it stopped, on the same port and folder (its AOF, if any, is
    /// loaded back).
    pub fn restart_keeping_data(&mut self) -> Result<()> {
        self.proc = None;
        self.spawn()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A fresh connection.
    pub async fn conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let cfg =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        Ok(client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }
}

/// The model stand-in.
pub struct Standin {
    pub addr: String,
    _proc: Proc,
}

impl Standin {
    pub fn start() -> Result<Self> {
        let mut child = Command::new(bin("baton-standin"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting baton-standin")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let addr = line
            .trim()
            .strip_prefix("BATON_STANDIN_ADDR=")
            .with_context(|| format!("stand-in printed {line:?}"))?
            .to_owned();
        Ok(Self {
            addr,
            _proc: Proc {
                child,
                name: "baton-standin".into(),
            },
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn http(&self, method: &str, path: &str, body: &str) -> Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr)?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            bail!("unexpected chunked response");
        }
        Ok(body.to_owned())
    }

    /// Every request body the stand-in served, oldest first.
    pub fn requests(&self) -> Result<Vec<Value>> {
        Ok(serde_json::from_str(&self.http(
            "GET",
            "/_requests",
            "",
        )?)?)
    }

    /// Sets a pool-wide fault (see the stand-in's docs).
    pub fn control(&self, body: Value) -> Result<()> {
        self.http("POST", "/_control", &body.to_string())?;
        Ok(())
    }
}

/// The user prompts of one recorded request, oldest first (system reminders and tool results
/// left out), as the stand-in itself reads them.
pub fn prompts_of(request: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in request
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        match m.get("content") {
            Some(Value::String(s)) => out.push(s.clone()),
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    if b.get("type").and_then(Value::as_str) == Some("text") {
                        let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.trim_start().starts_with("<system-reminder>") {
                            out.push(t.to_owned());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The first recorded request whose newest prompt contains `marker`.
pub fn first_request_with<'a>(requests: &'a [Value], marker: &str) -> Option<&'a Value> {
    requests
        .iter()
        .find(|r| prompts_of(r).last().is_some_and(|p| p.contains(marker)))
}

/// Settings for a worker process.
#[derive(Debug, Clone)]
pub struct WorkerOpts {
    pub concurrency: u16,
    pub workspace_root: PathBuf,
    pub config_dir: PathBuf,
    pub home: Option<PathBuf>,
    /// The CLI the worker runs (the pinned one unless a test wraps it).
    pub claude_bin: PathBuf,
    /// `BATON_LOG` for the worker.
    pub log_filter: String,
    pub extra: Vec<String>,
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
            .arg(redis.url())
            .arg("--workspace-root")
            .arg(&opts.workspace_root)
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--claude-bin")
            .arg(&opts.claude_bin)
            .arg("--claude-config-dir")
            .arg(&opts.config_dir)
            .args(&opts.extra)
            .env("ANTHROPIC_BASE_URL", standin.base_url())
            .env("ANTHROPIC_API_KEY", "test-key-not-real")
            .env("BATON_LOG", &opts.log_filter)
            .env("NO_COLOR", "1")
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
    let mut child = Command::new(bin("baton"))
        .arg("--redis-url")
        .arg(redis.url())
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
            home: Some(home),
            claude_bin: claude_bin(),
            log_filter: "info,baton_worker=debug".into(),
            extra: vec![
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

    /// Starts a worker; returns its index in `workers`.
    pub fn add_worker(&mut self, opts: &WorkerOpts) -> Result<usize> {
        self.workers
            .push(Worker::start(&self.redis, &self.standin, opts)?);
        Ok(self.workers.len() - 1)
    }

    pub async fn conn(&self) -> Result<redis::aio::MultiplexedConnection> {
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
        let skip = all.chars().count().saturating_sub(6000);
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
        Ok(raw
            .iter()
            .map(|r| serde_json::from_str(r))
            .collect::<Result<_, _>>()?)
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

    /// Pool-wide counter.
    pub async fn stat(&self, name: &str) -> Result<i64> {
        let mut c = self.conn().await?;
        let v: Option<i64> = redis::AsyncCommands::hget(&mut c, self.keys.stats(), name).await?;
        Ok(v.unwrap_or(0))
    }
}

/// A wrapper around the real CLI that appends one line per process start (its arguments) to a
/// log, then becomes the CLI: how a test counts the CLI processes a worker started.
pub struct CountingCli {
    pub bin: PathBuf,
    pub log: PathBuf,
}

impl CountingCli {
    /// Writes the wrapper into `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("claude-counting");
        let log = dir.join("claude-starts.log");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            claude_bin().display()
        );
        std::fs::write(&bin, script)?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { bin, log })
    }

    /// The argument lines of every start so far.
    pub fn starts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A plan document of `n` tasks whose prompts carry markers `<plan>-T<k>` (1-based).
pub fn marked_plan(plan: &str, n: usize) -> String {
    let tasks: Vec<Value> = (1..=n)
        .map(|k| serde_json::json!({"id": format!("t{k}"), "prompt": format!("Task marker {plan}-T{k}: step {k} of the plan.")}))
        .collect();
    serde_json::json!({"plan_id": plan, "tasks": tasks}).to_string()
}
