//! A held plan: from the lease taken to the plan handed back. [`Hold`] owns everything about
//! one plan while a slot holds it (its lease, its CLI engine, its events and counters, what it
//! committed last); each step of a task is an `impl Hold` block in a module of its own:
//! `attempt` (run the task until it succeeds or must stop), `commit` (a success, fenced),
//! `stop` (the plan stopped on its task). This module runs the tasks one after the other and
//! decides when to leave ([`next_move`]).
//!
//! Invariants (docs/ARCHITECTURE.md): the plan id is in this worker's in-flight list for as
//! long as the hold lives, so a reaper can always hand it back; a task leaves its plan's list
//! only in the fenced commit; a hold whose lease is lost stops its CLI and writes nothing more.

pub(crate) mod lease;

use baton_core::plan::Notify;
use baton_core::records::SessionRecord;
use baton_core::scripts::hold::{
    Acquire, AcquireReply, Head, LockValue, Release, Released, Unclaim,
};
use baton_core::{PlanId, PlanTotals, Priority, Requeue};
use std::time::Duration;
use tracing::{debug, warn};

use crate::attempt::AttemptEnd;
use crate::engine::Engine;
use crate::pool::Pool;
use crate::reconnect::redis_retry;
use crate::report::Reporter;
use crate::stop::Stop;
use crate::transcript::Committed;
use crate::workspace;
use lease::{Interruption, Lease};

/// One held plan.
pub(crate) struct Hold<'p> {
    pub(crate) pool: &'p Pool,
    pub(crate) plan: PlanId,
    pub(crate) lease: Lease,
    pub(crate) engine: Engine,
    pub(crate) report: Reporter<'p>,
    pub(crate) ttls: TtlRefresh,
    /// The session record this hold committed last: a warm process may only go on with the
    /// conversation it produced itself.
    pub(crate) last_commit: Option<SessionRecord>,
    /// The commit this hold's last checkpoint left the work tree at (a plan with a repository),
    /// taken by the next attempt: valid only until something runs in the workspace.
    pub(crate) tree_at: Option<String>,
    /// What this hold's last commit left committed of the transcript, taken by the next attempt
    /// (its commit then sends only what the turn added).
    pub(crate) transcript: Option<Committed>,
    /// The plan's priority, as its head last said: the ready list it goes back to.
    pub(crate) priority: Priority,
    /// The plan's webhook, as its head last said.
    pub(crate) notify: Option<Notify>,
    /// The hold's token at the model gateway: what its CLI runs present instead of the API
    /// key. Revoked when the hold ends.
    pub(crate) grant: crate::gateway::Grant,
}

/// The plan keys' retention TTLs are reset once per hold (by its first start and its first
/// commit), not on every task.
#[derive(Debug, Default)]
pub(crate) struct TtlRefresh {
    started: bool,
    committed: bool,
}

impl TtlRefresh {
    /// True the first time only.
    pub(crate) fn first_start(&mut self) -> bool {
        !std::mem::replace(&mut self.started, true)
    }

    /// True the first time only.
    pub(crate) fn first_commit(&mut self) -> bool {
        !std::mem::replace(&mut self.committed, true)
    }
}

/// What one task came to.
#[derive(Debug)]
pub(crate) enum TaskEnd {
    /// Committed; the commit brought the next task along (the lease is still ours).
    Next(Box<Head>),
    /// Committed, and nothing is left: the commit gave the lease back.
    Done,
    /// The plan stopped (failed, budget spent, cancelled): it waits for someone to act.
    Stopped,
    /// No outcome: the lease was lost, or the task was stopped.
    Interrupted(Interruption),
}

/// How a hold ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// Give the lease back; if tasks are left, requeue the plan here.
    Release(Requeue),
    /// The last commit gave the lease back already: only the claim remains.
    Released,
    /// The lease is gone: write nothing of the plan, hand it back to the front.
    LeaseLost,
    /// Give the lease back and claim the plan again after this long (it waits for other plans).
    Later(Duration),
}

/// What a hold does after a task.
#[derive(Debug)]
pub(crate) enum NextMove {
    Run(Box<Head>),
    Leave(Leave),
}

