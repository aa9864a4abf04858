//! A held plan, from the lease taken to the plan handed back. [`Hold`] is the one dispatcher of
//! its plan (nextest's dispatcher, river's completer): it owns everything about the plan while a
//! slot holds it (its lease, its engine, what it committed last), drives each task's
//! [`Attempt`], and is the only code that tells the world: it publishes the events, counts (the
//! plan's counters and the worker's metrics), sends the webhooks and pauses the pool, from the
//! executor events and outcomes the attempts return.
//!
//! # Layout
//! - `enter`: the hold's span in the plan's trace, around taking the lease.
//! - this module: taking the lease, the tasks one after the other, each task's attempts, leaving.
//! - `next`: what a hold does after a task ([`next_move`]), a pure function.
//! - `report`: the events and counters it sends (and the pool-wide tally).
//! - `commit`: a success, fenced; `stop`: the plan stopped on its task; `dependencies`: a plan
//!   that waits for others.
//!
//! Invariants (docs/ARCHITECTURE.md): the plan id is in this worker's in-flight list for as
//! long as the hold lives, so a reaper can always hand it back; a task leaves its plan's list
//! only in the fenced commit; a hold whose lease is lost stops its CLI and writes nothing more.

mod budget;
mod commit;
mod dependencies;
mod enter;
mod next;
mod prestart;
mod report;
mod stop;
mod unclaim;

pub(crate) use enter::run;
pub(crate) use next::{next_move, Leave, NextMove, TaskEnd};
pub(crate) use prestart::Prestarted;
pub(crate) use report::transfer;
pub(crate) use unclaim::{unclaim, unclaim_once};

use std::time::{Duration, SystemTime};

use baton_core::plan::Notify;
use baton_core::scripts::hold::{Acquire, AcquireReply, Head, LockValue, Release, Unclaim};
use baton_core::{PlanId, PlanTotals, Priority, Requeue};
use tokio::sync::mpsc;
use tracing::{debug, instrument, warn};

use crate::attempt::{Attempt, Base, Context, Outcome, Stop};
use crate::engine::Engine;
use crate::gateway::Grant;
use crate::lease::Lease;
use crate::pool::Pool;
use crate::reconnect::redis_retry;
use crate::traces;
use crate::transcript::Committed;
use crate::workspace;
use next::TtlRefresh;
use report::Reporter;
use stop::Halt;

/// One held plan.
pub(crate) struct Hold<'p> {
    pool: &'p Pool,
    plan: PlanId,
    lease: Lease,
    engine: Box<dyn Engine>,
    report: Reporter<'p>,
    ttls: TtlRefresh,
    /// The plan's priority, as its head last said: the ready list it goes back to.
    priority: Priority,
    /// The plan's webhook, as its head last said.
    notify: Option<Notify>,
    /// The hold's token at the model gateway: what its CLI runs present instead of the API
    /// key. Revoked when the hold ends.
    grant: Grant,
    /// Tasks committed in this hold.
    ran: u32,
    /// When the plan was claimed: stamped into the hold's first commit.
    claimed_at: Option<SystemTime>,
    /// When the hold began the task it runs.
    task_began: SystemTime,
    concurrency_key: Option<String>, // the hand-back reports its spend to the key's day
}

/// The hold from the lease taken (`enter::run`) to the plan handed back: runs its tasks while
/// it has some (within the fairness bound), and hands it back.
async fn held(
    pool: &Pool,
    plan: PlanId,
    claimed_at: SystemTime,
    head: Box<Head>,
    value: LockValue,
) {
    debug!("holding plan");
    pool.metrics.plan_held(true);
    let lease = Lease::new(value, &pool.shutdown.abort);
    let keeper = lease.clone().keep(pool, plan.clone());
    let base = Base {
        transcript: pool.transcripts.take(&plan),
        ..Base::default()
    };
    let mut hold = Hold {
        pool,
        report: Reporter::new(pool, plan.clone(), head.plan.trace_id().map(str::to_owned)),
        engine: (pool.make_engine)(&plan),
        plan,
        lease,
        ttls: TtlRefresh::default(),
        priority: head.plan.priority.unwrap_or_default(),
        notify: head.plan.options.as_ref().and_then(|o| o.notify.clone()),
        grant: pool.gateway.grant(),
        ran: 0,
        claimed_at: Some(claimed_at),
        task_began: SystemTime::now(),
        concurrency_key: head.plan.concurrency_key.clone(),
    };
    let (leave, transcript) = {
        let work = async {
            // Under the lease keeper: this plan's last warm CLI on this machine may still be
            // exiting (and writing its transcript).
            pool.closing.wait_for(&hold.plan).await;
            if !head.plan.after.is_empty() {
                if let Some(leave) = hold.wait_for_dependencies(&head).await {
                    return (leave, base.transcript);
                }
            }
            let (leave, base) = hold.run_tasks(head, base).await;
            (leave, base.transcript)
        };
        tokio::select! {
            left = work => left,
            never = keeper => match never {},
        }
    };
    hold.leave(leave, transcript).await;
    pool.metrics.plan_held(false);
    if leave == Leave::LeaseLost {
        pool.metrics.lease_lost();
    }
}

