//! The worker's pool-wide plain commands: what it says of itself, the pool's pause, the plan
//! index sweep, its in-flight list, the queue depths the metrics show, Redis settings.

use std::time::Duration;

use baton_core::scripts::pool::PruneIndex;
use baton_core::{PlanId, WorkerId};
use redis::AsyncCommands;

use super::{Store, StoreError};

/// Plan index entries one prune step looks at (`ZSCAN`'s `COUNT`, a hint).
const PRUNE_BATCH: u64 = 200;

/// How long a plan index entry is left alone after it was scored, at most. A workspace claim
/// puts the plan in the index before `ingest.lua` writes the plan (they are in different
/// slots): a sweep in between would find no plan keys and release the claim of a plan being
/// accepted. An entry younger than the retention cannot be a plan past its retention anyway (the
/// score is its last use), so the grace is the retention, capped here: past it, an entry without
/// keys is an expired plan or a claim whose plan was never written (a crash between the scripts).
const PRUNE_GRACE_MAX_MS: u64 = 10 * 60 * 1000;

/// The entries (plan id, score in ms as read) scored at least `grace_ms` before `now_ms`.
fn past_grace<M>(entries: Vec<(M, String)>, now_ms: u64, grace_ms: u64) -> Vec<(M, String)> {
    entries
        .into_iter()
        .filter(|(_, score)| {
            // A score that does not parse, or is not finite (`inf`, as `ZSCAN` prints +inf),
            // was not written by baton: old enough.
            score
                .parse::<f64>()
                .ok()
                .filter(|at| at.is_finite())
                .is_none_or(|at| at + grace_ms as f64 <= now_ms as f64)
        })
        .collect()
}

/// The pool's lists, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueDepths {
    pub(crate) submit: u64,
    pub(crate) ready: u64,
    pub(crate) dead: u64,
    /// How long the plan next in line has waited (since its plan was last updated).
    pub(crate) oldest_ready_wait: Option<Duration>,
    /// Paused until a rate limit resets.
    pub(crate) rate_limited: bool,
    /// Paused by a user until `baton resume --all`.
    pub(crate) user_paused: bool,
    /// Plans parked on a concurrency key's limit.
    pub(crate) waiting_on_limit: u64,
}

