//! Entering a hold: the lease taken (offering the plan a root span when it has none, see
//! `traces`), then the hold run inside its span, a child of the plan's root. The span is
//! entered only once the lease is taken and the root read: its parent is fixed when it starts.

use std::time::SystemTime;

use baton_core::scripts::hold::LockValue;
use baton_core::PlanId;
use tracing::{info_span, Instrument};

use super::{acquire, held};
use crate::pool::Pool;
use crate::traces;

/// Holds a claimed plan: takes its lease, runs its tasks, and hands it back.
pub(crate) async fn run(pool: &Pool, plan: PlanId, claimed_at: SystemTime) {
    let span = info_span!("hold", plan = %plan);
    let value = LockValue::new(&pool.id);
    let root = traces::Root::candidate();
    let Some(head) = acquire(pool, &plan, &value, root.as_ref()).await else {
        return;
    };
    traces::join_plan(&span, &plan, head.plan.trace.as_deref(), root.as_ref());
    held(pool, plan, claimed_at, head, value)
        .instrument(span)
        .await;
}
