//! One worker slot: claim a plan, hold its lease, run its tasks in order through one Claude
//! session, commit each, hand the plan back.
//!
//! Invariants this module keeps (see DESIGN.md, failure model):
//! - a plan id is in this worker's in-flight list for as long as this worker holds its lease,
//!   so a reaper can always hand it back if the process dies;
//! - a task leaves its plan's list only in the fenced commit, with its result;
//! - a run whose lease is lost is stopped, and nothing it produced is written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::records::{DeadLetter, SessionRecord, StoredTask, TaskResult};
use baton_core::{ClaudeSessionId, Event, EventKind, PlanId, PlanOptions, WorkerId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::claude::{self, ClaudeError, Decision, Invocation, Progress, SessionArg, WarmSession};
use crate::executor::{self, Executor, SessionMode};
use crate::recap;
use crate::store::{
    Acquired, Commit, Committed, Fenced, Head, Renewal, Store, StoreError, Tally, NO_COUNTS,
};
use crate::transcript::SessionFiles;
use crate::Config;

/// A CLI retry announced for a 429 this far off (or more) is a rate limit with a reset time,
/// not a short backoff: the pool pauses until then.
const RATE_LIMIT_PAUSE_MIN_MS: u64 = 5_000;

/// What every slot of one worker process shares.
pub(crate) struct Worker {
    pub(crate) id: WorkerId,
    pub(crate) cfg: Config,
    pub(crate) store: Store,
    pub(crate) config_dir: PathBuf,
    pub(crate) workspace_root: PathBuf,
    /// Cancelled on the first SIGTERM: stop claiming, finish what runs.
    pub(crate) drain: CancellationToken,
    /// Cancelled when the grace period ends or on a second signal: stop running tasks now.
    pub(crate) abort: CancellationToken,
    /// Warm CLI processes on their way out, by plan. The CLI appends a last transcript line as
    /// it exits, so a slot taking the same plan again waits for its exit first; other plans
    /// never wait for it.
    pub(crate) closing: std::sync::Mutex<HashMap<PlanId, tokio::task::JoinHandle<()>>>,
}

/// Why a slot stopped holding a plan.
enum Leave {
    /// Give the lease back; requeue at the `back` of the line (fairness) or the `front`
    /// (shutdown), if tasks are left.
    Release(&'static str),
    /// The last commit gave the lease back (nothing left to run): only the claim remains.
    Released,
    /// The lease is gone: another worker may hold the plan; write nothing of it, hand it back.
    LeaseLost,
}

/// What one task came to.
enum Step {
    Committed(Committed),
    /// The plan stopped (failed, budget spent): it waits for someone to act.
    Stopped,
    LeaseLost,
    /// Shutdown stopped the run; the task stays first and runs again elsewhere.
    Aborted,
}

/// What a slot keeps while it holds one plan.
#[derive(Default)]
struct Held {
    /// The plan's warm CLI process (warm mode).
    warm: Option<WarmSession>,
    /// Pool-wide counters not sent yet (they go with the hand-back, or once a second).
    tally: Tally,
    /// The plan keys' retention TTLs were reset by a start and by a commit of this hold.
    started_once: bool,
    committed_once: bool,
}

/// A successful run on its way to the commit.
struct Run<'a> {
    session: &'a SessionPlan,
    out: claude::Outcome,
    attempts: u32,
    ttl_secs: u64,
    started: Instant,
    started_at: std::time::SystemTime,
    /// When the run was over: the cold CLI exited (it writes the transcript's last lines on
    /// its way out), or the warm CLI's transcript held the turn.
    ended_at: std::time::SystemTime,
}

/// Milliseconds since the epoch, with microseconds.
fn epoch_ms(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Why the session of a task is not a plain resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// The plan's first task.
    First,
    /// The old session cannot be resumed.
    Fallback(&'static str),
    /// The old session grew past the context threshold.
    Rotated,
}

/// The session a task runs in, and the prompt that goes with it.
struct SessionPlan {
    arg: SessionArg,
    prompt: String,
    fresh: Option<Fresh>,
    /// The record being continued (for created_at and the task count).
    previous: Option<SessionRecord>,
}

/// Retries a Redis operation with backoff until it succeeds or `stop` is cancelled. Workers
/// ride out Redis outages this way: they keep their state and carry on when it returns. An
/// error that will not pass by waiting is logged and ends the retrying (`None`), as a stop does.
pub(crate) async fn redis_retry<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delays = reconnect_delays();
    let mut logged = false;
    loop {
        match op().await {
            Ok(v) => {
                if logged {
                    info!(what, "redis is back");
                }
                return Some(v);
            }
            Err(e) if !e.is_transient() => {
                error!(what, error = %e, cause = ?std::error::Error::source(&e), "redis refused the operation; not retrying");
                return None;
            }
            Err(e) => {
                if !logged {
                    warn!(what, error = %e, cause = ?std::error::Error::source(&e), "redis unavailable; retrying with backoff");
                    logged = true;
                }
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Delays between reconnect attempts: exponential with jitter, capped at 5 s, never ending.
pub(crate) fn reconnect_delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

impl Worker {
    /// The slot loop: claim plans until drained.
    pub(crate) async fn run_slot(self: Arc<Self>, slot: usize) {
        let block = Duration::from_secs(2);
        let mut conn = None;
        let mut delays = reconnect_delays();
        let mut down = false;
        let mut last_pause_check = Instant::now() - Duration::from_secs(1);
        while !self.drain.is_cancelled() {
            if conn.is_none() {
                match self.store.blocking_conn(block).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        if !down {
                            warn!(slot, error = %e, "cannot reach redis; retrying with backoff");
                            down = true;
                        }
                        let d = delays.next().unwrap_or(Duration::from_secs(5));
                        tokio::select! { _ = self.drain.cancelled() => break, _ = tokio::time::sleep(d) => {} }
                        continue;
                    }
                }
            }
            if !self.wait_while_paused(&mut last_pause_check).await {
                break;
            }
            let c = conn.as_mut().expect("connected above");
            let popped = tokio::select! {
                _ = self.drain.cancelled() => break,
                r = self.store.blocking_claim(c, &self.id, block) => r,
            };
            match popped {
                Ok((None, _)) => {}
                Ok((Some(raw), Some(paused))) => {
                    // The pool paused while this slot waited: give the plan back, unrun.
                    let plan = String::from_utf8_lossy(&raw).into_owned();
                    if let Ok(plan) = plan.parse::<PlanId>() {
                        let _ = redis_retry("unclaim", &self.abort, || {
                            self.store.unclaim(&self.id, &plan, "front", &NO_COUNTS)
                        })
                        .await;
                    }
                    debug!(slot, left = ?paused, "pool paused; handed a claim back");
                    tokio::select! {
                        _ = self.drain.cancelled() => break,
                        _ = tokio::time::sleep(paused.min(Duration::from_secs(2))) => {}
                    }
                }
                Ok((Some(raw), None)) => {
                    if down {
                        info!(slot, "redis is back");
                        down = false;
                        delays = reconnect_delays();
                    }
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    match text.parse::<PlanId>() {
                        Ok(plan) => self.hold(plan).await,
                        Err(e) => {
                            warn!(entry = %text, error = %e, "dropping a ready entry that is no plan id");
                            let _ = redis_retry("drop bad ready entry", &self.abort, || {
                                self.store.discard_claim(&self.id, &raw)
                            })
                            .await;
                        }
                    }
                }
                Err(e) => {
                    // A broken or stuck blocking connection is rebuilt, never reused.
                    conn = None;
                    if !down {
                        warn!(slot, error = %e, "blocking pop failed; reconnecting");
                        down = true;
                    }
                    let d = delays.next().unwrap_or(Duration::from_secs(5));
                    tokio::select! { _ = self.drain.cancelled() => break, _ = tokio::time::sleep(d) => {} }
                }
            }
        }
        debug!(slot, "slot stopped");
    }

    fn lock_value(&self) -> String {
        format!("{}/{}", self.id, uuid::Uuid::new_v4().simple())
    }

    /// Holds one claimed plan: runs its tasks while it has some, within the fairness bound.
    async fn hold(&self, plan: PlanId) {
        let lock = self.lock_value();
        let acquired = redis_retry("acquire", &self.abort, || {
            self.store.acquire(&plan, &lock, self.cfg.lease, &self.id)
        })
        .await;
        let head = match acquired {
            Some(Acquired::Ok(head)) => head,
            Some(Acquired::Busy | Acquired::Idle) => {
                // A duplicate entry, or a plan with nothing to run: its holder (if any) keeps
                // its own entry.
                let _ = redis_retry("unclaim", &self.abort, || {
                    self.store.unclaim(&self.id, &plan, "", &NO_COUNTS)
                })
                .await;
                return;
            }
            None => return, // aborted while Redis was down; the final hand-back requeues it
        };
        debug!(plan = %plan, "holding plan");
        let lost = CancellationToken::new();
        let stop = self.abort.child_token();
        let mut held = Held::default();
        let work = async {
            // Under the lease keeper: this plan's last warm CLI on this machine may still be
            // exiting (and writing its transcript).
            self.wait_for_closing(&plan).await;
            self.hold_inner(&plan, &lock, head, &lost, &stop, &mut held)
                .await
        };
        let keeper = self.keep_lease(&plan, &lock, &lost, &stop);
        let leave = tokio::select! {
            leave = work => leave,
            never = keeper => match never {},
        };
        // The plan's warm process does not outlive the hold: stopped at once when the lease is
        // gone; after a clean last turn, closed in the background (see `closing`).
        if let Some(w) = held.warm {
            match leave {
                Leave::LeaseLost => w.abort().await,
                _ => self.close_later(&plan, w),
            }
        }
        let tally = held.tally;
        match leave {
            Leave::Released => {
                let _ = redis_retry("unclaim", &self.abort, || {
                    self.store.unclaim(&self.id, &plan, "", &tally)
                })
                .await;
            }
            Leave::Release(where_to) => {
                let requeue =
                    redis_retry("release", &self.abort, || self.store.release(&plan, &lock)).await;
                let to = match requeue {
                    Some(Some(true)) => where_to,
                    _ => "",
                };
                let _ = redis_retry("unclaim", &self.abort, || {
                    self.store.unclaim(&self.id, &plan, to, &tally)
                })
                .await;
            }
            Leave::LeaseLost => {
                // The lease expired (a stall, or Redis away for longer than it) or another worker
                // took the plan. Hand it back to the front either way: if someone holds it, their
                // claim of this entry finds it busy and drops it; if no one does, it must not be
                // left in no list at all.
                warn!(plan = %plan, "lease lost; handing the plan back");
                let _ = redis_retry("unclaim", &self.abort, || {
                    self.store.unclaim(&self.id, &plan, "front", &tally)
                })
                .await;
            }
        }
    }

    /// Closes a warm process without holding up the slot; a later hold of the same plan on
    /// this worker waits for it (see `closing`).
    fn close_later(&self, plan: &PlanId, w: WarmSession) {
        let handle = tokio::spawn(w.close());
        let mut closing = self.closing.lock().expect("closing map lock");
        closing.retain(|_, h| !h.is_finished());
        closing.insert(plan.clone(), handle);
    }

    /// Waits until this worker's warm process of `plan`, if one is closing, has exited.
    async fn wait_for_closing(&self, plan: &PlanId) {
        let handle = self.closing.lock().expect("closing map lock").remove(plan);
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Waits for every closing warm process (at shutdown).
    pub(crate) async fn wait_for_all_closing(&self) {
        let handles: Vec<_> = self
            .closing
            .lock()
            .expect("closing map lock")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in handles {
            let _ = h.await;
        }
    }

    /// Renews the lease every third of it. When the lease is lost, cancels `lost` and `stop`
    /// (which stops a running CLI) and then waits forever: the work future decides when to leave.
    async fn keep_lease(
        &self,
        plan: &PlanId,
        lock: &str,
        lost: &CancellationToken,
        stop: &CancellationToken,
    ) -> std::convert::Infallible {
        let every = self.cfg.lease / 3;
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            match self.store.renew(plan, lock, self.cfg.lease).await {
                Ok(Renewal::Renewed) => last_ok = Instant::now(),
                Ok(Renewal::Cancelled) => {
                    // Still ours: stop the running task; the plan is not requeued (its state
                    // is `cancelled`), and the lease is released as usual.
                    info!(plan = %plan, "plan cancelled; stopping its task");
                    stop.cancel();
                    last_ok = Instant::now();
                }
                Ok(Renewal::Lost) => break,
                Err(e) => {
                    warn!(plan = %plan, error = %e, "lease renewal failed");
                    if last_ok.elapsed() >= self.cfg.lease {
                        break;
                    }
                }
            }
        }
        lost.cancel();
        stop.cancel();
        std::future::pending().await
    }

    async fn hold_inner(
        &self,
        plan: &PlanId,
        lock: &str,
        mut head: Head,
        lost: &CancellationToken,
        stop: &CancellationToken,
        held: &mut Held,
    ) -> Leave {
        let mut ran = 0u32;
        loop {
            match self.run_task(plan, lock, &head, lost, stop, held).await {
                // The commit brought the next task along: no extra trip to read it.
                Step::Committed(Committed::Next { head: next, .. }) => {
                    ran += 1;
                    if self.drain.is_cancelled() {
                        return Leave::Release("front");
                    }
                    if ran >= self.cfg.max_tasks_per_hold {
                        return Leave::Release("back");
                    }
                    head = next;
                }
                Step::Committed(Committed::Done { .. }) => return Leave::Released,
                Step::Committed(Committed::Stopped { .. }) | Step::Stopped => {
                    return Leave::Release("back")
                }
                Step::LeaseLost => return Leave::LeaseLost,
                Step::Aborted => return Leave::Release("front"),
            }
        }
    }

    /// Emits an event; a failure is logged, not fatal (the committed state is the truth).
    async fn emit(&self, plan: &PlanId, event: Event) {
        if let Err(e) = self.store.emit(plan, &event).await {
            warn!(plan = %plan, kind = %event.kind, error = %e, "could not publish event");
        }
    }

    async fn count(&self, plan: &PlanId, counters: &[(&str, i64)]) {
        if let Err(e) = self.store.count(Some(plan), counters).await {
            warn!(plan = %plan, error = %e, "could not update counters");
        }
    }

    fn event(&self, kind: EventKind, plan: &PlanId, task: &StoredTask) -> Event {
        Event::new(kind, Some(plan.as_str()))
            .worker(self.id.as_str())
            .task(&task.id, task.index)
    }

    /// Runs the head task to a commit, a stop, or a lost lease.
    async fn run_task(
        &self,
        plan: &PlanId,
        lock: &str,
        head: &Head,
        lost: &CancellationToken,
        stop: &CancellationToken,
        held: &mut Held,
    ) -> Step {
        let task = &head.task;
        let options: PlanOptions = head
            .meta
            .get("options")
            .and_then(|o| serde_json::from_str(o).ok())
            .unwrap_or_default();
        let ttl_secs = options
            .session_ttl_secs
            .unwrap_or(self.cfg.session_ttl.as_secs())
            .max(1);
        let spent: f64 = head
            .meta
            .get("cost_usd")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0.0);

        if task.recoveries > self.cfg.max_recoveries {
            let reason = format!(
                "task was recovered from {} dead workers; treating it as poison",
                task.recoveries
            );
            return self.fail_plan_now(plan, lock, task, reason).await;
        }
        let workspace = head
            .meta
            .get("workspace")
            .map(String::as_str)
            .unwrap_or(plan.as_str());
        // Checked before every task, not once per hold: a task's own tools could have turned
        // the folder into a symlink since the last one.
        let cwd = match self.prepare_workspace(workspace) {
            Ok(p) => p,
            Err(reason) => return self.fail_plan_now(plan, lock, task, reason).await,
        };
        let Held {
            warm,
            tally,
            started_once,
            committed_once,
        } = held;

        let mut attempts: Vec<String> = Vec::new();
        let mut forced: Option<&'static str> = None;
        let mut delays = self.retry_delays();
        let mut attempt = 0u32;
        while attempt < self.cfg.max_attempts {
            attempt += 1;
            let budget_left = options.max_budget_usd.map(|max| max - spent);
            if let Some(left) = budget_left {
                if left <= 0.0 {
                    let reason = format!(
                        "budget of ${:.4} spent (${spent:.4} used)",
                        options.max_budget_usd.unwrap_or(0.0)
                    );
                    return self.stop_for_budget(plan, lock, task, &reason).await;
                }
            }
            let session = match self.plan_session(plan, head, &cwd, forced, stop).await {
                Some(s) => s,
                None if lost.is_cancelled() => return Step::LeaseLost,
                None => return Step::Aborted,
            };
            self.announce_session(plan, task, &session, attempt, tally, !*started_once)
                .await;
            *started_once = true;

            let inv = Invocation {
                bin: &self.cfg.claude_bin,
                cwd: &cwd,
                config_dir: &self.config_dir,
                session: session.arg,
                options: &options,
                budget_left_usd: budget_left,
                prompt: &session.prompt,
                timeout: self.cfg.task_timeout,
                silence_timeout: self.cfg.silence_timeout,
            };
            let started = Instant::now();
            let started_at = std::time::SystemTime::now();
            let outcome = self.execute(plan, task, &inv, &session, warm, stop).await;
            let ended_at = std::time::SystemTime::now();
            if lost.is_cancelled() {
                return Step::LeaseLost;
            }
            match outcome {
                Ok(out) => {
                    let run = Run {
                        session: &session,
                        out,
                        attempts: attempt,
                        ttl_secs,
                        started,
                        started_at,
                        ended_at,
                    };
                    let (step, digest) = self
                        .commit(
                            plan,
                            lock,
                            head,
                            &cwd,
                            run,
                            tally,
                            !*committed_once,
                            stop,
                            lost,
                        )
                        .await;
                    *committed_once = true;
                    if let (Step::Committed(Committed::Next { .. }), Some(w)) = (&step, warm) {
                        w.committed(&digest);
                    }
                    return step;
                }
                Err(ClaudeError::Cancelled) => return Step::Aborted,
                Err(ClaudeError::Unsuccessful { subtype, message })
                    if subtype == "error_max_budget_usd" =>
                {
                    // The CLI stopped at what was left of the plan's budget: the plan is spent.
                    let reason = format!(
                        "budget of ${:.4} spent: {message}",
                        options.max_budget_usd.unwrap_or(0.0)
                    );
                    return self.stop_for_budget(plan, lock, task, &reason).await;
                }
                Err(e) => {
                    let reason = e.to_string();
                    warn!(plan = %plan, task = %task.id, attempt, error = %reason, "task attempt failed");
                    attempts.push(format!("attempt {attempt}: {reason}"));
                    match e.decision() {
                        Decision::Fail => {
                            return self
                                .stop_plan(
                                    plan,
                                    lock,
                                    task,
                                    &reason,
                                    attempts,
                                    EventKind::PlanFailed,
                                )
                                .await;
                        }
                        Decision::NewSession if forced.is_none() => {
                            // Not a transient failure: the conversation is gone. Start a new one
                            // at once, without counting this as an attempt.
                            attempt -= 1;
                            forced = Some(match e {
                                ClaudeError::SessionMismatch { .. } => "session_mismatch",
                                _ => "not_found",
                            });
                            self.emit(
                                plan,
                                self.event(EventKind::TaskRetrying, plan, task)
                                    .with("attempt", attempt + 1)
                                    .with("reason", reason)
                                    .with("delay_ms", 0),
                            )
                            .await;
                        }
                        Decision::NewSession | Decision::Retry => {
                            if attempt >= self.cfg.max_attempts {
                                break;
                            }
                            let delay = delays.next().unwrap_or(self.cfg.retry_max_delay);
                            self.emit(
                                plan,
                                self.event(EventKind::TaskRetrying, plan, task)
                                    .with("attempt", attempt + 1)
                                    .with("reason", reason)
                                    .with("delay_ms", delay.as_millis() as u64),
                            )
                            .await;
                            self.count(plan, &[("task_retries", 1)]).await;
                            tokio::select! {
                                _ = stop.cancelled() => return if lost.is_cancelled() { Step::LeaseLost } else { Step::Aborted },
                                _ = tokio::time::sleep(delay) => {}
                            }
                        }
                    }
                }
            }
        }
        let reason = format!("failed after {} attempts", self.cfg.max_attempts);
        self.stop_plan(plan, lock, task, &reason, attempts, EventKind::PlanFailed)
            .await
    }

    fn retry_delays(&self) -> impl Iterator<Item = Duration> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.cfg.retry_base_delay)
            .with_max_delay(self.cfg.retry_max_delay)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// Makes `<root>/<workspace>` exist, refusing any path that leaves the root through a symlink.
    fn prepare_workspace(&self, workspace: &str) -> Result<PathBuf, String> {
        let ws: baton_core::Workspace = workspace
            .parse()
            .map_err(|e| format!("workspace {workspace:?} {e}"))?;
        let mut path = self.workspace_root.clone();
        for part in ws.as_str().split('/') {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "workspace {workspace:?} goes through a symlink ({})",
                        path.display()
                    ));
                }
                Ok(m) if !m.is_dir() => {
                    return Err(format!(
                        "workspace {workspace:?}: {} is not a folder",
                        path.display()
                    ))
                }
                Ok(_) => {}
                Err(_) => std::fs::create_dir(&path)
                    .map_err(|e| format!("creating workspace {}: {e}", path.display()))?,
            }
        }
        let real = path
            .canonicalize()
            .map_err(|e| format!("workspace {}: {e}", path.display()))?;
        if !real.starts_with(&self.workspace_root) {
            return Err(format!("workspace {workspace:?} leaves the workspace root"));
        }
        Ok(real)
    }

    /// Decides how this task's session starts, restoring the committed transcript when the
    /// local copy differs. `None` when stopped while Redis was down.
    async fn plan_session(
        &self,
        plan: &PlanId,
        head: &Head,
        cwd: &Path,
        forced: Option<&'static str>,
        stop: &CancellationToken,
    ) -> Option<SessionPlan> {
        let task = &head.task;
        let record: Option<SessionRecord> = serde_json::from_str(&head.session).ok();
        let had_session = head.meta.get("session_id").is_some_and(|s| !s.is_empty());
        let fresh = match (&forced, &record) {
            (Some(reason), _) => Some(Fresh::Fallback(reason)),
            (None, None) if !had_session => Some(Fresh::First),
            (None, None) => Some(Fresh::Fallback("expired")),
            (None, Some(r)) if r.context_tokens > self.cfg.rotate_at_tokens => Some(Fresh::Rotated),
            (None, Some(r)) => match r.session_id.parse::<ClaudeSessionId>() {
                Err(_) => Some(Fresh::Fallback("not_found")),
                Ok(id) => {
                    let files = SessionFiles::new(&self.config_dir, cwd, id);
                    if files.local_digest().as_deref() == Some(r.transcript_sha256.as_str()) {
                        None
                    } else {
                        match redis_retry("fetch transcript", stop, || self.store.transcript(plan))
                            .await?
                        {
                            None => Some(Fresh::Fallback("transcript_missing")),
                            Some(blob) => match files.restore(&blob, &r.transcript_sha256) {
                                Ok(()) => None,
                                Err(e) => {
                                    warn!(plan = %plan, error = %e, "committed transcript unusable");
                                    let _ = files.remove_everywhere();
                                    Some(Fresh::Fallback("transcript_corrupt"))
                                }
                            },
                        }
                    }
                }
            },
        };
        let Some(fresh) = fresh else {
            let r = record.expect("a resume has a record");
            let id = r.session_id.parse().expect("checked above");
            return Some(SessionPlan {
                arg: SessionArg::Resume(id),
                prompt: task.prompt.clone(),
                fresh: None,
                previous: Some(r),
            });
        };
        let id = ClaudeSessionId::generate();
        let prompt = match fresh {
            Fresh::First => task.prompt.clone(),
            Fresh::Fallback(_) | Fresh::Rotated => {
                let earlier: Vec<TaskResult> =
                    redis_retry("read results", stop, || self.store.results(plan))
                        .await?
                        .iter()
                        .filter_map(|r| serde_json::from_str(r).ok())
                        .collect();
                let why = match fresh {
                    Fresh::Rotated => {
                        "the previous conversation grew past the context limit".to_owned()
                    }
                    Fresh::Fallback(reason) => {
                        format!("the previous conversation could not be resumed: {reason}")
                    }
                    Fresh::First => unreachable!(),
                };
                if earlier.is_empty() {
                    task.prompt.clone()
                } else {
                    recap::prompt_with_recap(&why, &earlier, &task.prompt)
                }
            }
        };
        Some(SessionPlan {
            arg: SessionArg::New(id),
            prompt,
            fresh: Some(fresh),
            previous: None,
        })
    }

    /// Announces an attempt (task_started, then how its session starts) and counts it in the
    /// plan, in one trip; the pool-wide counts go to `tally`.
    async fn announce_session(
        &self,
        plan: &PlanId,
        task: &StoredTask,
        s: &SessionPlan,
        attempt: u32,
        tally: &mut Tally,
        refresh_ttls: bool,
    ) {
        let sid = s.arg.id().to_string();
        let mut events = vec![self
            .event(EventKind::TaskStarted, plan, task)
            .with("attempt", attempt)
            .with("session_id", sid.clone())
            .with("mode", self.mode_name())];
        let mut counters: Vec<(String, i64)> = Vec::new();
        match (s.fresh, &s.previous) {
            (Some(Fresh::First), _) => {
                events.push(
                    self.event(EventKind::SessionCreated, plan, task)
                        .with("session_id", sid),
                );
                counters.push(("sessions_created".into(), 1));
            }
            (Some(Fresh::Fallback(reason)), _) => {
                events.push(
                    self.event(EventKind::SessionFallback, plan, task)
                        .with("reason", reason)
                        .with("session_id", sid),
                );
                counters.push(("sessions_created".into(), 1));
                counters.push((format!("fallbacks_{reason}"), 1));
                counters.push(("fallbacks".into(), 1));
            }
            (Some(Fresh::Rotated), _) => {
                events.push(
                    self.event(EventKind::SessionRotated, plan, task)
                        .with("session_id", sid),
                );
                counters.push(("sessions_created".into(), 1));
                counters.push(("rotations".into(), 1));
            }
            (None, Some(prev)) => {
                let handoff = prev.last_worker != self.id.as_str();
                let kind = if handoff {
                    EventKind::SessionHandoff
                } else {
                    EventKind::SessionResumed
                };
                events.push(
                    self.event(kind, plan, task)
                        .with("session_id", sid)
                        .with("from_worker", prev.last_worker.clone()),
                );
                counters.push(("resumes_attempted".into(), 1));
                if handoff {
                    counters.push(("handoffs".into(), 1));
                }
            }
            (None, None) => {}
        }
        let plan_counters: Vec<(&str, i64)> =
            counters.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        if let Err(e) = self
            .store
            .start(plan, &events, &plan_counters, refresh_ttls)
            .await
        {
            warn!(plan = %plan, error = %e, "could not publish the start of a task");
        }
        for (k, n) in &counters {
            tally.add(k, *n);
        }
    }

    fn mode_name(&self) -> String {
        match &self.cfg.executor {
            Executor::Claude => self.cfg.session_mode.to_string(),
            other => other.to_string(),
        }
    }

    /// Sends pool-wide counters once they are due; a failure is logged, not fatal.
    async fn flush_if_due(&self, tally: &mut Tally) {
        if !tally.due() {
            return;
        }
        if let Err(e) = self.store.count_pool(tally).await {
            warn!(error = %e, "could not update counters");
        }
        *tally = Tally::default();
    }

    /// Runs one attempt with the configured executor and session mode, forwarding progress
    /// as events.
    async fn execute(
        &self,
        plan: &PlanId,
        task: &StoredTask,
        inv: &Invocation<'_>,
        session: &SessionPlan,
        warm: &mut Option<WarmSession>,
        stop: &CancellationToken,
    ) -> Result<claude::Outcome, ClaudeError> {
        match (&self.cfg.executor, self.cfg.session_mode) {
            (Executor::Claude, SessionMode::Cold) => {
                self.supervise(
                    plan,
                    task,
                    |tx| async move { claude::run(inv, &tx, stop).await },
                )
                .await
            }
            (Executor::Claude, SessionMode::Warm) => {
                // Reuse the held process only for the conversation it produced itself.
                let reuse = match (warm.as_ref(), &session.previous, session.fresh) {
                    (Some(w), Some(prev), None) => {
                        w.continues(inv, &prev.transcript_sha256, self.cfg.warm_idle_timeout)
                    }
                    _ => false,
                };
                if !reuse {
                    if let Some(old) = warm.take() {
                        // The new process may resume this very session: the old one must be gone.
                        old.close().await;
                    }
                }
                let mut w = match warm.take() {
                    Some(w) => w,
                    None => WarmSession::start(inv)?,
                };
                let turn = {
                    let w = &mut w;
                    self.supervise(plan, task, |tx| async move { w.turn(inv, &tx, stop).await })
                        .await
                };
                match turn {
                    Ok(out) => {
                        *warm = Some(w);
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
            (other, _) => executor::run_without_cli(other, inv).await,
        }
    }

    /// Runs `run` (given the progress sender), forwarding progress as events as it happens.
    async fn supervise<F, Fut>(
        &self,
        plan: &PlanId,
        task: &StoredTask,
        run: F,
    ) -> Result<claude::Outcome, ClaudeError>
    where
        F: FnOnce(mpsc::UnboundedSender<Progress>) -> Fut,
        Fut: std::future::Future<Output = Result<claude::Outcome, ClaudeError>>,
    {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let run = run(tx);
        tokio::pin!(run);
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                Some(p) = rx.recv() => self.progress(plan, task, p).await,
            }
        };
        while let Ok(p) = rx.try_recv() {
            self.progress(plan, task, p).await;
        }
        result
    }

    async fn progress(&self, plan: &PlanId, task: &StoredTask, p: Progress) {
        let ev = self.event(EventKind::TaskProgress, plan, task);
        let ev = match p {
            Progress::ToolUse { tool, file_path } => {
                let ev = ev.with("tool", tool);
                match file_path {
                    Some(f) => ev.with("file_path", f),
                    None => ev,
                }
            }
            Progress::ApiRetry {
                status,
                attempt,
                delay_ms,
            } => {
                if status == Some(429) && delay_ms >= RATE_LIMIT_PAUSE_MIN_MS {
                    self.pause_pool(plan, task, delay_ms).await;
                }
                ev.with("api_retry", true)
                    .with("status", status.map(u64::from))
                    .with("cli_attempt", attempt)
                    .with("delay_ms", delay_ms)
            }
        };
        self.emit(plan, ev).await;
    }

    /// A rate limit with a reset time: the CLI waits it out itself; the rest of the pool stops
    /// claiming until then instead of each worker burning its retries on the same limit.
    async fn pause_pool(&self, plan: &PlanId, task: &StoredTask, delay_ms: u64) {
        let until = baton_core::time::now_millis() + delay_ms;
        let reason = format!(
            "rate limit (429) hit by plan {plan}; claims resume in {:.0}s",
            delay_ms as f64 / 1000.0
        );
        match self.store.pause(&reason, delay_ms).await {
            Ok(true) => {
                warn!(plan = %plan, delay_ms, "rate limited: pausing the pool");
                let ev = self
                    .event(EventKind::PoolPaused, plan, task)
                    .with("reason", reason)
                    .with("retry_after_ms", delay_ms)
                    .with("until_ms", until);
                self.emit(plan, ev).await;
                self.count(plan, &[("pool_pauses", 1)]).await;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not pause the pool"),
        }
    }

    /// Waits while the pool is paused (checked at most once a second per slot). `false` when
    /// draining began meanwhile.
    async fn wait_while_paused(&self, last_check: &mut Instant) -> bool {
        if last_check.elapsed() < Duration::from_secs(1) {
            return true;
        }
        *last_check = Instant::now();
        let Ok(Some(left)) = self.store.paused_for().await else {
            return true;
        };
        debug!(left = ?left, "pool paused; not claiming");
        tokio::select! {
            _ = self.drain.cancelled() => false,
            _ = tokio::time::sleep(left.min(Duration::from_secs(2))) => true,
        }
    }

    /// Commits a successful run. Returns the step and the digest of the committed transcript
    /// (empty when the run left none).
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        plan: &PlanId,
        lock: &str,
        head: &Head,
        cwd: &Path,
        run: Run<'_>,
        tally: &mut Tally,
        refresh_ttls: bool,
        stop: &CancellationToken,
        lost: &CancellationToken,
    ) -> (Step, String) {
        let Run {
            session,
            out,
            attempts,
            ttl_secs,
            started,
            started_at,
            ended_at,
        } = run;
        let task = &head.task;
        let sid = session.arg.id();
        let files = SessionFiles::new(&self.config_dir, cwd, sid);
        let (blob, digest) = match files.pack() {
            Ok(p) => p,
            Err(e) => {
                // The CLI said success but left no transcript: commit the result anyway; the
                // next task will fall back to a recap.
                warn!(plan = %plan, error = %e, "no transcript to commit");
                (Vec::new(), String::new())
            }
        };
        let now = baton_core::time::now_rfc3339();
        let result = TaskResult {
            task_id: task.id.clone(),
            task_index: task.index,
            kind: task.kind.clone(),
            prompt: task.prompt.clone(),
            result: out.result.clone(),
            session_id: sid.to_string(),
            worker: self.id.to_string(),
            attempts,
            cost_usd: out.cost_usd,
            input_tokens: out.input_tokens,
            output_tokens: out.output_tokens,
            duration_ms: started.elapsed().as_millis() as u64,
            files: out.files.clone(),
            finished_at: now.clone(),
        };
        let record = SessionRecord {
            session_id: sid.to_string(),
            created_at: session
                .previous
                .as_ref()
                .map(|p| p.created_at.clone())
                .unwrap_or_else(|| now.clone()),
            last_used_at: now,
            last_worker: self.id.to_string(),
            tasks: session.previous.as_ref().map_or(0, |p| p.tasks) + 1,
            context_tokens: out.context_tokens,
            transcript_sha256: digest.clone(),
            ttl_secs,
        };
        let result_json = serde_json::to_string(&result).expect("results serialize");
        let session_json = serde_json::to_string(&record).expect("records serialize");
        let succeeded = self
            .event(EventKind::TaskSucceeded, plan, task)
            .with("result", out.result.clone())
            .with("session_id", sid.to_string())
            .with("cost_usd", out.cost_usd)
            .with("input_tokens", out.input_tokens)
            .with("output_tokens", out.output_tokens)
            .with("duration_ms", result.duration_ms)
            .with("files", out.files.clone())
            .with("attempts", attempts)
            // When the run was started, when its result arrived and when it was over (ms since
            // the epoch): what the queue adds around a task can be measured from these and the
            // event's arrival.
            .with("run_started_ms", epoch_ms(started_at))
            .with("result_at_ms", epoch_ms(out.result_at))
            .with("run_ended_ms", epoch_ms(ended_at));
        let completed =
            Event::new(EventKind::PlanCompleted, Some(plan.as_str())).worker(self.id.as_str());
        let mut plan_counters = vec![
            ("tasks_succeeded", 1),
            ("input_tokens", out.input_tokens as i64),
            ("output_tokens", out.output_tokens as i64),
        ];
        if session.fresh.is_none() {
            plan_counters.push(("resumes_succeeded", 1));
        }
        let c = Commit {
            head_json: &head.raw,
            result_json: &result_json,
            session_json: &session_json,
            session_ttl_secs: ttl_secs,
            succeeded_event: &succeeded,
            completed_event: &completed,
            cost_usd: out.cost_usd,
            input_tokens: out.input_tokens,
            output_tokens: out.output_tokens,
            transcript: &blob,
            worker: &self.id,
            session_id: &sid.to_string(),
            plan_counters: &plan_counters,
            refresh_ttls,
        };
        // A result finished while Redis was away is committed when it returns, unless the
        // lease ran out meanwhile (then the fence refuses it and the task runs again).
        let step = match redis_retry("commit", stop, || self.store.commit(plan, lock, &c)).await {
            Some(Fenced::Ok(next)) => {
                for (name, n) in &plan_counters {
                    tally.add(name, *n);
                }
                if matches!(next, Committed::Done { completed: true }) {
                    tally.add("plans_completed", 1);
                }
                tally.add_float("cost_usd", out.cost_usd);
                self.flush_if_due(tally).await;
                debug!(plan = %plan, task = %task.id, index = task.index, "task committed");
                Step::Committed(next)
            }
            Some(Fenced::LeaseLost) => Step::LeaseLost,
            None if lost.is_cancelled() => Step::LeaseLost,
            None => Step::Aborted,
        };
        (step, digest)
    }

    /// Fails the plan on `task` before running it (a poison task, an unusable workspace).
    async fn fail_plan_now(
        &self,
        plan: &PlanId,
        lock: &str,
        task: &StoredTask,
        reason: String,
    ) -> Step {
        self.stop_plan(
            plan,
            lock,
            task,
            &reason,
            vec![reason.clone()],
            EventKind::PlanFailed,
        )
        .await
    }

    /// Stops the plan because its budget is spent (reason `budget` in the event).
    async fn stop_for_budget(
        &self,
        plan: &PlanId,
        lock: &str,
        task: &StoredTask,
        detail: &str,
    ) -> Step {
        self.stop_plan(
            plan,
            lock,
            task,
            detail,
            vec![],
            EventKind::PlanBudgetExhausted,
        )
        .await
    }

    /// Stops the plan on `task` with `reason`, dead-lettering the task when it failed.
    #[allow(clippy::too_many_arguments)]
    async fn stop_plan(
        &self,
        plan: &PlanId,
        lock: &str,
        task: &StoredTask,
        reason: &str,
        attempts: Vec<String>,
        kind: EventKind,
    ) -> Step {
        let task_event = (kind == EventKind::PlanFailed).then(|| {
            self.event(EventKind::TaskFailed, plan, task)
                .with("reason", reason)
                .with("attempts", attempts.clone())
        });
        let plan_event = Event::new(kind, Some(plan.as_str()))
            .worker(self.id.as_str())
            .task(&task.id, task.index)
            .with(
                "reason",
                if kind == EventKind::PlanBudgetExhausted {
                    "budget"
                } else {
                    reason
                },
            );
        let plan_event = if kind == EventKind::PlanBudgetExhausted {
            plan_event.with("detail", reason)
        } else {
            plan_event
        };
        let stopped = redis_retry("stop plan", &self.abort, || {
            self.store.stop_plan(
                plan,
                lock,
                "failed",
                reason,
                task_event.as_ref(),
                &plan_event,
            )
        })
        .await;
        match stopped {
            Some(Fenced::Ok(())) => {
                if kind == EventKind::PlanFailed {
                    let letter = DeadLetter {
                        id: uuid::Uuid::new_v4().to_string(),
                        at: baton_core::time::now_rfc3339(),
                        kind: "task".into(),
                        reason: reason.to_owned(),
                        field: None,
                        plan_id: Some(plan.to_string()),
                        task_id: Some(task.id.clone()),
                        attempts,
                        document: None,
                    };
                    let _ = redis_retry("dead letter", &self.abort, || {
                        self.store.dead_letter(&letter)
                    })
                    .await;
                    self.count(plan, &[("tasks_failed", 1), ("plans_failed", 1)])
                        .await;
                } else {
                    self.count(plan, &[("plans_budget_exhausted", 1)]).await;
                }
                warn!(plan = %plan, task = %task.id, reason, "plan stopped");
                Step::Stopped
            }
            Some(Fenced::LeaseLost) => Step::LeaseLost,
            None => Step::Aborted,
        }
    }
}
