//! Liveness: this worker's heartbeat, the reaper that hands the plans of silent workers back to
//! the pool (their leases are freed first, so the next claimer is not refused), and the sweep
//! that keeps the plan index to plans that have not expired.

use std::sync::Arc;

use baton_core::scripts::pool::{Count, HandedBack, ReapLock, ReapWorker, Recoveries};
use baton_core::{Counter, Counts, WorkerId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::pool::Pool;
use crate::store::StoreError;

/// Heartbeats and reaps every third of the lease until `stop` (cancelled once every slot has
/// finished, so a draining worker is never mistaken for a dead one).
pub(crate) async fn run(pool: Arc<Pool>, stop: CancellationToken) {
    let every = pool.cfg.lease / 3;
    let mut down = false;
    let mut index_cursor = 0;
    loop {
        let beat = match pool.store.heartbeat(&pool.id).await {
            Ok(()) => match reap_silent(&pool).await {
                Ok(()) => prune_index_step(&pool, &mut index_cursor).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match beat {
            Ok(()) if down => {
                info!("heartbeat: redis is back");
                down = false;
            }
            Ok(()) => {}
            // Logged once per outage; the loop keeps its pace, so no busy loop.
            Err(e) if !down => {
                warn!(error = %e, "heartbeat failed; retrying every {every:?} until redis is back");
                down = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One step of the sweep over the plan index (a few hundred entries a beat, each worker on its
/// own cursor): plans past their retention leave it, so it does not grow for ever.
async fn prune_index_step(pool: &Pool, cursor: &mut u64) -> Result<(), StoreError> {
    let (next, removed) = pool.store.prune_plan_index(*cursor).await?;
    if removed > 0 {
        debug!(removed, "expired plans dropped from the plan index");
    }
    *cursor = next;
    Ok(())
}

async fn reap_silent(pool: &Pool) -> Result<(), StoreError> {
    let dead_after = u64::try_from(pool.cfg.dead_after.as_millis()).unwrap_or(u64::MAX);
    let cutoff = baton_core::time::now_millis().saturating_sub(dead_after);
    for dead in pool.store.silent_workers(cutoff).await? {
        if dead != pool.id {
            reap(pool, &dead, cutoff).await?;
        }
    }
    Ok(())
}

/// Hands back everything `worker` held: frees its leases (counting a recovery on each task it
/// was running), then moves its claims and half-ingested documents back. Also used for this
/// worker's own lists at shutdown (`cutoff` = `u64::MAX`).
pub(crate) async fn reap(pool: &Pool, worker: &WorkerId, cutoff: u64) -> Result<(), StoreError> {
    let other = *worker != pool.id;
    for plan in pool.store.inflight(worker).await? {
        let Recoveries(recoveries) = pool
            .store
            .call(&ReapLock {
                plan: &plan,
                dead: worker,
            })
            .await?;
        if let (Some(recoveries), true) = (recoveries, other) {
            info!(plan = %plan, dead = %worker, recoveries, "freed a dead worker's lease");
        }
    }
    let HandedBack(handed) = pool
        .store
        .call(&ReapWorker {
            worker,
            cutoff_ms: cutoff,
        })
        .await?;
    if let (Some(n), true) = (handed, other) {
        warn!(dead = %worker, plans = n, "handed a silent worker's plans back to the pool");
        let mut counts = Counts::default();
        counts.add(Counter::WorkersReaped, 1).add(
            Counter::PlansRecovered,
            i64::try_from(n).unwrap_or(i64::MAX),
        );
        let _ = pool.store.call(&Count { counts: &counts }).await;
    }
    Ok(())
}
