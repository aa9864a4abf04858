//! One Claude CLI process of the spare section (`spare.rs`), run without a box: the command
//! line and environment as baton's worker builds them (`crates/worker/src/claude/process.rs`),
//! every stdout line with the time it arrived, the session's transcript file watched for the
//! lines appended to it, and what the process used (CPU, memory) read from `/proc`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on every Linux architecture).
const TICKS: f64 = 100.0;

/// Where the section's runs live: one CLI config dir for all of them (as a worker has), a
/// neutral folder spares start in, and a new workspace per run (a new plan).
pub(super) struct Place {
    pub(super) base_url: String,
    pub(super) config: PathBuf,
    pub(super) park: PathBuf,
    root: PathBuf,
}

impl Place {
    pub(super) fn new(root: &Path, base_url: String) -> Result<Self> {
        let root = root.canonicalize()?;
        let (config, park) = (root.join("config"), root.join("park"));
        for d in [&config, &park, &root.join("home"), &root.join("ws")] {
            std::fs::create_dir_all(d)?;
        }
        Ok(Self {
            base_url,
            config,
            park,
            root,
        })
    }

    /// A new workspace folder, canonical (the CLI records the real path).
    pub(super) fn workspace(&self, name: &str) -> Result<PathBuf> {
        let ws = self.root.join("ws").join(name);
        std::fs::create_dir_all(&ws)?;
        Ok(ws.canonicalize()?)
    }

    /// The transcript of session `id` run in `ws`: `<config>/projects/<ws encoded>/<id>.jsonl`.
    pub(super) fn transcript(&self, ws: &Path, id: &str) -> PathBuf {
        let encoded: String = ws
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.config
            .join("projects")
            .join(encoded)
            .join(format!("{id}.jsonl"))
    }

    /// The environment of a run without a box, as the worker's `child_env` builds it.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("HOME", self.root.join("home").display().to_string()),
            ("LANG", "C.UTF-8".to_owned()),
            ("CLAUDE_CONFIG_DIR", self.config.display().to_string()),
            ("ANTHROPIC_BASE_URL", self.base_url.clone()),
            ("ANTHROPIC_API_KEY", "bench-key-not-real".to_owned()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// How a process reads its task.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `claude -p`, the prompt on stdin then closed (baton's cold mode).
    Cold,
    /// stream-json messages on stdin (baton's warm mode).
    Warm,
    /// Warm, started ahead with `--await-claim`: it waits for a `claim_session`.
    Spare,
}

/// The worker's arguments for a new session with a plan's default options, for `kind`;
/// `mirror` adds `--session-mirror`.
pub(super) fn args(kind: Kind, session: &str, mirror: bool) -> Vec<String> {
    let mut a = vec!["-p".to_owned()];
    if kind != Kind::Cold {
        a.push("--input-format=stream-json".into());
    }
    for s in [
        "--output-format=stream-json",
        "--verbose",
        "--permission-mode=acceptEdits",
        "--setting-sources=",
        r#"--mcp-config={"mcpServers":{}}"#,
        "--strict-mcp-config",
    ] {
        a.push(s.into());
    }
    a.push(format!("--session-id={session}"));
    if kind == Kind::Spare {
        a.push("--await-claim".into());
    }
    if mirror {
        a.push("--session-mirror".into());
    }
    a
}

/// A running CLI: its stdout lines as they come, each with the time it arrived.
pub(super) struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    stderr: tokio::task::JoinHandle<String>,
    /// Every line read so far, in order.
    pub(super) log: Vec<(Instant, Value)>,
    pub(super) spawned: Instant,
    /// CPU of this process's waited-for children before the spawn.
    children_cpu_before: f64,
}

