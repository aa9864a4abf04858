//! Spare CLIs: processes started before their plan, parked until a plan's first task claims
//! one, so that task skips the CLI's start-up (about 0.3 s and half a CPU-second measured, the
//! benchmark's `spare` section).
//!
//! A spare is the pinned CLI's `--await-claim` mode: a warm process (`claude -p` with
//! stream-json in and out) started with a plan's default options in a parking folder of its
//! own, `<workspace root>/.baton-spares/<worker>/<session id>`, which no plan may name
//! (`workspace::SPARES_DIR`). In a box it sees that folder at `/workspace` and its own project
//! folder where the CLI keeps `/workspace`'s sessions; a claim hands both folders over to the
//! plan on the worker's disk (`handover`: a bind mount follows the folder, not its name), then
//! sends `claim_session`. Without a box the claim names the plan's folder instead.
//!
//! What a spare can serve is fixed when it starts: a *new* session (`--resume` cannot be
//! claimed) whose id is the spare's, with exactly the program, arguments and environment it
//! was started with (`claude::spawn_key`: the plan's options, no `--json-schema`, no budget
//! argument, no trace context). Anything else starts a CLI as before. A spare is used once, by
//! one plan, and never goes back to the pool. Its gateway grant is counted as the claiming
//! hold's from the claim on (`Grant::count_as`).
//!
//! # Layout
//! - this module: the parked spares ([`Spares`]), taking one ([`Spares::take`]) and claiming
//!   it ([`Spare::claim`]).
//! - `park`: starting spares and keeping `--spare-cli` of them parked ([`keep_parked`]), the
//!   worker's parking folder (locked, so a worker sharing the workspace root never removes
//!   another's), and turning spares off when three in a row die unclaimed (a CLI without
//!   `--await-claim`).

mod park;

pub(crate) use park::{keep_parked, Place};

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use baton_core::ClaudeSessionId;
use tokio::sync::Notify;
use tracing::info;

use crate::claude::{spawn_key, ClaudeError, Invocation, SessionArg, WarmSession};
use crate::gateway::Grant;
use crate::handover::{hand_over, HandOverError};
use crate::transcript::SessionFiles;
use park::Folders;

/// Spares parked by default at most (each holds about 80 MiB).
const DEFAULT_AT_MOST: u16 = 4;

/// How many spares a worker with `cfg` keeps parked: `--spare-cli`, by default one per slot
/// up to [`DEFAULT_AT_MOST`]; none for a benchmark executor (it starts no CLI), and none by
/// default with `--trust-repo-settings` (the CLI refuses to claim a spare for a folder whose
/// project settings it did not start with, so every claim would fail after its hand-over).
pub(crate) fn wanted(cfg: &crate::Config) -> usize {
    if cfg.executor != crate::config::Executor::Claude {
        return 0;
    }
    let default = if cfg.trust_repo_settings {
        0
    } else {
        cfg.concurrency.min(DEFAULT_AT_MOST)
    };
    usize::from(cfg.spare_cli.unwrap_or(default))
}

/// The worker's parked spares.
pub(crate) struct Spares {
    want: usize,
    parked: Mutex<Vec<Spare>>,
    taken: Notify,
    off: AtomicBool,
    /// Spares that died young or did not start since the last claim (`park`).
    failures: AtomicU32,
}

/// One parked spare: its process, its grant, and its folders on the worker's disk.
pub(crate) struct Spare {
    process: WarmSession,
    grant: Grant,
    key: String,
    folders: Folders,
    born: std::time::Instant,
}

/// Why a spare did not become the task's CLI.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// The spare would not be claimed; the plan's folders are whole: start a CLI instead.
    Refused(String),
    /// The plan's folders are not whole yet (a hand-over cut short): this attempt fails, and
    /// the next one finishes the move before it runs (`workspace::prepare`).
    Folders(ClaudeError),
}

impl Spares {
    /// `want` spares (0: none).
    pub(crate) fn new(want: usize) -> Self {
        Self {
            want,
            parked: Mutex::new(Vec::new()),
            taken: Notify::new(),
            off: AtomicBool::new(want == 0),
            failures: AtomicU32::new(0),
        }
    }

    /// A parked, live spare that can run `inv` (a new session), its grant now counted as
    /// `hold`'s. The caller must run `inv` under the spare's session id ([`Spare::session`]).
    pub(crate) fn take(&self, inv: &Invocation<'_>, hold: &Grant) -> Option<Spare> {
        if self.off.load(Ordering::Relaxed) || !matches!(inv.session, SessionArg::New(_)) {
            return None;
        }
        let key = spawn_key(inv);
        let spare = {
            let mut parked = self.parked.lock().ok()?;
            let i = parked
                .iter_mut()
                .position(|s| s.key == key && !s.process.exited())?;
            parked.swap_remove(i)
        };
        self.taken.notify_one();
        // A spare lived to be taken: the CLI parks.
        self.failures.store(0, Ordering::Relaxed);
        spare.grant.count_as(hold);
        Some(spare)
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
    /// [`ClaimError`]: start a CLI instead, or fail the attempt.
    pub(crate) async fn claim(self, inv: &Invocation<'_>) -> Result<WarmSession, ClaimError> {
        let Self {
            process,
            grant,
            folders,
            ..
        } = self;
        if folders.boxed {
            let project = SessionFiles::new(inv.config_dir, inv.cwd, process.session()).dir();
            for (from, to) in [(&folders.workspace, inv.cwd), (&folders.project, &project)] {
                match hand_over(from, to) {
                    Ok(()) => {}
                    Err(e @ HandOverError::Untouched(_)) => {
                        return Err(ClaimError::Refused(e.to_string()))
                    }
                    Err(e) => {
                        let e = std::io::Error::other(baton_core::ErrorChain(&e).to_string());
                        return Err(ClaimError::Folders(ClaudeError::Io(e)));
                    }
                }
            }
        }
        let claimed = process
            .claim(inv, grant)
            .await
            .map_err(ClaimError::Refused)?;
        drop(folders);
        info!(session = %claimed.session(), "claimed a spare CLI");
        Ok(claimed)
    }
}
