//! Liveness: this worker's heartbeat, and the reaper that hands the plans of silent workers
//! back to the pool (their leases are freed first, so the next claimer is not refused).

use std::sync::Arc;

use baton_core::{PlanId, WorkerId};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::runner::Worker;

impl Worker {
    /// Heartbeats and reaps every third of the lease until `stop` (cancelled once every slot
    /// has finished, so a draining worker is never mistaken for a dead one).
    pub(crate) async fn run_liveness(self: Arc<Self>, stop: CancellationToken) {
        let every = self.cfg.lease / 3;
        let mut down = false;
        loop {
            let beat = match self.store.heartbeat(&self.id).await {
                Ok(()) => self.reap_silent().await,
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

    async fn reap_silent(&self) -> Result<(), crate::store::StoreError> {
        let cutoff =
            baton_core::time::now_millis().saturating_sub(self.cfg.dead_after.as_millis() as u64);
        for w in self.store.silent_workers(cutoff).await? {
            let Ok(dead) = w.parse::<WorkerId>() else {
                continue;
            };
            if dead == self.id {
                continue;
            }
            self.reap(&dead, cutoff).await?;
        }
        Ok(())
    }

    /// Hands back everything `worker` held. Also used for this worker's own list at shutdown.
    pub(crate) async fn reap(
        &self,
        worker: &WorkerId,
        cutoff: u64,
    ) -> Result<(), crate::store::StoreError> {
        for p in self.store.inflight(worker).await? {
            let Ok(plan) = p.parse::<PlanId>() else {
                continue;
            };
            let recoveries = self.store.reap_lock(&plan, worker).await?;
            if recoveries >= 0 && *worker != self.id {
                info!(plan = %plan, dead = %worker, recoveries, "freed a dead worker's lease");
            }
        }
        let n = self.store.reap_worker(worker, cutoff).await?;
        if n >= 0 && *worker != self.id {
            warn!(dead = %worker, plans = n, "handed a silent worker's plans back to the pool");
            let _ = self
                .store
                .count(None, &[("workers_reaped", 1), ("plans_recovered", n)])
                .await;
        }
        Ok(())
    }
}
