//! A worker slot: claim a plan (`BLMOVE ready → inflight:<worker>`), hold it until it is handed
//! back, claim the next; until the worker drains. While the pool is paused for a rate limit,
//! the slot claims nothing, and a plan claimed just as the pause began goes back unrun.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::{PlanId, PlanTotals, Requeue};
use tracing::{debug, warn};

use crate::hold;
use crate::pool::Pool;
use crate::reconnect::{redis_retry, BlockingPop, PopFrom};

/// How long one claim blocks before the slot looks at the pause and the drain again.
const CLAIM_BLOCK: Duration = Duration::from_secs(2);
/// How often a slot reads the pool pause before claiming.
const PAUSE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Longest a slot sleeps on a pause before it looks again.
const PAUSE_NAP: Duration = Duration::from_secs(2);

/// The slot loop: claim plans until drained.
pub(crate) async fn run_slot(pool: Arc<Pool>, slot: usize) {
    let drain = &pool.shutdown.drain;
    let mut claims = BlockingPop::new(&pool.store, &pool.id, PopFrom::Ready, CLAIM_BLOCK);
    let mut last_pause_check: Option<Instant> = None;
    loop {
        if !wait_while_paused(&pool, &mut last_pause_check).await {
            break;
        }
        let Some(popped) = claims.next(drain).await else {
            break;
        };
        let Some(raw) = popped.entry else { continue };
        let text = String::from_utf8_lossy(&raw).into_owned();
        let plan = match text.parse::<PlanId>() {
            Ok(plan) => plan,
            Err(e) => {
                warn!(entry = %text, error = %e, "dropping a ready entry that is no plan id");
                let _ = redis_retry("drop bad ready entry", &pool.shutdown.abort, || {
                    pool.store.discard_claim(&pool.id, &raw)
                })
                .await;
                continue;
            }
        };
        if let Some(paused) = popped.paused {
            // The pool paused while this slot waited: give the plan back, unrun.
            hold::unclaim(&pool, &plan, Requeue::Front, &PlanTotals::NONE).await;
            debug!(slot, left = ?paused, "pool paused; handed a claim back");
            tokio::select! {
                _ = drain.cancelled() => break,
                _ = tokio::time::sleep(paused.min(PAUSE_NAP)) => {}
            }
            continue;
        }
        hold::run(&pool, plan).await;
    }
    debug!(slot, "slot stopped");
}

/// Waits while the pool is paused (read at most once a second per slot). `false` when the
/// worker began draining meanwhile.
async fn wait_while_paused(pool: &Pool, last_check: &mut Option<Instant>) -> bool {
    if last_check.is_some_and(|t| t.elapsed() < PAUSE_CHECK_EVERY) {
        return true;
    }
    *last_check = Some(Instant::now());
    let Ok(Some(left)) = pool.store.paused_for().await else {
        return true;
    };
    debug!(left = ?left, "pool paused; not claiming");
    tokio::select! {
        _ = pool.shutdown.drain.cancelled() => false,
        _ = tokio::time::sleep(left.min(PAUSE_NAP)) => true,
    }
}
