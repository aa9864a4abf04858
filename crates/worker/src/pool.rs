//! What every loop of one worker process shares: who it is, its settings, its Redis store,
//! where workspaces and CLI configs live, and how it is stopped.
//! Built once by `run` and never changed afterwards (only [`Closing`] keeps a registry).

use std::path::PathBuf;

use baton_core::WorkerId;

use crate::engine::Closing;
use crate::git::Git;
use crate::metrics::Metrics;
use crate::store::Store;
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
}
