//! A plan that waits for others (plan option `after`): before its first task of a hold, the
//! holder reads the state of each plan it waits for. All completed: the wait is over for good
//! (the plan's `after` field is cleared) and the hold goes on. One failed, was cancelled, or is
//! gone: the plan fails with that reason (`baton retry` checks again). Otherwise it goes back
//! to the delayed set and is claimed again a little later.
//!
//! The states are read by the worker, not in a script: each plan lives in its own hash slot,
//! and a Redis Cluster script may not read several.

use std::time::Duration;

use baton_core::scripts::hold::Head;
use baton_core::{PlanId, PlanState};
use tracing::debug;

use super::stop::Halt;
use super::{next_move, Hold, Leave, NextMove, TaskEnd};
use crate::reconnect::redis_retry;

/// How long a plan whose dependencies are still running waits before it is claimed again.
const DEPENDENCY_POLL: Duration = Duration::from_secs(2);

/// Where the plans a plan waits for stand.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dependencies {
    /// All completed.
    Met,
    /// Some are still to complete.
    Waiting,
    /// One will never complete: why.
    Broken(String),
}

/// Judges the states of the plans waited for (`None`: no such plan).
fn judge(states: &[(PlanId, Option<PlanState>)]) -> Dependencies {
    let mut waiting = false;
    for (plan, state) in states {
        match state {
            Some(PlanState::Completed) => {}
            Some(s @ (PlanState::Failed | PlanState::Cancelled)) => {
                return Dependencies::Broken(format!("plan {plan}, which this plan runs after, {}", if *s == PlanState::Failed { "failed" } else { "was cancelled" }));
            }
            None => {
                return Dependencies::Broken(format!(
                    "plan {plan}, which this plan runs after, does not exist (never submitted, or past its retention)"
                ))
            }
            Some(_) => waiting = true,
        }
    }
    if waiting {
        Dependencies::Waiting
    } else {
        Dependencies::Met
    }
}

impl Hold<'_> {
    /// Checks the plans `head`'s plan waits for. `None`: go on with the hold; else how to leave.
    pub(super) async fn wait_for_dependencies(&mut self, head: &Head) -> Option<Leave> {
        let stop = self.lease.stop().clone();
        // Each plan is in a slot of its own: one read each, all sent at once.
        let reads = head.plan.after.iter().map(|dep| async {
            let state = redis_retry("read a dependency's state", &stop, || {
                self.pool.store.plan_state(dep)
            })
            .await?;
            Some((dep.clone(), state))
        });
        let states: Option<Vec<_>> = futures_util::future::join_all(reads)
            .await
            .into_iter()
            .collect();
        let Some(states) = states else {
            // A read cut short by the lease's stop: leave as an interrupted task does, rather
            // than go on to run the plan.
            let end = TaskEnd::Interrupted(self.lease.interruption());
            return match next_move(end, 0, u32::MAX, false) {
                NextMove::Leave(leave) => Some(leave),
                NextMove::Run(_) => unreachable!("an interrupted hold runs nothing"),
            };
        };
        match judge(&states) {
            Dependencies::Met => {
                let _ = redis_retry("clear dependencies", &stop, || {
                    self.pool.store.clear_dependencies(&self.plan)
                })
                .await;
                None
            }
            Dependencies::Waiting => {
                debug!("waiting for the plans it runs after");
                Some(Leave::Later(DEPENDENCY_POLL))
            }
            Dependencies::Broken(reason) => {
                let end = self.stop_plan(&head.task, Halt::Blocked(reason)).await;
                match next_move(end, 0, u32::MAX, false) {
                    NextMove::Leave(leave) => Some(leave),
                    NextMove::Run(_) => unreachable!("a stopped plan runs nothing"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlanId {
        s.parse().unwrap()
    }

    #[test]
    fn a_plan_runs_when_all_it_waits_for_completed_and_fails_when_one_cannot() {
        use PlanState::*;
        assert_eq!(
            judge(&[(p("a"), Some(Completed)), (p("b"), Some(Completed))]),
            Dependencies::Met
        );
        assert_eq!(
            judge(&[(p("a"), Some(Completed)), (p("b"), Some(Running))]),
            Dependencies::Waiting
        );
        assert_eq!(judge(&[(p("a"), Some(Paused))]), Dependencies::Waiting);
        assert_eq!(
            judge(&[(p("a"), Some(AwaitingReview))]),
            Dependencies::Waiting
        );
        let Dependencies::Broken(why) = judge(&[(p("a"), Some(Queued)), (p("b"), Some(Failed))])
        else {
            panic!()
        };
        assert!(why.contains("plan b") && why.contains("failed"), "{why}");
        let Dependencies::Broken(why) = judge(&[(p("c"), Some(Cancelled))]) else {
            panic!()
        };
        assert!(why.contains("cancelled"), "{why}");
        let Dependencies::Broken(why) = judge(&[(p("d"), None)]) else {
            panic!()
        };
        assert!(why.contains("does not exist"), "{why}");
    }
}
