//! Spare CLIs: processes started before their plan, parked until a plan's first task claims
//! one, so that task skips the CLI's start-up (about 0.3 s and half a CPU-second measured, the
//! benchmark's `spare` section).
//!
//! A spare is the pinned CLI's `--await-claim` mode: a warm process (`claude -p` with
//! stream-json in and out) started with a plan's default options in a parking folder of its
//! own, `<workspace root>/.baton-spares/<session id>`, which no plan may name
//! (`workspace::SPARES_DIR`). In a box it sees that folder at `/workspace` and its own project
//! folder where the CLI keeps `/workspace`'s sessions; a claim hands both folders over to the
//! plan on the worker's disk ([`hand_over`]: a bind mount follows the folder, not its name),
//! then sends `claim_session`. Without a box the claim names the plan's folder instead.
//!
//! What a spare can serve is fixed when it starts: a *new* session (`--resume` cannot be
//! claimed) whose id is the spare's, with exactly the program, arguments and environment it
//! was started with (`claude::spawn_key`: the plan's options, no `--json-schema`, no budget
//! argument, no trace context). Anything else starts a CLI as before. A spare is used once, by
//! one plan, and never goes back to the pool. Its gateway grant is counted as the claiming
//! hold's from the claim on (`Grant::count_as`).
//!
//! [`keep_parked`] keeps `--spare-cli` of them parked, refilling after each claim, and turns
//! spares off by itself when three in a row die before they are claimed (a CLI without
//! `--await-claim`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::{ClaudeSessionId, PlanOptions};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::claude::{spawn_key, ClaudeError, Invocation, Reach, SessionArg, WarmSession};
use crate::gateway::Grant;
use crate::pool::Pool;
use crate::transcript::SessionFiles;
use crate::workspace::SPARES_DIR;

/// Spares that died in a row before spares are turned off.
const DEATHS_BEFORE_OFF: u32 = 3;
/// How often parked spares are checked for a death.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How many spares a worker with `cfg` keeps parked: `--spare-cli`, by default one per slot;
/// none for a benchmark executor, which starts no CLI.
pub(crate) fn wanted(cfg: &crate::Config) -> usize {
    if cfg.executor != crate::config::Executor::Claude {
        return 0;
    }
    usize::from(cfg.spare_cli.unwrap_or(cfg.concurrency))
}

/// The worker's parked spares.
pub(crate) struct Spares {
    want: usize,
    parked: Mutex<Vec<Spare>>,
    taken: Notify,
    off: AtomicBool,
}

/// One parked spare: its process, its grant, and its folders on the worker's disk.
pub(crate) struct Spare {
    process: WarmSession,
    grant: Grant,
    key: String,
    folders: Folders,
}

/// A spare's parking folder and its project folder, removed when the spare is dropped (after
/// a hand-over there is nothing left at either path).
struct Folders {
    workspace: PathBuf,
    project: PathBuf,
    boxed: bool,
}

impl Drop for Folders {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.workspace);
        let _ = std::fs::remove_dir_all(&self.project);
    }
}

impl Spares {
    /// `want` spares (0: none).
    pub(crate) fn new(want: usize) -> Self {
        Self {
            want,
            parked: Mutex::new(Vec::new()),
            taken: Notify::new(),
            off: AtomicBool::new(want == 0),
        }
    }

    /// A parked spare that can run `inv` (a new session), its grant now counted as `hold`'s.
    /// The caller must run `inv` under the spare's session id ([`Spare::session`]).
    pub(crate) fn take(&self, inv: &Invocation<'_>, hold: &Grant) -> Option<Spare> {
        if self.off.load(Ordering::Relaxed) || !matches!(inv.session, SessionArg::New(_)) {
            return None;
        }
        let key = spawn_key(inv);
        let spare = {
            let mut parked = self.parked.lock().ok()?;
            let i = parked.iter().position(|s| s.key == key)?;
            parked.swap_remove(i)
        };
        self.taken.notify_one();
        spare.grant.count_as(hold);
        Some(spare)
    }

    fn count(&self) -> usize {
        self.parked.lock().map_or(0, |p| p.len())
    }

    /// Drops parked spares that died; how many.
    fn reap(&self) -> u32 {
        let Ok(mut parked) = self.parked.lock() else {
            return 0;
        };
        let before = parked.len();
        parked.retain_mut(|s| !s.process.exited());
        u32::try_from(before - parked.len()).unwrap_or(u32::MAX)
    }

    fn clear(&self) {
        let gone: Vec<Spare> = self
            .parked
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        drop(gone);
    }
}

impl Spare {
    /// The session the spare starts: the task must run under this id.
    pub(crate) fn session(&self) -> ClaudeSessionId {
        self.process.session()
    }

