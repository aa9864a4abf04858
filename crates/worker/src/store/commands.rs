//! The plain commands of the worker (those no script needs to make atomic): blocking pops,
//! the pool pause, reading transcripts and results, dead letters, counters, the plan index sweep.

use std::time::Duration;

use baton_connect::Conn;
use baton_core::records::{DeadLetter, TaskResult};
use baton_core::scripts::hold::{Claim, ClaimReply};
use baton_core::scripts::pool::PruneIndex;
use baton_core::scripts::ScriptCall;
use baton_core::{Counter, Event, PlanId, PlanTotals, WorkerId};
use redis::AsyncCommands;

use super::{Store, StoreError};

/// Plan index entries one prune step looks at (`ZSCAN`'s `COUNT`, a hint).
const PRUNE_BATCH: u64 = 200;

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
}

/// A plan's committed transcript: the base pack and the chunks committed after it.
#[derive(Debug)]
pub(crate) struct StoredTranscript {
    pub(crate) base: Vec<u8>,
    pub(crate) chunks: Vec<Vec<u8>>,
}

/// What a blocking pop brought.
#[derive(Debug, Default)]
pub(crate) struct Popped {
    /// The entry moved, or `None` after the block ran out.
    pub(crate) entry: Option<Vec<u8>>,
    /// How long the pool stays paused (`Duration::MAX`: until a user resumes it), as a claim
    /// found it.
    pub(crate) paused: Option<Duration>,
    /// The entry came from the handback list (the reaper put it there, tagged or not), not
    /// from a client.
    pub(crate) handed_back: bool,
}

impl Store {
    /// Claims: waits (up to `block`) for the wake token, which stands while plans are ready,
    /// and runs `claim.lua` right after it in the same pipeline (one round trip): the plan
    /// taken by priority, or the pool's pause. The script is loaded on the first claim, and
    /// again after a Redis restart.
    pub(crate) async fn blocking_claim(
        &self,
        conn: &mut Conn,
        worker: &WorkerId,
        block: Duration,
    ) -> Result<Popped, StoreError> {
        let claim = Claim { worker }.invocation(&self.env);
        let piped: Result<(redis::Value, ClaimReply), _> = redis::pipe()
            .cmd("BLPOP")
            .arg(self.env.keys.wake())
            .arg(block.as_secs_f64())
            .invoke_script(&claim)
            .query_async(conn)
            .await;
        let reply = match piped {
            Ok((_, reply)) => reply,
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                claim.invoke_async(conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(match reply {
            ClaimReply::Claimed(id) => Popped {
                handed_back: false,
                entry: Some(id),
                paused: None,
            },
            // Paused until a user resumes it: look again after the longest nap.
            ClaimReply::Paused(left) => Popped {
                handed_back: false,
                entry: None,
                paused: Some(left.unwrap_or(Duration::MAX)),
            },
            ClaimReply::Empty => Popped::default(),
        })
    }

    /// A plan's state (`None`: no such plan); an unknown state reads as `None` too.
    pub(crate) async fn plan_state(
        &self,
        plan: &PlanId,
    ) -> Result<Option<baton_core::PlanState>, StoreError> {
        let s: Option<String> = self
            .conn()
            .hget(
                self.env.keys.plan(plan),
                baton_core::PlanField::State.as_str(),
            )
            .await?;
        Ok(s.and_then(|s| s.parse().ok()))
    }

    /// A plan's options (`None`: none, or no such plan).
    pub(crate) async fn plan_options(
        &self,
        plan: &PlanId,
    ) -> Result<Option<baton_core::PlanOptions>, StoreError> {
        let s: Option<String> = self
            .conn()
            .hget(
                self.env.keys.plan(plan),
                baton_core::PlanField::Options.as_str(),
            )
            .await?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Forgets the plans a plan waits for, once all of them completed.
    pub(crate) async fn clear_dependencies(&self, plan: &PlanId) -> Result<(), StoreError> {
        let _: i64 = self
            .conn()
            .hdel(
                self.env.keys.plan(plan),
                baton_core::PlanField::After.as_str(),
            )
            .await?;
        Ok(())
    }

    /// Takes a document: one handed back by the reaper first (`LMOVE handback
    /// ingesting:<worker>`), else a submitted one (`BLMOVE submit ingesting:<worker>`).
    pub(crate) async fn blocking_take_submission(
        &self,
        conn: &mut Conn,
        worker: &WorkerId,
        block: Duration,
    ) -> Result<Popped, StoreError> {
        let k = &self.env.keys;
        let handed: Option<Vec<u8>> = redis::cmd("LMOVE")
            .arg(k.handback())
            .arg(k.ingesting(worker))
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(conn)
            .await?;
        if handed.is_some() {
            return Ok(Popped {
                entry: handed,
                paused: None,
                handed_back: true,
            });
        }
        let entry: Option<Vec<u8>> = redis::cmd("BLMOVE")
            .arg(k.submit())
            .arg(k.ingesting(worker))
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64())
            .query_async(conn)
            .await?;
        Ok(Popped {
            entry,
            paused: None,
            handed_back: false,
        })
    }

    /// Replaces the newest entry of a worker's ingesting list (the one just taken) by its
    /// tagged form.
    pub(crate) async fn tag_ingesting(
        &self,
        worker: &WorkerId,
        tagged: &[u8],
    ) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .lset(self.env.keys.ingesting(worker), 0, tagged)
            .await?;
        Ok(())
    }

    /// Stores a rejected document on the dead-letter list and drops it from the ingesting list,
    /// in one transaction (pool slot), then publishes the rejection.
    pub(crate) async fn reject(
        &self,
        worker: &WorkerId,
        entry: &[u8],
        letter: &DeadLetter,
        event: &Event,
    ) -> Result<(), StoreError> {
        let k = &self.env.keys;
        let letter = serde_json::to_string(letter).expect("dead letters serialize");
        let mut conn = self.conn();
        let _: () = redis::pipe()
            .atomic()
            .lpush(k.dead(), letter)
            .ignore()
            .lrem(k.ingesting(worker), 1, entry)
            .ignore()
            .hincr(k.stats(), Counter::SubmissionsRejected.as_str(), 1)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let _: i64 = conn.publish(k.channel(), event.to_json()).await?;
        Ok(())
    }

    /// Appends a dead letter.
    pub(crate) async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let json = serde_json::to_string(letter).expect("dead letters serialize");
        let _: () = self.conn().lpush(self.env.keys.dead(), json).await?;
        Ok(())
    }

