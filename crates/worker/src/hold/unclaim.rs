//! Taking a plan off this worker's in-flight list without holding it (a claim that is not
//! run, or one whose reply was lost), requeued as asked.

use std::time::Duration;

use baton_core::scripts::hold::Unclaim;
use baton_core::{PlanId, PlanTotals, Priority, Requeue};

use crate::pool::Pool;
use crate::reconnect::redis_retry;

/// Takes `plan` off this worker's in-flight list, requeued as asked (on the normal list), with
/// pool counts.
pub(crate) async fn unclaim(pool: &Pool, plan: &PlanId, requeue: Requeue, totals: &PlanTotals) {
    let call = unclaim_call(pool, plan, requeue, totals);
    let _ = redis_retry("unclaim", &pool.shutdown.abort, || pool.store.call(&call)).await;
}

/// [`unclaim`] tried once, for a caller with a loop of its own (the heartbeat): an error is
/// its to report, and the next turn tries again.
pub(crate) async fn unclaim_once(
    pool: &Pool,
    plan: &PlanId,
    requeue: Requeue,
) -> Result<(), crate::store::StoreError> {
    let none = PlanTotals::NONE;
    let call = unclaim_call(pool, plan, requeue, &none);
    pool.store.call(&call).await.map(|_| ())
}

fn unclaim_call<'a>(
    pool: &'a Pool,
    plan: &'a PlanId,
    requeue: Requeue,
    totals: &'a PlanTotals,
) -> Unclaim<'a> {
    Unclaim {
        worker: &pool.id,
        plan,
        requeue,
        priority: Priority::Normal,
        not_before_ms: 0,
        delay: Duration::ZERO,
        totals,
    }
}