impl Store {
    /// Records what this worker says of itself (`worker_info`), for the dashboard.
    pub(crate) async fn announce(&self, worker: &WorkerId, info: &str) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("HSET")
            .arg(self.env.keys.worker_info())
            .arg(worker.as_str())
            .arg(info)
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Pauses claiming pool-wide for `for_ms`. `true` when this call started the pause (an
    /// existing pause is left as it is).
    pub(crate) async fn pause(&self, reason: &str, for_ms: u64) -> Result<bool, StoreError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.env.keys.pause())
            .arg(reason)
            .arg("PX")
            .arg(for_ms.max(1))
            .arg("NX")
            .query_async(&mut self.conn())
            .await?;
        Ok(set.is_some())
    }

    /// Looks at about [`PRUNE_BATCH`] entries of the plan index from `cursor` (a `ZSCAN` cursor)
    /// and drops those whose plan has expired (its metadata hash is gone: past its retention).
    /// Returns the next cursor (0 once the sweep has gone round) and how many were dropped.
    pub(crate) async fn prune_plan_index(&self, cursor: u64) -> Result<(u64, u64), StoreError> {
        let k = &self.env.keys;
        let mut conn = self.conn();
        // Members as bytes: one that is not UTF-8 is no plan id, and is swept like the others.
        let (next, flat): (u64, Vec<Vec<u8>>) = redis::cmd("ZSCAN")
            .arg(k.plans())
            .arg(cursor)
            .arg("COUNT")
            .arg(PRUNE_BATCH)
            .query_async(&mut conn)
            .await?;
        let entries: Vec<(Vec<u8>, String)> = flat
            .chunks_exact(2)
            .map(|pair| {
                (
                    pair[0].clone(),
                    String::from_utf8_lossy(&pair[1]).into_owned(),
                )
            })
            .collect();
        let grace_ms = (self.env.retention_secs * 1000).min(PRUNE_GRACE_MAX_MS);
        let entries = past_grace(entries, baton_core::time::now_millis(), grace_ms);
        if entries.is_empty() {
            return Ok((next, 0));
        }
        // An entry that is not a plan id was not written by baton: it is dropped too. One
        // EXISTS per plan, sent together (each plan is in a slot of its own on a Cluster).
        let checks = entries.iter().map(|(member, _)| {
            let mut conn = conn.clone();
            let plan = std::str::from_utf8(member)
                .ok()
                .and_then(|m| m.parse::<PlanId>().ok());
            async move {
                match plan {
                    Some(plan) => conn.exists::<_, bool>(k.plan(&plan)).await,
                    None => Ok(false),
                }
            }
        });
        let live = futures_util::future::join_all(checks).await;
        let mut expired = Vec::new();
        for (entry, live) in entries.into_iter().zip(live) {
            if !live? {
                expired.push(entry);
            }
        }
        if expired.is_empty() {
            return Ok((next, 0));
        }
        let removed = self.call(&PruneIndex { expired: &expired }).await?;
        Ok((next, removed))
    }

    /// Plans in a worker's in-flight list (entries that are not plan ids are skipped).
    pub(crate) async fn inflight(&self, worker: &WorkerId) -> Result<Vec<PlanId>, StoreError> {
        let ids: Vec<String> = self
            .conn()
            .lrange(self.env.keys.inflight(worker), 0, -1)
            .await?;
        Ok(ids.iter().filter_map(|p| p.parse().ok()).collect())
    }

    /// Drops an entry of this worker's in-flight list that is not a plan id (written there by
    /// something other than baton).
    pub(crate) async fn discard_claim(
        &self,
        worker: &WorkerId,
        raw: &[u8],
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .lrem(self.env.keys.inflight(worker), 1, raw)
            .await?;
        Ok(())
    }

    /// The lengths of the pool's lists, how long the next plan in line has waited, and whether
    /// the pool is paused.
    pub(crate) async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        let k = &self.env.keys;
        let mut conn = self.conn();
        let [high, normal, low] = k.ready_lists();
        let (submit, ready_high, ready, ready_low, dead, next, pause): (
            u64,
            u64,
            u64,
            u64,
            u64,
            Option<String>,
            i64,
        ) = redis::pipe()
            .llen(k.submit())
            .llen(&high)
            .llen(&normal)
            .llen(&low)
            .llen(k.dead())
            .lindex(&normal, -1)
            .pttl(k.pause())
            .query_async(&mut conn)
            .await?;
        let ready = ready_high + ready + ready_low;
        let mut oldest_ready_wait = None;
        if let Some(plan) = next.and_then(|p| p.parse::<PlanId>().ok()) {
            let updated: Option<String> = conn
                .hget(k.plan(&plan), baton_core::PlanField::UpdatedAt.as_str())
                .await?;
            oldest_ready_wait = updated
                .and_then(|u| humantime::parse_rfc3339(&u).ok())
                .and_then(|t| std::time::SystemTime::now().duration_since(t).ok());
        }
        let keys: Vec<String> = conn.smembers(k.concurrency_keys()).await?;
        let mut waiting_on_limit = 0;
        for key in keys {
            let n: u64 = conn.llen(k.key_waiting(&key)).await?;
            waiting_on_limit += n;
        }
        Ok(QueueDepths {
            waiting_on_limit,
            submit,
            ready,
            dead,
            oldest_ready_wait,
            rate_limited: pause > 0,
            user_paused: pause == -1,
        })
    }

    /// A Redis setting (`CONFIG GET`), if the server answers.
    pub(crate) async fn config_get(&self, name: &str) -> Option<String> {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query_async(&mut self.conn())
            .await
            .ok()?;
        v.into_iter().nth(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_index_entry_is_not_swept_even_without_plan_keys() {
        let now = 100_000_000;
        let entry = |id: &str, score: String| (id.to_owned(), score);
        let kept = past_grace(
            vec![
                entry("claimed-just-now", (now - 50).to_string()),
                entry("expired-long-ago", (now - 11 * 60 * 1000).to_string()),
                entry("not-baton", "x".into()),
                entry("scored-inf", "inf".into()),
                entry("scored-minus-inf", "-inf".into()),
            ],
            now,
            PRUNE_GRACE_MAX_MS,
        );
        let names: Vec<&str> = kept.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "expired-long-ago",
                "not-baton",
                "scored-inf",
                "scored-minus-inf"
            ]
        );
    }
}
