//! The box every CLI run lives in: bubblewrap (`bwrap`) driven directly, on by default.
//!
//! A plan document, and everything it names (its repository's settings, its MCP servers, its
//! tool grants), is untrusted. Inside the box a CLI run, with everything it starts (tools,
//! Bash, hooks, MCP servers), sees:
//! - the plan's workspace, read-write, at one fixed path, [`BOX_WORKSPACE`] (`/workspace`),
//!   whatever its path on the worker: transcripts record that path, so a conversation reads the
//!   same on every worker, and a box made before its plan is known (a spare CLI, `spare`) can
//!   be given the plan's folder later;
//! - the CLI's config dir as an empty private folder, with only this workspace's project folder
//!   (where the session's transcript lives) bound in read-write, where the CLI keeps
//!   `/workspace`'s sessions: no other plan's transcript;
//! - `/usr` (the system's programs and libraries) and a few named files of `/etc`, read-only;
//!   the CLI's own folder and this worker's executable (the in-box relay), read-only; the
//!   operator's `--sandbox-read` / `--sandbox-write` paths;
//! - a private `/tmp`, `/proc` of its own pid namespace, a minimal `/dev`, and a HOME in `/tmp`;
//! - no network but its own loopback, where the relay (`relay`) forwards one port to the
//!   worker's model gateway over a unix socket bound in: the model, and through the gateway's
//!   CONNECT proxy the hosts of `--sandbox-allow-host`, nothing else;
//! - a clean environment (`--clearenv`): nothing of the worker's (no `BATON_*`, no Redis URL,
//!   no API key: the gateway holds it).
//!
//! Nothing else of the worker's disk is there: no other workspace, no `--state-dir`, no HOME,
//! no ssh keys, no worker config. All namespaces are unshared (user, pid, net, ipc, uts,
//! cgroup), every capability is dropped, the box gets a session of its own (no terminal
//! injection) and dies with the worker.
//!
//! # Layout
//! - this module: [`SandboxMode`], the probe at start-up ([`Sandbox::probe`]) and the command
//!   of a boxed run ([`Sandbox::command`]).
//! - `args`: bubblewrap's arguments for a run, which say what the box sees (the list above).
//! - `freeze`: a box held still while the worker's git works on its workspace.
//! - `relay`: the program the box starts first (this same executable, [`RELAY_ARG`]): it
//!   listens on the box's loopback, forwards to the gateway's socket and runs the CLI.

mod args;
pub(crate) mod freeze;
pub mod relay;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The first argument that makes `baton-worker` the in-box relay instead of a worker.
pub const RELAY_ARG: &str = "__baton-box-relay";
/// The first argument that makes `baton-worker` exit 0 at once (kept for checking a box by
/// hand: `bwrap ... baton-worker __baton-box-probe`).
pub const PROBE_ARG: &str = "__baton-box-probe";
/// How long the start-up probe may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The port the relay listens on inside the box (the box has a loopback of its own).
pub(crate) const BOX_PORT: u16 = 41_001;
/// Where the gateway's socket appears inside the box.
const BOX_SOCKET: &str = "/run/baton/gateway.sock";
/// HOME inside the box: on its private `/tmp`.
pub(crate) const BOX_HOME: &str = "/tmp/home";
/// Where the plan's workspace is inside every box (its path on the worker is not shown).
pub(crate) const BOX_WORKSPACE: &str = "/workspace";
/// PATH inside the box.
pub(crate) const BOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// `--sandbox`: whether CLI runs are boxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SandboxMode {
    /// The best sandbox this machine has (today: bubblewrap); the worker refuses to start
    /// where none can start, saying why and how to fix it.
    #[default]
    Auto,
    /// bubblewrap, required: like `auto`, but names the backend.
    On,
    /// No box: plans run with the worker's own access to the disk and the network. Only when
    /// asked for by name; logged as a warning and shown in the `baton_worker_info` metric and the dashboard.
    Off,
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::On => "on",
            Self::Off => "off",
        })
    }
}

/// Why the sandbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox needs bubblewrap, and {bwrap} could not be run: install it (Debian/Ubuntu: \
         apt-get install bubblewrap; Fedora: dnf install bubblewrap), point --sandbox-bwrap at \
         it, or run plans unconfined with --sandbox off"
    )]
    Missing {
        bwrap: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the sandbox cannot start here: bubblewrap said {said:?}. It needs user namespaces (or \
         root) and mount, pid and network namespaces: on a host, allow unprivileged user \
         namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu \
         kernel.apparmor_restrict_unprivileged_userns=0); in a container, run it with a \
         seccomp and AppArmor profile that allow unshare and mount (Kubernetes: see \
         deploy/kubernetes, the worker's securityContext), or run plans unconfined with \
         --sandbox off"
    )]
    CannotStart { said: String },
    #[error("the sandbox's paths are unusable: {path}")]
    Path {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The box's settings, checked once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    bwrap: PathBuf,
    /// This executable (the relay inside the box), canonical.
    relay: PathBuf,
    /// The CLI's real executable (links followed), run by the relay.
    cli: PathBuf,
    /// The gateway's unix socket on the worker's side.
    socket: PathBuf,
    /// Folders bound read-only besides the system's: the CLI's own, `--sandbox-read`.
    read: Vec<PathBuf>,
    /// `--sandbox-write`: folders every plan's box may write (shared caches).
    write: Vec<PathBuf>,
}

