//! Processes and places: the workspace's binaries, the pinned Claude CLI, free ports, temporary
//! folders, child processes killed on drop, and a counting wrapper around the CLI.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Result;

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
    #[expect(
        unsafe_code,
        reason = "kill(2) on a child of ours; libc has no safe wrapper"
    )]
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

/// A wrapper around the real CLI that appends one line per process start (its arguments) to a
/// log, then becomes the CLI: how a test counts the CLI processes a worker started.
pub struct CountingCli {
    pub bin: PathBuf,
    pub log: PathBuf,
}

impl CountingCli {
    /// Writes the wrapper into a folder of its own in `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let folder = dir.join("counting-cli");
        let starts = folder.join("starts");
        std::fs::create_dir_all(&starts)?;
        let bin = folder.join("claude-counting");
        let log = starts.join("claude-starts.log");
        // The worker's start-up version check is not a start of the CLI for a task.
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = --version ] || echo \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            claude_bin().display()
        );
        std::fs::write(&bin, script)?;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { bin, log })
    }

    /// The worker flags a sandboxed worker needs to run the wrapper: the real CLI's folder to
    /// read, the log's folder to write (the wrapper's own folder is the CLI's, readable anyway).
    pub fn sandbox_flags(&self) -> Vec<String> {
        let real = claude_bin();
        let real = real.canonicalize().unwrap_or(real);
        let tools = real
            .ancestors()
            .find(|p| p.ends_with("node_modules"))
            .map_or_else(
                || claude_bin().parent().expect("a folder").to_owned(),
                Path::to_owned,
            );
        vec![
            "--sandbox-read".into(),
            tools.display().to_string(),
            "--sandbox-write".into(),
            self.log
                .parent()
                .expect("the log has a folder")
                .display()
                .to_string(),
        ]
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

/// The arguments process `pid` was started with (empty when it is gone).
pub fn cmdline(pid: &str) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The session id of a parked spare CLI started with `args` (`--await-claim` and
/// `--session-id`); `None` for any other process.
pub fn spare_session(args: &[String]) -> Option<String> {
    if !args.iter().any(|a| a == "--await-claim") {
        return None;
    }
    args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--session-id=")
            .map(str::to_owned)
            .or_else(|| (a == "--session-id").then(|| args.get(i + 1).cloned())?)
    })
}