/// Takes the plan's lease and reads its head task; `None` when there is nothing to hold (the
/// claim is then handed back as the reply says).
async fn acquire(
    pool: &Pool,
    plan: &PlanId,
    value: &LockValue,
    root: Option<&traces::Root>,
) -> Option<Box<Head>> {
    let acquire = Acquire {
        plan,
        lock: value,
        lease: pool.cfg.lease,
        worker: &pool.id,
        trace: root.map(traces::Root::as_str),
    };
    let acquired = redis_retry("acquire", &pool.shutdown.abort, || {
        pool.store.call(&acquire)
    })
    .await;
    match acquired {
        Some(AcquireReply::Acquired(head)) => Some(head),
        Some(AcquireReply::Busy | AcquireReply::Idle) => {
            // A duplicate entry, or a plan with nothing to run: its holder (if any) keeps
            // its own entry.
            unclaim(pool, plan, Requeue::Drop, &PlanTotals::NONE).await;
            None
        }
        Some(AcquireReply::Later { at_ms, priority }) => {
            // Not yet (its not_before): it waits in the delayed set, still scheduled.
            let call = Unclaim {
                worker: &pool.id,
                plan,
                requeue: Requeue::Later,
                priority,
                not_before_ms: at_ms,
                delay: Duration::ZERO,
                totals: &PlanTotals::NONE,
            };
            let _ = redis_retry("unclaim", &pool.shutdown.abort, || pool.store.call(&call)).await;
            None
        }
        None => None, // aborted while Redis was down; the final hand-back requeues it
    }
}

