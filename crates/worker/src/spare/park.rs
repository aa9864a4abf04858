//! Starting spares and keeping them parked: the worker's parking folder
//! `<workspace root>/.baton-spares/<worker>/`, held with a lock for the worker's life (a
//! folder whose lock can be taken belongs to a worker that is gone, and is removed with its
//! spares' project folders; a worker sharing the root is never touched), one spare started per
//! missing place, and spares turned off when they keep dying unclaimed.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use baton_core::{ClaudeSessionId, PlanOptions};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Spare, Spares};
use crate::claude::{spawn_key, ClaudeError, Invocation, Reach, SessionArg, WarmSession};
use crate::transcript::{project_dir_name, SessionFiles};
use crate::workspace::SPARES_DIR;

/// Spares that died young, or did not start, before spares are turned off (the count starts
/// again at each claim, or once a spare has lived [`HEALTHY_AFTER`]).
const DEATHS_BEFORE_OFF: u32 = 3;
/// A parked spare alive this long shows the CLI can park; one dead before it died young.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);
/// How often parked spares are checked for a death.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Between two spares started while places are missing (they start one at a time).
const NEXT_START: Duration = Duration::from_millis(250);
/// A `.new-` parking folder this old is a gone worker's (a younger one may be a starting
/// worker's, between making its folder and locking it); likewise a hand-over's aside.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);
/// The name a parking folder has until it is locked.
const NEW: &str = ".new-";
/// The lock file of a worker's parking folder.
const LOCK: &str = ".lock";

/// A spare's parking folder and its project folder, removed when the spare is dropped (after
/// a hand-over there is nothing left at either path).
pub(super) struct Folders {
    pub(super) workspace: PathBuf,
    pub(super) project: PathBuf,
    pub(super) boxed: bool,
}

impl Drop for Folders {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.workspace);
        let _ = std::fs::remove_dir_all(&self.project);
    }
}

/// What starting a spare takes of the worker's: its folders, settings, box and gateway.
pub(crate) struct Place<'a> {
    pub(crate) workspace_root: &'a Path,
    pub(crate) config_dir: &'a Path,
    pub(crate) cfg: &'a crate::Config,
    pub(crate) sandbox: Option<&'a crate::sandbox::Sandbox>,
    pub(crate) gateway: &'a crate::gateway::Gateway,
}

impl Spares {
    fn count(&self) -> usize {
        self.parked.lock().map_or(0, |p| p.len())
    }

    /// Drops parked spares that died, counting those that died young as failures; a spare
    /// still parked past [`HEALTHY_AFTER`] clears the count.
    fn reap(&self) {
        let Ok(mut parked) = self.parked.lock() else {
            return;
        };
        let mut young = 0;
        parked.retain_mut(|s| {
            let dead = s.process.exited();
            young += u32::from(dead && s.born.elapsed() < HEALTHY_AFTER);
            !dead
        });
        if parked.iter().any(|s| s.born.elapsed() >= HEALTHY_AFTER) {
            self.failures.store(0, Ordering::Relaxed);
        }
        self.failures.fetch_add(young, Ordering::Relaxed);
    }

    fn clear(&self) {
        let gone: Vec<Spare> = self
            .parked
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        drop(gone);
    }

    fn push(&self, spare: Spare) {
        if let Ok(mut p) = self.parked.lock() {
            p.push(spare);
        }
    }
}

/// Starts one spare in `parking`.
fn park(place: &Place<'_>, parking: &Path) -> Result<Spare, ClaudeError> {
    let id = ClaudeSessionId::generate();
    let workspace = parking.join(id.to_string());
    // Not `create_dir_all`: a parking folder that is gone is not made again without its lock.
    std::fs::create_dir(&workspace).map_err(|e| {
        ClaudeError::Io(std::io::Error::other(format!(
            "making the spare's folder {}: {e}",
            workspace.display()
        )))
    })?;
    let folders = Folders {
        project: SessionFiles::new(place.config_dir, &workspace, id).dir(),
        workspace,
        boxed: place.sandbox.is_some(),
    };
    let grant = place.gateway.grant();
    let options = PlanOptions::default();
    let cfg = place.cfg;
    let inv = Invocation {
        bin: &cfg.claude_bin,
        cwd: &folders.workspace,
        config_dir: place.config_dir,
        session: SessionArg::New(id),
        options: &options,
        json_schema: None,
        budget_left_usd: None,
        prompt: "",
        timeout: cfg.task_timeout,
        silence_timeout: cfg.silence_timeout,
        reach: Reach {
            sandbox: place.sandbox,
            loopback_url: place.gateway.loopback_url(),
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
        born: Instant::now(),
    })
}

