//! What every loop of one worker process shares: who it is, its settings, its Redis store,
//! where workspaces and CLI configs live, and how it is stopped.
//! Built once by `run` and never changed afterwards (only [`Closing`] keeps a registry, and
//! [`KnownTranscripts`] what this worker last committed of each plan's transcript).

use std::collections::HashMap;
use std::path::PathBuf;

use baton_core::{PlanId, WorkerId};

use crate::engine::Closing;
use crate::git::Git;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::transcript::Committed;
use crate::{Config, Shutdown};

/// The worker process's shared context.
pub(crate) struct Pool {
    /// Unique per process start: a restarted worker never inherits its previous in-flight list.
    pub(crate) id: WorkerId,
    pub(crate) cfg: Config,
    pub(crate) store: Store,
    /// The workspace root, canonical: every plan's workspace must stay inside it.
    pub(crate) workspace_root: PathBuf,
    /// The CLI config dir the worker's children use.
    pub(crate) config_dir: PathBuf,
    /// git, for plans with a repository.
    pub(crate) git: Git,
    pub(crate) metrics: std::sync::Arc<Metrics>,
    pub(crate) shutdown: Shutdown,
    /// Warm CLI processes on their way out, by plan (tracked with the worker's other tasks,
    /// which `run` waits for before it hands back what is left).
    pub(crate) closing: Closing,
    /// What this worker's holds last committed of each plan's transcript, kept between holds.
    pub(crate) transcripts: KnownTranscripts,
    /// The plans its slots hold now (the heartbeat hands back in-flight entries nobody holds).
    pub(crate) claimed: crate::claimed::Claimed,
    /// A user paused the pool (`baton pause --all`), as the last heartbeat found: holds leave
    /// their plan after the task running now.
    pub(crate) user_paused: std::sync::atomic::AtomicBool,
    /// Delivers plans' webhooks.
    pub(crate) webhooks: std::sync::Arc<crate::webhook::Webhooks>,
    /// The box every CLI run is started in; `None` with `--sandbox off` (or a benchmark
    /// executor, which starts no CLI).
    pub(crate) sandbox: Option<crate::sandbox::Sandbox>,
    /// CLIs parked ahead of their plans (`--spare-cli`).
    pub(crate) spares: crate::spare::Spares,
    /// The model gateway: holds' tokens, the real credentials, the boxes' proxy.
    pub(crate) gateway: crate::gateway::Gateway,
    /// Makes each hold's engine (the configured one; the test harness's scripted one).
    pub(crate) make_engine: crate::engine::MakeEngine,
}

impl Pool {
    /// The working directory the CLI (and so the model, and the transcript) sees for the
    /// workspace at `cwd`: `/workspace` in a box, whatever `cwd` is on this worker; `cwd`
    /// itself without one.
    pub(crate) fn model_cwd<'a>(&self, cwd: &'a std::path::Path) -> &'a std::path::Path {
        model_cwd(self.sandbox.is_some(), cwd)
    }
}

/// [`Pool::model_cwd`] for a run that is `boxed` or not.
pub(crate) fn model_cwd(boxed: bool, cwd: &std::path::Path) -> &std::path::Path {
    if boxed {
        std::path::Path::new(crate::sandbox::BOX_WORKSPACE)
    } else {
        cwd
    }
}

/// What this worker last committed of the transcripts of plans it held, so that its next hold
/// of a plan need not read the whole local transcript to trust it (the warm CLI may have
/// written more on its way out; that is cut off again). Bounded: a worker that has held many
/// plans forgets some, and then simply reads the file.
#[derive(Default)]
pub(crate) struct KnownTranscripts(std::sync::Mutex<HashMap<PlanId, Committed>>);

/// Plans whose transcripts a worker remembers at most.
const KNOWN_TRANSCRIPTS: usize = 1024;

impl KnownTranscripts {
    /// Takes what is known of `plan`'s transcript.
    pub(crate) fn take(&self, plan: &PlanId) -> Option<Committed> {
        self.0.lock().ok()?.remove(plan)
    }

    /// Remembers what a hold left committed of `plan`'s transcript.
    pub(crate) fn keep(&self, plan: PlanId, committed: Committed) {
        let Ok(mut known) = self.0.lock() else {
            return;
        };
        if known.len() >= KNOWN_TRANSCRIPTS {
            if let Some(any) = known.keys().next().cloned() {
                known.remove(&any);
            }
        }
        known.insert(plan, committed);
    }
}