    /// Adds to the plan's own `stat:` counters now (for what happens outside the scripts that
    /// keep counts, e.g. a retry or a pause); the pool's reach them by transfer.
    pub(crate) async fn count(
        &self,
        plan: &PlanId,
        counters: &[(Counter, i64)],
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for (c, n) in counters {
            pipe.hincr(self.env.keys.plan(plan), c.plan_field(), *n)
                .ignore();
        }
        let _: () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    /// The plan's totals of the counters that reach the pool by transfer.
    pub(crate) async fn plan_totals(&self, plan: &PlanId) -> Result<PlanTotals, StoreError> {
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.env.keys.plan(plan))
            .arg(PlanTotals::fields())
            .query_async(&mut self.conn())
            .await?;
        Ok(PlanTotals::from_values(&values))
    }

    /// The committed transcript of a plan (base pack and chunks), if any.
    pub(crate) async fn transcript(
        &self,
        plan: &PlanId,
    ) -> Result<Option<StoredTranscript>, StoreError> {
        let k = &self.env.keys;
        // One snapshot (a transaction in the plan's slot): a commit between the two reads
        // would pair an old base with a new chunk.
        let (base, chunks): (Option<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
            .atomic()
            .get(k.transcript(plan))
            .lrange(k.transcript_chunks(plan), 0, -1)
            .query_async(&mut self.conn())
            .await?;
        Ok(base.map(|base| StoredTranscript { base, chunks }))
    }

    /// A plan's results so far, oldest first (a result that does not decode is skipped).
    pub(crate) async fn results(&self, plan: &PlanId) -> Result<Vec<TaskResult>, StoreError> {
        let raw: Vec<String> = self
            .conn()
            .lrange(self.env.keys.results(plan), 0, -1)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// Pauses claiming pool-wide for `for_ms`. `true` when this call started the pause (an
    /// existing pause is left as it is).
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
        let (next, flat): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg(k.plans())
            .arg(cursor)
            .arg("COUNT")
            .arg(PRUNE_BATCH)
            .query_async(&mut conn)
            .await?;
        let entries: Vec<(String, String)> = flat
            .chunks_exact(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        if entries.is_empty() {
            return Ok((next, 0));
        }
        // An entry that is not a plan id was not written by baton: it is dropped too. One
        // EXISTS per plan, sent together (each plan is in a slot of its own on a Cluster).
        let checks = entries.iter().map(|(member, _)| {
            let mut conn = conn.clone();
            let plan = member.parse::<PlanId>().ok();
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
        Ok(QueueDepths {
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
