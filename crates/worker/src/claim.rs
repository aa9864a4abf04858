//! A worker slot: claim a plan (`claim.lua`, by priority, after the wake token), hold it until
//! it is handed back, claim the next; until the worker drains. While the pool is paused (a rate
//! limit, or `baton pause --all`), the claim takes nothing and the slot naps.

use std::sync::Arc;
use std::time::Duration;

use baton_core::PlanId;
use tracing::{debug, warn};

use crate::hold;
use crate::pool::Pool;
use crate::reconnect::{redis_retry, BlockingPop, PopFrom};

/// How long one claim waits for work before the slot looks at the drain again (and claims
/// once anyway: a wake token lost with a dead connection costs at most this).
const CLAIM_BLOCK: Duration = Duration::from_secs(2);
/// Longest a slot sleeps on a pause before it looks again.
const PAUSE_NAP: Duration = Duration::from_secs(2);

/// The slot loop: claim plans until drained.
pub(crate) async fn run_slot(pool: Arc<Pool>, slot: usize) {
    let drain = &pool.shutdown.drain;
    let mut claims = BlockingPop::new(&pool.store, &pool.id, PopFrom::Ready, CLAIM_BLOCK);
    loop {
        let Some(popped) = claims.next(drain).await else {
            break;
        };
        if let Some(paused) = popped.paused {
            debug!(slot, left = ?paused, "pool paused; not claiming");
            tokio::select! {
                _ = drain.cancelled() => break,
                _ = tokio::time::sleep(paused.min(PAUSE_NAP)) => {}
            }
            continue;
        }
        let Some(raw) = popped.entry else { continue };
        let claimed_at = std::time::SystemTime::now();
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
        let _holding = pool.claimed.hold(&plan);
        hold::run(&pool, plan, claimed_at).await;
    }
    debug!(slot, "slot stopped");
}