/// After a task: run the next one, or leave and how. `ran`: tasks committed in this hold;
/// `draining`: the worker is shutting down.
pub(crate) fn next_move(end: TaskEnd, ran: u32, max_per_hold: u32, draining: bool) -> NextMove {
    match end {
        // A draining worker finishes what runs and hands the rest to the front of the line.
        TaskEnd::Next(_) if draining => NextMove::Leave(Leave::Release(Requeue::Front)),
        // Fairness: other plans get a turn; this one waits at the back.
        TaskEnd::Next(_) if ran >= max_per_hold => NextMove::Leave(Leave::Release(Requeue::Back)),
        TaskEnd::Next(head) => NextMove::Run(head),
        TaskEnd::Done => NextMove::Leave(Leave::Released),
        TaskEnd::Stopped => NextMove::Leave(Leave::Release(Requeue::Back)),
        TaskEnd::Interrupted(Interruption::LeaseLost) => NextMove::Leave(Leave::LeaseLost),
        TaskEnd::Interrupted(Interruption::Stopped) => {
            NextMove::Leave(Leave::Release(Requeue::Front))
        }
    }
}

/// Holds a claimed plan: takes its lease, runs its tasks while it has some (within the
/// fairness bound), and hands it back.
pub(crate) async fn run(pool: &Pool, plan: PlanId) {
    let value = LockValue::new(&pool.id);
    let acquire = Acquire {
        plan: &plan,
        lock: &value,
        lease: pool.cfg.lease,
        worker: &pool.id,
    };
    let acquired = redis_retry("acquire", &pool.shutdown.abort, || {
        pool.store.call(&acquire)
    })
    .await;
    let head = match acquired {
        Some(AcquireReply::Acquired(head)) => head,
        Some(AcquireReply::Busy | AcquireReply::Idle) => {
            // A duplicate entry, or a plan with nothing to run: its holder (if any) keeps
            // its own entry.
            unclaim(pool, &plan, Requeue::Drop, &PlanTotals::NONE).await;
            return;
        }
        Some(AcquireReply::Later { at_ms, priority }) => {
            // Not yet (its not_before): it waits in the delayed set, still scheduled.
            let call = Unclaim {
                worker: &pool.id,
                plan: &plan,
                requeue: Requeue::Later,
                priority,
                not_before_ms: at_ms,
                delay: Duration::ZERO,
                totals: &PlanTotals::NONE,
            };
            let _ = redis_retry("unclaim", &pool.shutdown.abort, || pool.store.call(&call)).await;
            return;
        }
        None => return, // aborted while Redis was down; the final hand-back requeues it
    };
    debug!(plan = %plan, "holding plan");
    pool.metrics.plan_held(true);
    let lease = Lease::new(value, &pool.shutdown.abort);
    let keeper = lease.clone().keep(pool, plan.clone());
    let transcript = pool.transcripts.take(&plan);
    let mut hold = Hold {
        pool,
        report: Reporter::new(pool, plan.clone()),
        plan,
        lease,
        engine: Engine::new(&pool.cfg),
        ttls: TtlRefresh::default(),
        last_commit: None,
        tree_at: None,
        transcript,
        priority: head.plan.priority.unwrap_or_default(),
        notify: head.plan.options.as_ref().and_then(|o| o.notify.clone()),
        grant: pool.gateway.grant(),
    };
    let leave = {
        let work = async {
            // Under the lease keeper: this plan's last warm CLI on this machine may still be
            // exiting (and writing its transcript).
            pool.closing.wait_for(&hold.plan).await;
            if !head.plan.after.is_empty() {
                if let Some(leave) = hold.wait_for_dependencies(&head).await {
                    return leave;
                }
            }
            hold.run_tasks(head).await
        };
        tokio::select! {
            leave = work => leave,
            never = keeper => match never {},
        }
    };
    hold.leave(leave).await;
    pool.metrics.plan_held(false);
    if leave == Leave::LeaseLost {
        pool.metrics.lease_lost();
    }
}

