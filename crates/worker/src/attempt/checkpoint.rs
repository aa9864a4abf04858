//! The checkpoint after a successful run (a plan with a repository): commit the task's files,
//! and push them only while the lease is provably held.

use baton_core::scripts::hold::{Renew, Renewal};

use super::Failed;
use crate::git::{Checkout, Checkpoint, CommitInfo, Committed, GitError};
use crate::hold::lease::Interruption;
use crate::hold::Hold;
use crate::reconnect::redis_retry;

impl Hold<'_> {
    /// Commits the task's files and pushes them. Right before each push the worker proves it
    /// still holds the plan (a renewal that succeeds shows the lease was held without a break,
    /// so no other holder can have recorded a commit since): a stale holder pushes nothing. The
    /// push expects the branch at the recorded checkpoint; when it is not there (an unrecorded
    /// commit of this plan, or no branch yet), the branch is read, checked, and the push made
    /// again with that expectation, after another lease check.
    pub(super) async fn checkpoint(
        &self,
        co: &Checkout,
        info: &CommitInfo<'_>,
    ) -> Result<Checkpoint, Failed> {
        let git = &self.pool.git;
        // Nothing in a warm box may change the workspace while git reads it.
        let frozen = self.engine.freeze().await;
        let committed = git.commit(co, info).await;
        drop(frozen);
        let checkpoint = match committed? {
            Committed::Unchanged(checkpoint) => return Ok(checkpoint),
            Committed::ToPush(checkpoint) => checkpoint,
        };
        self.still_holding().await?;
        match git
            .push_checkpoint(co, &checkpoint, co.expected_tip())
            .await
        {
            Ok(()) => return Ok(checkpoint),
            Err(GitError::PushRefused { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let tip = git.replaceable_tip(co).await?;
        self.still_holding().await?;
        git.push_checkpoint(co, &checkpoint, tip.as_deref()).await?;
        Ok(checkpoint)
    }

    /// Renews the lease now: `Ok` when this worker still holds the plan.
    async fn still_holding(&self) -> Result<(), Failed> {
        let renew = Renew {
            plan: &self.plan,
            lock: &self.lease.value,
            lease: self.pool.cfg.lease,
        };
        let renewed = redis_retry("check the lease before a push", self.lease.stop(), || {
            self.pool.store.call(&renew)
        })
        .await;
        match renewed {
            None => Err(Failed::Interrupted(self.lease.interruption())),
            Some(Renewal::Lost) => {
                self.lease.mark_lost();
                Err(Failed::Interrupted(Interruption::LeaseLost))
            }
            Some(Renewal::Renewed | Renewal::StopTask) => Ok(()),
        }
    }
}
