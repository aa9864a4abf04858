//! The checkpoint after a successful run (a plan with a repository): commit the task's files,
//! and push them only while the lease is provably held.

use baton_core::scripts::hold::{Renew, Renewal};

use super::{Context, Failed};
use crate::engine::Engine;
use crate::git::{Checkout, Checkpoint, CommitInfo, Committed, GitError};
use crate::lease::Interruption;
use crate::reconnect::redis_retry;

/// Commits the task's files and pushes them. Right before each push the worker proves it still
/// holds the plan (a renewal that succeeds shows the lease was held without a break, so no
/// other holder can have recorded a commit since): a stale holder pushes nothing. The push
/// expects the branch at the recorded checkpoint; when it is not there (an unrecorded commit of
/// this plan, or no branch yet), the branch is read, checked, and the push made again with that
/// expectation, after another lease check.
pub(super) async fn commit_and_push(
    ctx: &Context<'_>,
    engine: &dyn Engine,
    co: &Checkout,
    info: &CommitInfo<'_>,
) -> Result<Checkpoint, Failed> {
    let git = &ctx.pool.git;
    // Nothing in a warm box may change the workspace while git reads it.
    let frozen = engine.freeze().await;
    let committed = git.commit(co, info).await;
    drop(frozen);
    let checkpoint = match committed? {
        Committed::Unchanged(checkpoint) => return Ok(checkpoint),
        Committed::ToPush(checkpoint) => checkpoint,
    };
    still_holding(ctx).await?;
    match git
        .push_checkpoint(co, &checkpoint, co.expected_tip())
        .await
    {
        Ok(()) => return Ok(checkpoint),
        Err(GitError::PushRefused { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let tip = git.replaceable_tip(co).await?;
    still_holding(ctx).await?;
    git.push_checkpoint(co, &checkpoint, tip.as_deref()).await?;
    Ok(checkpoint)
}

/// Renews the lease now: `Ok` when this worker still holds the plan.
async fn still_holding(ctx: &Context<'_>) -> Result<(), Failed> {
    let renew = Renew {
        plan: ctx.plan,
        lock: &ctx.lease.value,
        lease: ctx.pool.cfg.lease,
    };
    let renewed = redis_retry("check the lease before a push", ctx.lease.stop(), || {
        ctx.pool.store.call(&renew)
    })
    .await;
    match renewed {
        None => Err(Failed::Interrupted(ctx.lease.interruption())),
        Some(Renewal::Lost) => {
            ctx.lease.mark_lost();
            Err(Failed::Interrupted(Interruption::LeaseLost))
        }
        Some(Renewal::Renewed | Renewal::StopTask) => Ok(()),
    }
}