/// What one boxed run needs besides the sandbox's settings.
pub(crate) struct BoxedRun<'a> {
    /// The plan's workspace on the worker (canonical): the box's [`BOX_WORKSPACE`].
    pub(crate) cwd: &'a Path,
    /// The CLI config dir's path (the box sees an empty one there).
    pub(crate) config_dir: &'a Path,
    /// The session's project folder on the worker (bound read-write where the CLI keeps
    /// [`BOX_WORKSPACE`]'s sessions).
    pub(crate) project_dir: &'a Path,
    /// The program and its arguments.
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [OsString],
    /// The environment, whole: nothing else is set inside.
    pub(crate) env: &'a [(String, String)],
}

impl Sandbox {
    /// The sandbox for `mode` (`None` for `off`), after a probe that starts a real box with
    /// the settings every run will have: a machine that cannot run it is refused here, once,
    /// with the reason, not at every task.
    ///
    /// # Errors
    /// [`SandboxError`]: bubblewrap missing, or unable to start a box here.
    pub(crate) async fn probe(
        mode: SandboxMode,
        bwrap: &Path,
        cli: &Path,
        socket: &Path,
        read: &[PathBuf],
        write: &[PathBuf],
    ) -> Result<Option<Self>, SandboxError> {
        if mode == SandboxMode::Off {
            return Ok(None);
        }
        let sandbox = Self::resolve(bwrap, cli, socket, read, write)?;
        sandbox.start_probe_box().await?;
        Ok(Some(sandbox))
    }

    /// The settings with every path made canonical: this executable, the CLI (found on PATH
    /// if need be), the folders to bind.
    fn resolve(
        bwrap: &Path,
        cli: &Path,
        socket: &Path,
        read: &[PathBuf],
        write: &[PathBuf],
    ) -> Result<Self, SandboxError> {
        let relay = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(path_err(Path::new("the worker's own executable")))?;
        let cli = cli_path(cli).map_err(path_err(cli))?;
        let mut folders = vec![cli
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_owned)];
        for p in read {
            folders.push(p.canonicalize().map_err(path_err(p))?);
        }
        let mut writable = Vec::new();
        for p in write {
            writable.push(p.canonicalize().map_err(path_err(p))?);
        }
        Ok(Self {
            bwrap: bwrap.to_owned(),
            relay,
            cli,
            socket: socket.to_owned(),
            read: folders,
            write: writable,
        })
    }

    /// Starts one real box with these settings, in a scratch folder it then removes: the CLI
    /// itself, relayed, as every run will be. A CLI the box cannot see or start (a node script
    /// whose node is outside the box, say) is refused here, not at each task.
    async fn start_probe_box(&self) -> Result<(), SandboxError> {
        let probe_dir =
            std::env::temp_dir().join(format!("baton-probe-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&probe_dir).map_err(path_err(&probe_dir))?;
        let args = [OsString::from("--version")];
        let env = [
            ("PATH".to_owned(), BOX_PATH.to_owned()),
            ("HOME".to_owned(), BOX_HOME.to_owned()),
        ];
        let run = BoxedRun {
            cwd: &probe_dir,
            config_dir: &probe_dir,
            project_dir: &probe_dir,
            program: &self.cli,
            args: &args,
            env: &env,
        };
        let mut cmd = self.command(&run);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(PROBE_TIMEOUT, cmd.output()).await;
        let _ = std::fs::remove_dir_all(&probe_dir);
        let Ok(out) = out else {
            return Err(SandboxError::CannotStart {
                said: format!("no answer within {PROBE_TIMEOUT:?}"),
            });
        };
        let out = out.map_err(|source| SandboxError::Missing {
            bwrap: self.bwrap.display().to_string(),
            source,
        })?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(SandboxError::CannotStart {
                said: if said.is_empty() {
                    out.status.to_string()
                } else {
                    said
                },
            });
        }
        Ok(())
    }

    /// The command that runs `run` in a box: bubblewrap, then the relay, then the program.
    pub(crate) fn command(&self, run: &BoxedRun<'_>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bwrap);
        cmd.args(self.bwrap_args(run));
        // bubblewrap itself gets nothing of the worker's environment either.
        cmd.env_clear();
        cmd
    }

    /// Folders every box reads, for the logs.
    pub(crate) fn read_paths(&self) -> &[PathBuf] {
        &self.read
    }

    /// The CLI executable the box runs.
    pub(crate) fn cli(&self) -> &Path {
        &self.cli
    }
}

/// The working directory the CLI (and so the model, and the transcript) sees for the
/// workspace at `cwd`: [`BOX_WORKSPACE`] in a box, `cwd` itself without one.
pub(crate) fn model_cwd(boxed: bool, cwd: &Path) -> &Path {
    if boxed {
        Path::new(BOX_WORKSPACE)
    } else {
        cwd
    }
}

/// A path that cannot be resolved, as a [`SandboxError::Path`].
fn path_err(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError {
    let path = path.display().to_string();
    move |source| SandboxError::Path { path, source }
}

/// The CLI's real executable (`claude` on PATH, or a path; links followed).
fn cli_path(cli: &Path) -> std::io::Result<PathBuf> {
    let found = if cli.components().count() > 1 {
        cli.to_owned()
    } else {
        which(cli).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not on PATH", cli.display()),
            )
        })?
    };
    found.canonicalize()
}

/// The folder of the CLI `cli` names (found on PATH when it is a bare name), which every box
/// gets read-only; `None` when the CLI cannot be found (start-up says so elsewhere).
pub(crate) fn cli_folder(cli: &Path) -> Option<PathBuf> {
    cli_path(cli).ok()?.parent().map(Path::to_owned)
}

/// `name` looked up on the worker's PATH.
pub(crate) fn which(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