    /// Binds the spare to `inv` (a new session under [`Spare::session`], in the plan's
    /// workspace): in a box, the spare's folders become the plan's first; then the claim.
    ///
    /// # Errors
    /// Why the spare could not be claimed; the caller then starts a CLI as usual (the plan's
    /// folders are whole either way).
    pub(crate) async fn claim(self, inv: &Invocation<'_>) -> Result<WarmSession, String> {
        let Self {
            process,
            grant,
            folders,
            ..
        } = self;
        if folders.boxed {
            let project = SessionFiles::new(inv.config_dir, inv.cwd, process.session()).dir();
            hand_over(&folders.workspace, inv.cwd).map_err(|e| format!("workspace: {e}"))?;
            hand_over(&folders.project, &project).map_err(|e| format!("project folder: {e}"))?;
        }
        let claimed = process.claim(inv, grant).await?;
        drop(folders);
        info!(session = %claimed.session(), "claimed a spare CLI");
        Ok(claimed)
    }
}

/// Makes `spare` (a folder a spare's box has bound) the folder at `to`, with whatever `to`
/// held moved into it: `to` is renamed aside, `spare` renamed into its place, and `to`'s
/// entries moved over one by one (renames within one file system: no data is copied). A crash
/// in between leaves the entries not yet moved in the folder beside `to`, not lost.
fn hand_over(spare: &Path, to: &Path) -> std::io::Result<()> {
    let parent = to
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    std::fs::create_dir_all(parent)?;
    let aside = parent.join(format!(".baton-handover-{}", uuid::Uuid::new_v4().simple()));
    let had = match std::fs::rename(to, &aside) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    if let Err(e) = std::fs::rename(spare, to) {
        if had {
            std::fs::rename(&aside, to)?;
        }
        return Err(e);
    }
    if had {
        for entry in std::fs::read_dir(&aside)? {
            let entry = entry?;
            std::fs::rename(entry.path(), to.join(entry.file_name()))?;
        }
        std::fs::remove_dir(&aside)?;
    }
    Ok(())
}

/// Starts one spare for `pool`.
fn park(pool: &Pool) -> Result<Spare, ClaudeError> {
    let id = ClaudeSessionId::generate();
    let workspace = pool.workspace_root.join(SPARES_DIR).join(id.to_string());
    std::fs::create_dir_all(&workspace).map_err(|source| ClaudeError::Spawn {
        bin: workspace.display().to_string(),
        source,
    })?;
    let folders = Folders {
        project: SessionFiles::new(&pool.config_dir, &workspace, id).dir(),
        workspace,
        boxed: pool.sandbox.is_some(),
    };
    let grant = pool.gateway.grant();
    let options = PlanOptions::default();
    let cfg = &pool.cfg;
    let inv = Invocation {
        bin: &cfg.claude_bin,
        cwd: &folders.workspace,
        config_dir: &pool.config_dir,
        session: SessionArg::New(id),
        options: &options,
        json_schema: None,
        budget_left_usd: None,
        prompt: "",
        timeout: cfg.task_timeout,
        silence_timeout: cfg.silence_timeout,
        reach: Reach {
            sandbox: pool.sandbox.as_ref(),
            loopback_url: pool.gateway.loopback_url(),
            token: grant.token(),
            trust_repo_settings: cfg.trust_repo_settings,
        },
        traceparent: None,
    };
    let process = WarmSession::park(&inv)?;
    let key = spawn_key(&inv);
    Ok(Spare {
        process,
        grant,
        key,
        folders,
    })
}

/// Keeps the pool's spares parked until the worker drains, then stops them. Spares left by a
/// worker that crashed are removed first.
pub(crate) async fn keep_parked(pool: Arc<Pool>) {
    let spares = &pool.spares;
    let _ = std::fs::remove_dir_all(pool.workspace_root.join(SPARES_DIR));
    let drain = pool.shutdown.drain.clone();
    let mut deaths = 0;
    while !spares.off.load(Ordering::Relaxed) && !drain.is_cancelled() {
        let died = spares.reap();
        deaths = if died == 0 { 0 } else { deaths + died };
        if deaths >= DEATHS_BEFORE_OFF {
            warn!(
                "spare CLIs off: {deaths} spares in a row exited before a plan claimed them \
                 (does this CLI know --await-claim?); plans' first tasks start a CLI as before"
            );
            spares.off.store(true, Ordering::Relaxed);
            break;
        }
        while spares.count() < spares.want {
            match park(&pool) {
                Ok(spare) => {
                    debug!(session = %spare.session(), "spare CLI parked");
                    if let Ok(mut p) = spares.parked.lock() {
                        p.push(spare);
                    }
                }
                Err(e) => {
                    warn!(error = %e, "a spare CLI did not start");
                    deaths += 1;
                    break;
                }
            }
        }
        tokio::select! {
            () = drain.cancelled() => {}
            () = spares.taken.notified() => {}
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
    spares.clear();
}
