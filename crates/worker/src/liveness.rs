//! Liveness: this worker's heartbeat, the reaper that hands the plans of silent workers back to
//! the pool (their leases are freed first, so the next claimer is not refused), the hand-back of
//! this worker's own claims that no slot holds (a claim whose reply was lost), and the sweep
//! that keeps the plan index to plans that have not expired.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use baton_core::scripts::pool::{
    Beat, Count, HandedBack, ReapLock, ReapWorker, Recoveries, Silent,
};
use baton_core::{Counter, Counts, PlanId, Requeue, WorkerId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::pool::Pool;
use crate::store::StoreError;

/// Heartbeats every [`Config::heartbeat`](crate::Config) until `stop` (cancelled once every
/// slot has finished, so a draining worker is never mistaken for a dead one), reaping the
/// workers the beat finds silent. Heartbeats carry the Redis server's clock, so workers' clocks
/// may differ. After an outage of its own connection, a worker waits `--dead-after` before it
/// reaps: the others were cut off too and need a beat to show they are alive.
/// What the worker says of itself in `worker_info` (the dashboard shows it).
fn self_description(pool: &Pool) -> String {
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": crate::engine::mode_of(&pool.cfg),
        "sandbox": if pool.sandbox.is_some() { "boxed" } else { "unconfined" },
    })
    .to_string()
}

pub(crate) async fn run(pool: Arc<Pool>, stop: CancellationToken) {
    let every = pool.cfg.heartbeat();
    let dead_after_ms = u64::try_from(pool.cfg.dead_after.as_millis()).unwrap_or(u64::MAX);
    // Since when this worker has reached Redis without a break; `None` while it cannot. A
    // worker that just started had no outage of its own: it may reap at once.
    let mut connected_since: Option<Instant> = Some(
        Instant::now()
            .checked_sub(pool.cfg.dead_after)
            .unwrap_or_else(Instant::now),
    );
    let mut index_cursor = 0;
    // This worker's in-flight entries that no slot held at the last beat.
    let mut unheld = HashSet::new();
    let mut beats: u64 = 0;
    // Whether `worker_info` holds what this worker says of itself (written again after every
    // outage: a reaper may have removed it meanwhile).
    let mut announced = false;
    loop {
        let beat = pool
            .store
            .call(&Beat {
                worker: &pool.id,
                dead_after_ms,
            })
            .await;
        let outcome = match beat {
            Ok(silent) => {
                pool.user_paused
                    .store(silent.user_paused, std::sync::atomic::Ordering::Relaxed);
                let since = *connected_since.get_or_insert_with(|| {
                    info!("heartbeat: redis is back");
                    announced = false;
                    Instant::now()
                });
                if !announced {
                    announced = pool
                        .store
                        .announce(&pool.id, &self_description(&pool))
                        .await
                        .is_ok();
                }
                // Reaping needs a view of the others as long as --dead-after.
                let settled = since.elapsed() >= pool.cfg.dead_after;
                let reaped = if settled {
                    reap_silent(&pool, &silent).await
                } else {
                    Ok(())
                };
                let reaped = match reaped {
                    Ok(()) => hand_back_unheld(&pool, &mut unheld).await,
                    other => other,
                };
                match reaped {
                    Ok(()) if beats.is_multiple_of(PRUNE_EVERY_BEATS) => {
                        prune_index_step(&pool, &mut index_cursor).await
                    }
                    other => other,
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            // Logged once per outage; the loop keeps its pace, so no busy loop.
            if connected_since.take().is_some() {
                warn!(error = %e, "heartbeat failed; retrying every {every:?} until redis is back");
            }
        }
        beats += 1;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Hands back (to the front of the line) each entry of this worker's in-flight list that no
/// slot holds, once it was so at two beats in a row: a claim is marked held as soon as its
/// reply arrives, so an entry still unheld a beat later is a claim whose reply was lost, and
/// its plan would otherwise wait for ever (no reaper hands back a live worker's claims). A plan
/// a slot let go of within the last two beats counts as held: its hand-back and a claim of it
/// again may be under way (see `Claimed::held_within`).
async fn hand_back_unheld(pool: &Pool, unheld: &mut HashSet<PlanId>) -> Result<(), StoreError> {
    let recent = pool.cfg.heartbeat() * 2;
    let now: HashSet<PlanId> = pool
        .store
        .inflight(&pool.id)
        .await?
        .into_iter()
        .filter(|p| !pool.claimed.held_within(p, recent))
        .collect();
    for plan in now.intersection(unheld) {
        warn!(plan = %plan, "handing back a claim no slot holds (its reply was lost)");
        // Once: retrying here would hold up the heartbeat through an outage.
        crate::hold::unclaim_once(pool, plan, Requeue::Front).await?;
    }
    *unheld = now.difference(unheld).cloned().collect();
    Ok(())
}

/// Beats between two steps of the plan index sweep.
const PRUNE_EVERY_BEATS: u64 = 10;

/// One step of the sweep over the plan index (a few hundred entries, each worker on its own
/// cursor): plans past their retention leave it, so it does not grow for ever.
async fn prune_index_step(pool: &Pool, cursor: &mut u64) -> Result<(), StoreError> {
    let (next, removed) = pool.store.prune_plan_index(*cursor).await?;
    if removed > 0 {
        debug!(removed, "expired plans dropped from the plan index");
    }
    *cursor = next;
    Ok(())
}

async fn reap_silent(pool: &Pool, silent: &Silent) -> Result<(), StoreError> {
    for dead in &silent.workers {
        if *dead != pool.id {
            reap(pool, dead, silent.cutoff_ms).await?;
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
        // What the dead holder counted but had not brought into the pool's counters yet.
        crate::hold::transfer(pool, &plan).await?;
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
