//! What runs a held plan's tasks: the [`Engine`] trait (nextest's executor side: run one
//! attempt, drop what a failed one left, end with the hold) and its implementations: the CLI
//! with one process per hold (`warm`), one per task (`cold`), or a benchmark executor
//! (`bench`); and the warm processes on their way out ([`Closing`]).
//!
//! A hold owns one `Box<dyn Engine>` made by the pool's [`MakeEngine`] and ends it with
//! [`Engine::finish`]; nothing else knows which kind it is. The in-process test harness
//! (`testing`) makes scripted engines the same way.
//!
//! The implementations live here rather than in `claude/` and `executor.rs`: the trait speaks
//! in the CLI's types ([`Invocation`], [`Outcome`], [`ClaudeError`]), so `claude` implementing
//! it would import this module back.

mod bench;
mod cold;
mod warm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_core::event::AttemptMode;
use baton_core::PlanId;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::claude::{ClaudeError, Invocation, Outcome, Progress, WarmSession};
use crate::config::{Config, Executor, SessionMode};
use crate::sandbox::freeze::Frozen;
use crate::spare::Spare;

/// The task runner of one hold.
pub(crate) trait Engine: Send + Sync {
    /// What `task_started` events report as the `mode`.
    fn mode(&self) -> AttemptMode;

    /// Runs one attempt of a task. `continues`: the committed conversation is the one this
    /// hold's last turn produced, so a warm process that fits may simply go on with it. Progress
    /// goes to `progress` as it happens; `stop` ends the run.
    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        continues: bool,
        progress: &'a mpsc::UnboundedSender<Progress>,
        stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>>;

    /// True when the engine runs the CLI itself and can take a spare ([`Engine::give_spare`]).
    fn takes_spares(&self) -> bool {
        false
    }

    /// A spare CLI for the next attempt, whose new session runs under the spare's id: the
    /// engine claims it instead of starting a CLI (and drops it when it cannot be claimed).
    fn give_spare(&mut self, spare: Spare) {
        drop(spare);
    }

    /// Holds a process that outlives its task still (see `sandbox::freeze`) while the returned
    /// value lives; `None` when none does.
    fn freeze(&self) -> BoxFuture<'_, Option<Frozen>> {
        Box::pin(async { None })
    }

    /// Drops what the engine holds of an attempt that will not be committed (a turn whose
    /// answer was refused or whose files could not be pushed).
    fn discard(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Ends the engine with its hold; `lease_lost`: nothing it does may outlive the lease.
    fn finish<'a>(
        self: Box<Self>,
        lease_lost: bool,
        plan: &'a PlanId,
        closing: &'a Closing,
    ) -> BoxFuture<'a, ()> {
        let _ = (lease_lost, plan, closing);
        Box::pin(async {})
    }
}

/// Makes each hold's engine (the pool keeps one; the test harness brings its own).
pub(crate) type MakeEngine = Arc<dyn Fn(&PlanId) -> Box<dyn Engine> + Send + Sync>;

/// The engines the worker is configured for.
pub(crate) fn configured(cfg: &Config) -> MakeEngine {
    let (executor, mode, idle) = (
        cfg.executor.clone(),
        cfg.session_mode,
        cfg.warm_idle_timeout,
    );
    Arc::new(move |_plan: &PlanId| -> Box<dyn Engine> {
        match (&executor, mode) {
            (Executor::Claude, SessionMode::Warm) => Box::new(warm::Warm::new(idle)),
            (Executor::Claude, SessionMode::Cold) => Box::new(cold::Cold::default()),
            (other, _) => Box::new(bench::Bench(other.clone())),
        }
    })
}

/// The mode the worker's engines run in (its heartbeat info): what its `task_started` events
/// say.
pub(crate) fn mode_of(cfg: &Config) -> AttemptMode {
    match cfg.executor {
        Executor::Claude => cfg.session_mode.into(),
        Executor::Instant => AttemptMode::Instant,
        Executor::Spawn(_) => AttemptMode::Spawn,
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
