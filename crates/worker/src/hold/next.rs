//! What a hold does after a task ([`next_move`]): run the next one, or leave and how. A pure
//! function, tested for every way a task ends.

use std::time::Duration;

use baton_core::scripts::hold::{Head, Released as ReleaseReply};
use baton_core::Requeue;

use crate::lease::Interruption;

/// What one task came to.
#[derive(Debug)]
pub(crate) enum TaskEnd {
    /// Committed; the commit brought the next task along (the lease is still ours).
    Next(Box<Head>),
    /// Committed, and nothing is left: the commit gave the lease back.
    Done,
    /// The plan stopped (failed, budget spent, cancelled): it waits for someone to act.
    Stopped,
    /// The plan paused on its key's daily budget: it is claimed again after this long (the
    /// next UTC day), unless the budget is raised first.
    Wait(Duration),
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
        TaskEnd::Next(head) if goes_on(ran, max_per_hold, draining) => NextMove::Run(head),
        // A draining worker finishes what runs and hands the rest to the front of the line.
        TaskEnd::Next(_) if draining => NextMove::Leave(Leave::Release(Requeue::Front)),
        // Fairness: other plans get a turn; this one waits at the back.
        TaskEnd::Next(_) => NextMove::Leave(Leave::Release(Requeue::Back)),
        TaskEnd::Done => NextMove::Leave(Leave::Released),
        TaskEnd::Stopped => NextMove::Leave(Leave::Release(Requeue::Back)),
        TaskEnd::Wait(d) => NextMove::Leave(Leave::Later(d)),
        TaskEnd::Interrupted(Interruption::LeaseLost) => NextMove::Leave(Leave::LeaseLost),
        TaskEnd::Interrupted(Interruption::Stopped) => {
            NextMove::Leave(Leave::Release(Requeue::Front))
        }
    }
}

/// True when a hold that has committed `ran` tasks runs the plan's next one: it is not
/// draining and has not reached the fairness bound.
pub(crate) fn goes_on(ran: u32, max_per_hold: u32, draining: bool) -> bool {
    !draining && ran < max_per_hold
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

/// Where a plan goes once `release.lua` answered `released` for a hold that left as `leave`
/// (`None`: no answer, the worker is aborting), and after how long.
///
/// `NotOurs` goes to the front: the lease may have been taken by another worker, but it may
/// also be this hold's own release whose reply was lost (Redis stopped after the script ran),
/// retried: then the plan is queued with its tasks left and on no ready list. A duplicate entry
/// is harmless (a holder's claim of it finds the lease busy and drops it), a missing one leaves
/// the plan waiting for ever.
pub(crate) fn requeue_after_release(
    released: Option<ReleaseReply>,
    leave: Leave,
) -> (Requeue, Duration) {
    match (released, leave) {
        (Some(ReleaseReply::TasksLeft), Leave::Later(d)) => (Requeue::Later, d),
        (Some(ReleaseReply::TasksLeft), Leave::Release(to)) => (to, Duration::ZERO),
        (Some(ReleaseReply::NotOurs), _) => (Requeue::Front, Duration::ZERO),
        _ => (Requeue::Drop, Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_that_finds_the_lease_gone_hands_the_plan_back_to_the_front() {
        let later = Leave::Later(Duration::from_secs(3));
        let back = Leave::Release(Requeue::Back);
        assert_eq!(
            requeue_after_release(Some(ReleaseReply::TasksLeft), later),
            (Requeue::Later, Duration::from_secs(3))
        );
        assert_eq!(
            requeue_after_release(Some(ReleaseReply::TasksLeft), back),
            (Requeue::Back, Duration::ZERO)
        );
        assert_eq!(
            requeue_after_release(Some(ReleaseReply::Idle), back),
            (Requeue::Drop, Duration::ZERO)
        );
        for leave in [back, later] {
            assert_eq!(
                requeue_after_release(Some(ReleaseReply::NotOurs), leave),
                (Requeue::Front, Duration::ZERO)
            );
        }
        assert_eq!(
            requeue_after_release(None, back),
            (Requeue::Drop, Duration::ZERO)
        );
    }

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
