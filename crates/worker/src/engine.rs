//! What runs a held plan's tasks: the CLI with one process per hold (warm), one per task
//! (cold), or a benchmark executor; and the warm processes on their way out ([`Closing`]).
//!
//! A hold owns one [`Engine`] and ends it with [`Engine::finish`]; nothing else knows which
//! kind it is.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use baton_core::PlanId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::claude::{self, ClaudeError, Invocation, Outcome, Progress, WarmSession};
use crate::config::{Config, Executor, SessionMode};
use crate::executor;

/// The task runner of one hold.
pub(crate) enum Engine {
    /// One `claude -p` process per task.
    Cold,
    /// One CLI process per hold, started by the first task that needs it.
    Warm(Option<Box<WarmSession>>),
    /// Benchmarks: an executor without the CLI.
    Bench(Executor),
}

impl Engine {
    /// The engine the worker is configured for.
    pub(crate) fn new(cfg: &Config) -> Self {
        match (&cfg.executor, cfg.session_mode) {
            (Executor::Claude, SessionMode::Warm) => Self::Warm(None),
            (Executor::Claude, SessionMode::Cold) => Self::Cold,
            (other, _) => Self::Bench(other.clone()),
        }
    }

    /// What `task_started` events report as the `mode`.
    pub(crate) fn mode(&self) -> SessionMode {
        match self {
            // A benchmark executor answers each task on its own, as a cold run does.
            Self::Cold | Self::Bench(_) => SessionMode::Cold,
            Self::Warm(_) => SessionMode::Warm,
        }
    }

    /// Runs one attempt of a task. `continues`: the committed conversation is the one this
    /// hold's last turn produced, so a warm process that fits may simply go on with it; any
    /// other warm process is closed first (the new one may resume this very session).
    pub(crate) async fn run(
        &mut self,
        inv: &Invocation<'_>,
        continues: bool,
        idle_limit: Duration,
        progress: &mpsc::UnboundedSender<Progress>,
        stop: &CancellationToken,
    ) -> Result<Outcome, ClaudeError> {
        match self {
            Self::Cold => claude::run(inv, progress, stop).await,
            Self::Bench(e) => executor::run_without_cli(e, inv).await,
            Self::Warm(slot) => {
                let reuse = continues && slot.as_ref().is_some_and(|w| w.fits(inv, idle_limit));
                if !reuse {
                    if let Some(old) = slot.take() {
                        old.close().await;
                    }
                }
                let mut w = match slot.take() {
                    Some(w) => w,
                    None => Box::new(WarmSession::start(inv)?),
                };
                match w.turn(inv, progress, stop).await {
                    Ok(out) => {
                        *slot = Some(w);
                        Ok(out)
                    }
                    Err(e) => {
                        // Whatever the process did of this turn is not committed: stop it now;
                        // the retry restores the committed transcript into a new process.
                        w.abort().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// Holds a warm process's box still (see `sandbox::freeze`) while the returned value lives;
    /// `None` when no process outlives its task (cold: the box ended with the CLI).
    pub(crate) async fn freeze(&self) -> Option<crate::sandbox::freeze::Frozen> {
        match self {
            Self::Warm(Some(w)) => w.freeze().await,
            _ => None,
        }
    }

    /// Drops what a warm process holds of an attempt that will not be committed (a successful
    /// turn whose files could not be pushed): the next attempt starts a new process.
    pub(crate) async fn discard(&mut self) {
        if let Self::Warm(slot) = self {
            if let Some(w) = slot.take() {
                w.abort().await;
            }
        }
    }

    /// Ends the engine with its hold. A warm process does not outlive the hold: stopped at once
    /// when the lease is gone (nothing it does may outlive the lease), otherwise closed in the
    /// background (see [`Closing`]).
    pub(crate) async fn finish(self, lease_lost: bool, plan: &PlanId, closing: &Closing) {
        if let Self::Warm(Some(w)) = self {
            if lease_lost {
                w.abort().await;
            } else {
                closing.close_later(plan, *w);
            }
        }
    }
}

/// Warm CLI processes on their way out, by plan. The CLI appends a last transcript line as it
/// exits, so a hold of the same plan on this worker waits for the exit first
/// ([`Closing::wait_for`]); other plans never wait for it. The processes are tracked with the
/// worker's other tasks, so the worker does not exit before they have.
pub(crate) struct Closing {
    tasks: TaskTracker,
    by_plan: Mutex<HashMap<PlanId, JoinHandle<()>>>,
}

impl Closing {
    /// Closing processes are spawned on `tasks`.
    pub(crate) fn new(tasks: TaskTracker) -> Self {
        Self {
            tasks,
            by_plan: Mutex::new(HashMap::new()),
        }
    }

    fn close_later(&self, plan: &PlanId, w: WarmSession) {
        let handle = self.tasks.spawn(w.close());
        // The lock is never held across an await, so it is never poisoned by a panic there.
        let mut by_plan = self.by_plan.lock().expect("closing map lock");
        by_plan.retain(|_, h| !h.is_finished());
        by_plan.insert(plan.clone(), handle);
    }

    /// Waits until this worker's warm process of `plan`, if one is closing, has exited.
    pub(crate) async fn wait_for(&self, plan: &PlanId) {
        let handle = self.by_plan.lock().expect("closing map lock").remove(plan);
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}