impl Hold<'_> {
    /// Sends `event` to the plan's webhook, if it asks for it (in the background).
    pub(crate) fn notify(&self, event: &baton_core::Event) {
        let pool = self.pool;
        pool.webhooks.send(
            self.notify.as_ref(),
            event,
            &pool.store,
            &pool.id,
            &pool.shutdown.abort,
        );
    }

    async fn run_tasks(&mut self, mut head: Box<Head>) -> Leave {
        let mut ran = 0u32;
        loop {
            let end = self.run_task(&head).await;
            if let TaskEnd::Next(next) = &end {
                ran += 1;
                self.priority = next.plan.priority.unwrap_or_default();
                self.notify = next.plan.options.as_ref().and_then(|o| o.notify.clone());
            }
            // A user's pause of the pool is a drain of every hold: the plan goes first in line.
            let draining = self.pool.shutdown.drain.is_cancelled()
                || self
                    .pool
                    .user_paused
                    .load(std::sync::atomic::Ordering::Relaxed);
            match next_move(end, ran, self.pool.cfg.max_tasks_per_hold, draining) {
                NextMove::Run(next) => head = next,
                NextMove::Leave(leave) => return leave,
            }
        }
    }

    /// Runs the head task to a commit, a stop, or an interruption.
    async fn run_task(&mut self, head: &Head) -> TaskEnd {
        let task = &head.task;
        if task.recoveries > self.pool.cfg.max_recoveries {
            let reason = format!(
                "task was recovered from {} dead workers; treating it as poison",
                task.recoveries
            );
            return self.stop_plan(task, Stop::failed_now(reason)).await;
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
            Err(e) => return self.stop_plan(task, Stop::failed_now(e.to_string())).await,
        };
        match self.attempt(head, &cwd).await {
            AttemptEnd::Succeeded(run) => self.commit(head, &cwd, run).await,
            AttemptEnd::Stop(stop) => self.stop_plan(task, stop).await,
            AttemptEnd::Interrupted(why) => TaskEnd::Interrupted(why),
        }
    }

    /// Ends the hold: the engine first (a warm CLI must not outlive a lost lease), then the
    /// lease and the claim, with the hold's pool-wide counters.
    async fn leave(self, leave: Leave) {
        let Hold {
            pool,
            plan,
            lease,
            engine,
            report,
            transcript,
            priority,
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
                match (released, leave) {
                    (Some(Released::TasksLeft), Leave::Later(d)) => {
                        delay = d;
                        Requeue::Later
                    }
                    (Some(Released::TasksLeft), Leave::Release(to)) => to,
                    _ => Requeue::Drop,
                }
            }
            Leave::LeaseLost => {
                // The lease expired (a stall, or Redis away for longer than it) or another
                // worker took the plan. Hand it back to the front either way: if someone holds
                // it, their claim of this entry finds it busy and drops it; if no one does, it
                // must not be left in no list at all.
                warn!(plan = %plan, "lease lost; handing the plan back");
                Requeue::Front
            }
        };
        // The plan's counter totals go with the hand-back (the pool adds what it lacks).
        report.tally.clear();
        let totals = redis_retry("read the plan's counters", &pool.shutdown.abort, || {
            pool.store.plan_totals(&plan)
        })
        .await
        .unwrap_or_default();
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

/// Takes `plan` off this worker's in-flight list, requeued as asked (on the normal list), with
/// pool counts.
pub(crate) async fn unclaim(pool: &Pool, plan: &PlanId, requeue: Requeue, totals: &PlanTotals) {
    let call = Unclaim {
        worker: &pool.id,
        plan,
        requeue,
        priority: Priority::Normal,
        not_before_ms: 0,
        delay: Duration::ZERO,
        totals,
    };
    let _ = redis_retry("unclaim", &pool.shutdown.abort, || pool.store.call(&call)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Box<Head> {
        let raw = r#"{"id":"t1","index":0,"prompt":"p"}"#;
        Box::new(Head {
            task: serde_json::from_str(raw).unwrap(),
            raw: raw.into(),
            session: None,
            plan: baton_core::PlanHash::default(),
        })
    }

    fn leave(end: TaskEnd, ran: u32, draining: bool) -> Option<Leave> {
        match next_move(end, ran, 3, draining) {
            NextMove::Run(_) => None,
            NextMove::Leave(l) => Some(l),
        }
    }

    /// How a hold leaves after each way a task can end.
    #[test]
    fn a_hold_leaves_its_plan_as_the_task_says() {
        assert_eq!(leave(TaskEnd::Next(head()), 1, false), None, "keep going");
        assert_eq!(
            leave(TaskEnd::Next(head()), 3, false),
            Some(Leave::Release(Requeue::Back)),
            "fairness bound reached"
        );
        assert_eq!(
            leave(TaskEnd::Next(head()), 1, true),
            Some(Leave::Release(Requeue::Front)),
            "draining"
        );
        assert_eq!(leave(TaskEnd::Done, 1, false), Some(Leave::Released));
        assert_eq!(leave(TaskEnd::Done, 1, true), Some(Leave::Released));
        assert_eq!(
            leave(TaskEnd::Stopped, 0, false),
            Some(Leave::Release(Requeue::Back))
        );
        assert_eq!(
            leave(TaskEnd::Interrupted(Interruption::LeaseLost), 0, false),
            Some(Leave::LeaseLost)
        );
        assert_eq!(
            leave(TaskEnd::Interrupted(Interruption::Stopped), 0, true),
            Some(Leave::Release(Requeue::Front))
        );
    }

    #[test]
    fn retention_is_refreshed_once_per_hold() {
        let mut t = TtlRefresh::default();
        assert!(t.first_start() && !t.first_start());
        assert!(t.first_commit() && !t.first_commit());
    }
}