/// This worker's parking folder, made and locked (the lock is held while the file is open),
/// after removing the folders of workers that are gone.
fn parking_folder(place: &Place<'_>) -> std::io::Result<(PathBuf, std::fs::File)> {
    let all = place.workspace_root.join(SPARES_DIR);
    std::fs::create_dir_all(&all)?;
    for entry in std::fs::read_dir(&all)?.flatten() {
        let folder = entry.path();
        // A worker starting now makes and locks its folder under a `.new-` name first.
        if entry.file_name().to_string_lossy().starts_with(NEW)
            && younger_than(&folder, UNLOCKED_GRACE)
        {
            continue;
        }
        // Held by a live worker: not ours to touch.
        if std::fs::File::open(folder.join(LOCK)).is_ok_and(|f| f.try_lock().is_err()) {
            continue;
        }
        remove_with_projects(place.config_dir, &folder);
    }
    // What interrupted hand-overs left of project folders (no CLI name has a `~`).
    for entry in std::fs::read_dir(place.config_dir.join("projects"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        if name.to_string_lossy().ends_with("~baton-handover")
            && !younger_than(&entry.path(), UNLOCKED_GRACE)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    // Made and locked under a name scanners pass over, then renamed into place locked: no
    // other worker's scan ever sees it unlocked.
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (new, mine) = (all.join(format!("{NEW}{id}")), all.join(&id));
    std::fs::create_dir(&new)?;
    let lock = std::fs::File::create(new.join(LOCK))?;
    lock.try_lock().map_err(std::io::Error::other)?;
    std::fs::rename(&new, &mine)?;
    Ok((mine, lock))
}

/// True when `path` was modified less than `age` ago.
fn younger_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < age))
}

/// Removes a gone worker's parking folder and its spares' project folders (those in this
/// worker's config dir: a gone worker with a config dir of its own leaves its empty ones).
fn remove_with_projects(config_dir: &Path, folder: &Path) {
    for spare in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let project = config_dir
            .join("projects")
            .join(project_dir_name(&spare.path()));
        let _ = std::fs::remove_dir_all(project);
    }
    let _ = std::fs::remove_dir_all(folder);
}

/// Keeps `spares` parked, started at `place`, until `drain`, then stops them and removes this
/// worker's parking folder.
pub(crate) async fn keep_parked(spares: &Spares, place: &Place<'_>, drain: CancellationToken) {
    if spares.off.load(Ordering::Relaxed) {
        return;
    }
    let (parking, lock) = match parking_folder(place) {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "spare CLIs off: no parking folder in the workspace root");
            spares.off.store(true, Ordering::Relaxed);
            return;
        }
    };
    let mut last_error = String::from("each exited at once");
    while !drain.is_cancelled() {
        spares.reap();
        let failures = spares.failures.load(Ordering::Relaxed);
        if failures >= DEATHS_BEFORE_OFF {
            warn!(
                last_error,
                "spare CLIs off: {failures} spares in a row died young or did not start \
                 (does this CLI know --await-claim?); plans' first tasks start a CLI as before"
            );
            spares.off.store(true, Ordering::Relaxed);
            break;
        }
        // One start per pass, so a worker's start-up does not start every CLI at once.
        let mut failed = false;
        if spares.count() < spares.want {
            match park(place, &parking) {
                Ok(spare) => {
                    debug!(session = %spare.session(), "spare CLI parked");
                    spares.push(spare);
                }
                Err(e) => {
                    last_error = baton_core::ErrorChain(&e).to_string();
                    warn!(error = %last_error, "a spare CLI did not start");
                    spares.failures.fetch_add(1, Ordering::Relaxed);
                    failed = true;
                }
            }
        }
        let wait = if !failed && spares.count() < spares.want {
            NEXT_START
        } else {
            CHECK_EVERY
        };
        tokio::select! {
            () = drain.cancelled() => {}
            () = spares.taken.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    spares.clear();
    remove_with_projects(place.config_dir, &parking);
    drop(lock);
}