impl Cli {
    /// Starts the CLI in `cwd` with `args`; `extra` is added to the environment.
    pub(super) fn spawn(
        place: &Place,
        cwd: &Path,
        args: &[String],
        extra: &[(&str, &str)],
    ) -> Result<Self> {
        let children_cpu_before = children_cpu()?;
        let mut cmd = tokio::process::Command::new(baton_tests::claude_bin());
        cmd.args(args)
            .current_dir(cwd)
            .env_clear()
            .envs(place.env())
            .envs(extra.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
        let mut child = cmd.spawn().context("starting the Claude CLI")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("stdout was piped")?;
        let mut stderr = child.stderr.take().context("stderr was piped")?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = Instant::now();
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send((at, v)).is_err() {
                        break;
                    }
                }
            }
        });
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        Ok(Self {
            child,
            stdin,
            rx,
            stderr,
            log: Vec::new(),
            spawned,
            children_cpu_before,
        })
    }

    pub(super) fn pid(&self) -> Result<i32> {
        let pid = self.child.id().context("the CLI has exited")?;
        Ok(i32::try_from(pid)?)
    }

    /// Writes one JSON line on the CLI's stdin.
    pub(super) async fn send(&mut self, v: &Value) -> Result<Instant> {
        let stdin = self.stdin.as_mut().context("stdin is closed")?;
        let mut line = v.to_string();
        line.push('\n');
        let at = Instant::now();
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await?;
        Ok(at)
    }

    /// Closes stdin (the prompt of a cold run is written first); returns when.
    pub(super) async fn close(&mut self, last: Option<&str>) -> Result<Instant> {
        if let (Some(stdin), Some(text)) = (self.stdin.as_mut(), last) {
            stdin.write_all(text.as_bytes()).await?;
        }
        self.stdin = None;
        Ok(Instant::now())
    }

    /// Reads until a line that `pred` accepts (`what` names it in errors).
    pub(super) async fn until(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Result<(Instant, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(Some((at, v))) = got else {
                let stderr = match got {
                    Ok(None) => tokio::time::timeout(Duration::from_secs(5), &mut self.stderr)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                bail!("no {what} from the CLI within {within:?}; stderr: {stderr}");
            };
            self.log.push((at, v.clone()));
            if pred(&v) {
                return Ok((at, v));
            }
        }
    }

    /// Waits for the exit (stdin closed before); returns when it was seen, and the CPU seconds
    /// the process used in all (read once it was reaped).
    pub(super) async fn exit(mut self) -> Result<(Instant, f64, Vec<(Instant, Value)>)> {
        self.stdin = None;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| anyhow!("the CLI did not exit within 30 s"))??;
        let at = Instant::now();
        // The rest of stdout (the reader ends with it), for the log.
        while let Some(line) = self.rx.recv().await {
            self.log.push(line);
        }
        if !status.success() {
            let stderr = self.stderr.await.unwrap_or_default();
            bail!("the CLI exited with {status}: {stderr}");
        }
        let cpu = children_cpu()? - self.children_cpu_before;
        Ok((at, cpu, self.log))
    }
}

/// The fields of `/proc/<pid>/stat` after the command name, from the state on.
fn stat_fields(pid: &str) -> Result<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, rest) = stat.rsplit_once(')').context("no command name in stat")?;
    // The state (a letter) is field 3; the numbers come after it.
    Ok(rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect())
}

/// CPU seconds (user + system, all threads) that process `pid` has used so far.
pub(super) fn cpu_of(pid: i32) -> Result<f64> {
    let f = stat_fields(&pid.to_string())?;
    // utime and stime are fields 14 and 15; the list starts at field 4.
    Ok((f[10] + f[11]) as f64 / TICKS)
}

/// CPU seconds of this process's children that it has waited for (fields 16 and 17).
fn children_cpu() -> Result<f64> {
    let f = stat_fields("self")?;
    Ok((f[12] + f[13]) as f64 / TICKS)
}

/// What a process holds in memory, in KiB: resident, of which anonymous (its own: the
/// binary's pages are shared by every CLI process), and its proportional share (Pss).
pub(super) struct Memory {
    pub(super) rss: u64,
    pub(super) anon: u64,
    pub(super) pss: u64,
}

/// [`Memory`] of process `pid`.
pub(super) fn memory(pid: i32) -> Result<Memory> {
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Ok(Memory {
        rss: field(&status, "VmRSS:"),
        anon: field(&status, "RssAnon:"),
        pss: field(&rollup, "Pss:"),
    })
}

/// A transcript file watched from a thread (its size looked at every millisecond): each
/// complete line appended, with the time it was seen.
pub(super) struct Watch {
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watch {
    pub(super) fn start(path: PathBuf) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (out, done) = (lines.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut offset, mut partial) = (0u64, Vec::new());
            while !done.load(Ordering::Relaxed) {
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if len > offset {
                    let mut bytes = Vec::new();
                    if let Ok(mut f) = std::fs::File::open(&path) {
                        let _ = f.seek(SeekFrom::Start(offset));
                        let _ = f.read_to_end(&mut bytes);
                    }
                    let at = Instant::now();
                    offset += bytes.len() as u64;
                    partial.extend_from_slice(&bytes);
                    let mut seen = out.lock().expect("watch lines");
                    while let Some(nl) = partial.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=nl).collect();
                        seen.push((at, String::from_utf8_lossy(&line).into_owned()));
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            lines,
            stop,
            thread,
        }
    }

    /// Stops watching; the lines seen.
    pub(super) fn stop(self) -> Vec<(Instant, String)> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let lines = self.lines.lock().expect("watch lines");
        lines.clone()
    }
}
