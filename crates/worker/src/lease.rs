//! A hold's lease on its plan: the token-fenced lock `p:{P}:lock`, renewed every third of the
//! lease while the hold lives, and the two signals a hold reads from it: the lease was lost
//! (another worker may hold the plan; write nothing more), or the running task must stop
//! (lost, shutdown, or the plan was cancelled). The hold keeps it; an attempt reads its signals
//! and proves it before a push. Times are tokio's, so a test under a paused clock drives it.

use std::convert::Infallible;
use std::time::Duration;

use tokio::time::Instant;

use baton_core::scripts::hold::{LockValue, Renew, Renewal};
use baton_core::PlanId;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::pool::Pool;

/// Why a task stopped without an outcome of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    /// The lease is gone: another worker may hold the plan.
    LeaseLost,
    /// Shutdown, or the plan was cancelled: the lease is still ours to give back.
    Stopped,
}

/// The lease of one hold. Clones share the signals (the keeper holds one, the hold another).
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) value: LockValue,
    /// Cancelled when the lease is lost.
    lost: CancellationToken,
    /// Cancelled to stop the running task: the lease is lost, the worker stops running tasks
    /// (a child of its abort token), or the plan was cancelled.
    stop: CancellationToken,
}

impl Lease {
    /// The lease taken with `value`; `abort` stops its tasks too.
    pub(crate) fn new(value: LockValue, abort: &CancellationToken) -> Self {
        Self {
            value,
            lost: CancellationToken::new(),
            stop: abort.child_token(),
        }
    }

    /// What stops the running task.
    pub(crate) fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// True once the lease is lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Records that the lease is gone, found by a check of the hold's own (the keeper finds
    /// out at its next renewal; until then everything already knows).
    pub(crate) fn mark_lost(&self) {
        self.lost.cancel();
        self.stop.cancel();
    }

    /// Why the task was stopped (asked after `stop` fired, or an operation gave up).
    pub(crate) fn interruption(&self) -> Interruption {
        if self.is_lost() {
            Interruption::LeaseLost
        } else {
            Interruption::Stopped
        }
    }

    /// Waits `delay`, unless the task is stopped first.
    pub(crate) async fn sleep(&self, delay: Duration) -> Result<(), Interruption> {
        tokio::select! {
            _ = self.stop.cancelled() => Err(self.interruption()),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Renews the lease every third of it. When it is lost (taken, expired, or not renewed
    /// for a whole lease while Redis is away), fires `lost` and `stop`, then waits forever: the
    /// hold decides when to leave. A cancelled plan (or one paused with `--now`) fires only `stop`.
    ///
    /// The lease is counted from when the last successful renewal was *sent* (Redis started
    /// its expiry later than that), and a renewal that hangs is abandoned at that deadline: a
    /// worker cut off from Redis stops its task no later than its lock expires in Redis.
    pub(crate) async fn keep(self, pool: &Pool, plan: PlanId) -> Infallible {
        let lease = pool.cfg.lease;
        let every = lease / 3;
        let mut expires = Instant::now() + lease;
        let renew = Renew {
            plan: &plan,
            lock: &self.value,
            lease,
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(expires) => break,
                () = tokio::time::sleep(every) => {}
            }
            let sent = Instant::now();
            let reply = tokio::select! {
                () = tokio::time::sleep_until(expires) => break,
                reply = pool.store.call(&renew) => reply,
            };
            match reply {
                Ok(Renewal::Renewed) => expires = sent + lease,
                Ok(Renewal::StopTask) => {
                    // Still ours: stop the running task; the plan is not requeued (its state
                    // is `cancelled` or `paused`), and the lease is released as usual.
                    if !self.stop.is_cancelled() {
                        info!("plan cancelled or paused now; stopping its task");
                    }
                    self.stop.cancel();
                    expires = sent + lease;
                }
                Ok(Renewal::Lost) => break,
                Err(e) => warn!(error = %e, "lease renewal failed"),
            }
        }
        self.lost.cancel();
        self.stop.cancel();
        std::future::pending().await
    }
}