impl Hold<'_> {
    /// Sends `event` to the plan's webhook, if it asks for it (tracked: see `webhook`).
    fn notify(&self, event: &baton_core::Event) {
        let pool = self.pool;
        pool.webhooks
            .send(self.notify.as_ref(), event, &pool.store, &pool.id);
    }

    /// Runs the tasks from `head` on, each from what the last one left, until the hold leaves.
    async fn run_tasks(&mut self, mut head: Box<Head>, mut base: Base) -> (Leave, Base) {
        loop {
            let (end, left) = self.run_task(&head, base).await;
            base = left;
            if let TaskEnd::Next(next) = &end {
                self.ran += 1;
                self.priority = next.plan.priority.unwrap_or_default();
                self.notify = next.plan.options.as_ref().and_then(|o| o.notify.clone());
            }
            // A start the last commit published is a task that runs: a drain that began
            // during that commit lets it finish, as it lets a running task finish.
            let draining = self.draining() && !self.report.announced_next();
            let max = self.pool.cfg.max_tasks_per_hold;
            match next_move(end, self.ran, max, draining) {
                NextMove::Run(next) => head = next,
                NextMove::Leave(leave) => return (leave, base),
            }
        }
    }

    /// The worker is shutting down, or a user paused the pool (a drain of every hold).
    fn draining(&self) -> bool {
        self.pool.shutdown.drain.is_cancelled()
            || self
                .pool
                .user_paused
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True when, once `ran` tasks are committed, the hold would run the next one (if the
    /// plan has one): what [`next_move`] decides, asked before the commit.
    fn goes_on_after(&self, ran: u32) -> bool {
        next::goes_on(ran, self.pool.cfg.max_tasks_per_hold, self.draining())
    }

    /// Runs the head task to a commit, a stop, or an interruption.
    #[instrument(name = "task", skip_all, fields(task = %head.task.id))]
    async fn run_task(&mut self, head: &Head, base: Base) -> (TaskEnd, Base) {
        self.task_began = SystemTime::now();
        let task = &head.task;
        traces::mark_task(&tracing::Span::current(), &self.plan, task, None);
        if task.recoveries > self.pool.cfg.max_recoveries {
            let reason = format!(
                "task was recovered from {} dead workers; treating it as poison",
                task.recoveries
            );
            let end = self.stop_plan(task, Stop::failed_now(reason).into()).await;
            return (end, base);
        }
        if let Some(end) = self.key_budget_check(head).await {
            return (end, base);
        }
        let workspace = head
            .plan
            .workspace
            .clone()
            .unwrap_or_else(|| self.plan.to_string());
        // Checked before every task, not once per hold: a task's own tools could have turned
        // the folder into a symlink since the last one.
        let cwd = match workspace::prepare(&self.pool.workspace_root, &workspace) {
            Ok(cwd) => cwd,
            Err(e) => {
                let end = self.stop_plan(task, Stop::failed_now(e.to_string()).into());
                return (end.await, base);
            }
        };
        let mut attempt = Attempt::new(self.pool, head, &cwd, base);
        loop {
            match self.try_attempt(&mut attempt, head).await {
                Outcome::Commit(run) => {
                    return self.commit(head, &cwd, run, attempt.into_base()).await
                }
                Outcome::Retry {
                    next,
                    reason,
                    delay,
                } => {
                    self.report.retrying(task, next, &reason, delay).await;
                    if let Some(delay) = delay {
                        if let Err(why) = self.lease.sleep(delay).await {
                            return (TaskEnd::Interrupted(why), attempt.into_base());
                        }
                    }
                }
                Outcome::Stop { stop, .. } => {
                    let end = self.stop_plan(task, Halt::Task(stop)).await;
                    return (end, attempt.into_base());
                }
                Outcome::Interrupted(why) => {
                    return (TaskEnd::Interrupted(why), attempt.into_base())
                }
            }
        }
    }

    /// One try of `attempt`, its executor events dispatched as they come (in order), and what
    /// the outcome counts.
    async fn try_attempt(&mut self, attempt: &mut Attempt<'_>, head: &Head) -> Outcome {
        let (events, mut rx) = mpsc::unbounded_channel();
        let ctx = Context {
            pool: self.pool,
            plan: &self.plan,
            lease: &self.lease,
            grant: &self.grant,
        };
        let run = attempt.run(&ctx, &mut *self.engine, &events);
        tokio::pin!(run);
        let outcome = loop {
            tokio::select! {
                outcome = &mut run => break outcome,
                Some(e) = rx.recv() => self.report.dispatch(&head.task, e, &mut self.ttls).await,
            }
        };
        // The attempt is over: what it sent last is all in the channel.
        while let Ok(e) = rx.try_recv() {
            self.report.dispatch(&head.task, e, &mut self.ttls).await;
        }
        self.report.outcome(&outcome);
        outcome
    }

    /// Ends the hold: the engine first (a warm CLI must not outlive a lost lease), then the
    /// lease and the claim, with the hold's pool-wide counters. `transcript`: what the hold
    /// leaves committed of it, remembered for this worker's next hold of the plan.
    async fn leave(self, leave: Leave, transcript: Option<Committed>) {
        let Hold {
            pool,
            plan,
            lease,
            engine,
            report,
            priority,
            concurrency_key,
            ..
        } = self;
        if let (Some(t), false) = (transcript, leave == Leave::LeaseLost) {
            pool.transcripts.keep(plan.clone(), t);
        }
        engine
            .finish(leave == Leave::LeaseLost, &plan, &pool.closing)
            .await;
        let mut delay = Duration::ZERO;
        let requeue = match leave {
            Leave::Released => Requeue::Drop,
            Leave::Release(_) | Leave::Later(_) => {
                let release = Release {
                    plan: &plan,
                    lock: &lease.value,
                };
                let released = redis_retry("release", &pool.shutdown.abort, || {
                    pool.store.call(&release)
                })
                .await;
                let (to, after) = next::requeue_after_release(released, leave);
                delay = after;
                to
            }
            Leave::LeaseLost => {
                // The lease expired (a stall, or Redis away for longer than it) or another
                // worker took the plan. Hand it back to the front either way: if someone holds
                // it, their claim of this entry finds it busy and drops it; if no one does, it
                // must not be left in no list at all.
                warn!("lease lost; handing the plan back");
                Requeue::Front
            }
        };
        // The plan's counter totals go with the hand-back (the pool adds what it lacks).
        report.handed_back();
        let totals = redis_retry("read the plan's counters", &pool.shutdown.abort, || {
            pool.store.plan_totals(&plan)
        })
        .await
        .unwrap_or_default();
        if let Some(key) = &concurrency_key {
            budget::report_spend(pool, &plan, key, budget::cost_of(&totals)).await;
        }
        let call = Unclaim {
            worker: &pool.id,
            plan: &plan,
            requeue,
            priority,
            not_before_ms: 0,
            delay,
            totals: &totals,
        };
        let _ = redis_retry("unclaim", &pool.shutdown.abort, || pool.store.call(&call)).await;
    }
}
