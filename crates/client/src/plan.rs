//! A plan as a reader sees it: [`PlanView`] (its hash, pending count and session, in one
//! round trip), [`PlanDetail`] (with results, pending tasks, events and transcript, in one
//! transaction), the plan index (most recently active first), and the pool's counters.
//!
//! Reads for display are lenient: a record that no longer decodes is left out, not fatal, and
//! a hash value that is not UTF-8 (written by something other than baton) is read lossily.
//! [`Client::results`] and [`Client::events`] are strict (the test harness wants to know).

use std::collections::HashMap;

use baton_core::records::{SessionRecord, StoredTask, TaskResult};
use baton_core::{Counter, Event, PlanHash, PlanId, PlanState};
use redis::{AsyncCommands, FromRedisValue, ParsingError};
use serde::de::DeserializeOwned;

use crate::{Client, ClientError};

/// A plan as a reader sees it: its hash typed (state, tasks done, cost, tokens, holder, last
/// worker, last error, session id, repository and checkpoint, review fields, timestamps, its
/// own counters), how many tasks are pending, and its live session.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanView {
    pub id: PlanId,
    pub hash: PlanHash,
    /// Tasks in the plan's pending list.
    pub pending: u64,
    /// The live session record (absent once its TTL passed).
    pub session: Option<SessionRecord>,
    /// Seconds the session has left, when one is live.
    pub session_ttl: Option<i64>,
}

impl PlanView {
    /// The plan's state (`None` only for a hash without one).
    pub fn state(&self) -> Option<PlanState> {
        self.hash.state
    }

    /// Tasks committed.
    pub fn tasks_done(&self) -> u64 {
        self.hash.done
    }

    /// Tasks committed and pending.
    pub fn tasks_total(&self) -> u64 {
        self.hash.done + self.pending
    }

    /// The plan's own count of `counter` (0 when never counted); its cost is
    /// [`PlanHash::cost_usd`].
    pub fn counter(&self, counter: Counter) -> i64 {
        self.hash.stats.get(&counter).copied().unwrap_or(0)
    }
}

/// Which of the larger parts of a plan a [`PlanDetail`] read includes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetailParts {
    /// The stored event list.
    pub events: bool,
    /// The committed transcript (base pack and chunks).
    pub transcript: bool,
}

/// Everything a plan page or `baton status` shows.
#[derive(Debug, Clone)]
pub struct PlanDetail {
    pub view: PlanView,
    /// Committed results, in order.
    pub results: Vec<TaskResult>,
    /// Pending tasks, next first.
    pub tasks: Vec<StoredTask>,
    /// Stored events (empty unless asked for).
    pub events: Vec<Event>,
    /// The committed transcript: base pack and chunks (absent unless asked for, or none).
    pub transcript: Option<(Vec<u8>, Vec<Vec<u8>>)>,
}

/// The records that decode.
fn lenient<T: DeserializeOwned>(raw: &[Vec<u8>]) -> Vec<T> {
    raw.iter()
        .filter_map(|r| serde_json::from_slice(r).ok())
        .collect()
}

/// A hash read as bytes, its fields and values made text lossily: one value that is not UTF-8
/// shows with replacement characters instead of failing the read of the whole page.
struct LossyHash(HashMap<String, String>);

impl FromRedisValue for LossyHash {
    fn from_redis_value(v: redis::Value) -> Result<Self, ParsingError> {
        let raw: HashMap<Vec<u8>, Vec<u8>> = FromRedisValue::from_redis_value(v)?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(Self(raw.iter().map(|(k, v)| (text(k), text(v))).collect()))
    }
}

/// Every record, or the first that does not decode.
fn strict<T: DeserializeOwned>(raw: &[String], what: &'static str) -> Result<Vec<T>, ClientError> {
    raw.iter()
        .map(|r| serde_json::from_str(r).map_err(|source| ClientError::Decode { what, source }))
        .collect()
}

fn view_from(
    id: &PlanId,
    hash: &LossyHash,
    pending: u64,
    session: Option<Vec<u8>>,
    ttl: i64,
) -> Option<PlanView> {
    let hash = PlanHash::from_pairs(&hash.0);
    if hash.is_missing() {
        return None;
    }
    Some(PlanView {
        id: id.clone(),
        hash,
        pending,
        session: session.and_then(|s| serde_json::from_slice(&s).ok()),
        session_ttl: (ttl >= 0).then_some(ttl),
    })
}

type ViewReply = (LossyHash, u64, Option<Vec<u8>>, i64);

type DetailReply = (LossyHash, Vec<Vec<u8>>, Vec<Vec<u8>>, Option<Vec<u8>>, i64);

impl Client {
    fn view_pipe(&self, id: &PlanId) -> redis::Pipeline {
        let k = &self.keys;
        let mut pipe = redis::pipe();
        pipe.hgetall(k.plan(id))
            .llen(k.tasks(id))
            .get(k.session(id))
            .ttl(k.session(id));
        pipe
    }

    /// The plan, in one round trip; `None` when there is no such plan (never submitted, or
    /// past its retention).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn plan(&self, id: &PlanId) -> Result<Option<PlanView>, ClientError> {
        let (hash, pending, session, ttl): ViewReply =
            self.view_pipe(id).query_async(&mut self.conn()).await?;
        Ok(view_from(id, &hash, pending, session, ttl))
    }

    /// Several plans at once (a pipeline per plan, all sent together: each plan's keys share a
    /// slot of their own), in the order asked; `None` for a plan that is not there.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn plans(&self, ids: &[PlanId]) -> Result<Vec<Option<PlanView>>, ClientError> {
        let reads = ids.iter().map(|id| {
            let mut conn = self.conn();
            let pipe = self.view_pipe(id);
            async move { pipe.query_async::<ViewReply>(&mut conn).await }
        });
        let replies = futures_util::future::join_all(reads).await;
        ids.iter()
            .zip(replies)
            .map(|(id, r)| {
                let (hash, pending, session, ttl) = r?;
                Ok(view_from(id, &hash, pending, session, ttl))
            })
            .collect()
    }

    /// The plan with its results and pending tasks (and, as `parts` asks, its events and
    /// transcript), read in one transaction: the transcript's base and chunks are of one
    /// commit. `None` when there is no such plan.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn plan_detail(
        &self,
        id: &PlanId,
        parts: DetailParts,
    ) -> Result<Option<PlanDetail>, ClientError> {
        let k = &self.keys;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hgetall(k.plan(id))
            .lrange(k.results(id), 0, -1)
            .lrange(k.tasks(id), 0, -1)
            .get(k.session(id))
            .ttl(k.session(id));
        if parts.events {
            pipe.lrange(k.events(id), 0, -1);
        }
        if parts.transcript {
            pipe.get(k.transcript(id))
                .lrange(k.transcript_chunks(id), 0, -1);
        }
        let mut values: Vec<redis::Value> = pipe.query_async(&mut self.conn()).await?;
        let mut parts_read = values.split_off(5.min(values.len())).into_iter();
        let (hash, results, tasks, session, ttl): DetailReply =
            redis::from_redis_value(redis::Value::Array(values))?;
        let events: Vec<Vec<u8>> = match parts.events {
            true => redis::from_redis_value(parts_read.next().unwrap_or(redis::Value::Nil))?,
            false => Vec::new(),
        };
        let (transcript, chunks): (Option<Vec<u8>>, Vec<Vec<u8>>) = match parts.transcript {
            true => (
                redis::from_redis_value(parts_read.next().unwrap_or(redis::Value::Nil))?,
                redis::from_redis_value(parts_read.next().unwrap_or(redis::Value::Nil))?,
            ),
            false => (None, Vec::new()),
        };
        let tasks: Vec<StoredTask> = lenient(&tasks);
        let pending = u64::try_from(tasks.len()).unwrap_or(u64::MAX);
        let Some(view) = view_from(id, &hash, pending, session, ttl) else {
            return Ok(None);
        };
        Ok(Some(PlanDetail {
            view,
            results: lenient(&results),
            tasks,
            events: lenient(&events),
            transcript: transcript.map(|base| (base, chunks)),
        }))
    }

    /// The plan's committed results, in order (an error if one does not decode).
    ///
    /// # Errors
    /// Redis failed, or a result does not decode.
    pub async fn results(&self, id: &PlanId) -> Result<Vec<TaskResult>, ClientError> {
        let raw: Vec<String> = self.conn().lrange(self.keys.results(id), 0, -1).await?;
        strict(&raw, "a task result")
    }

    /// The plan's stored events, oldest first (an error if one does not decode).
    ///
    /// # Errors
    /// Redis failed, or an event does not decode.
    pub async fn events(&self, id: &PlanId) -> Result<Vec<Event>, ClientError> {
        let raw: Vec<String> = self.conn().lrange(self.keys.events(id), 0, -1).await?;
        strict(&raw, "an event")
    }

    /// The plan's stored events after `seq` (all with `None`), each with its `seq` and its
    /// JSON as stored (for a live page that rendered up to `seq`).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn events_after(
        &self,
        id: &PlanId,
        seq: Option<u64>,
    ) -> Result<Vec<(u64, String)>, ClientError> {
        let raw: Vec<String> = self.conn().lrange(self.keys.events(id), 0, -1).await?;
        Ok(raw
            .into_iter()
            .filter_map(|r| {
                let s = serde_json::from_str::<Event>(&r).ok()?.seq?;
                (seq.is_none_or(|after| s > after)).then_some((s, r))
            })
            .collect())
    }

    /// The plan index: the `limit` plans most recently active (submitted to or handed back),
    /// newest first.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn recent_plans(&self, limit: usize) -> Result<Vec<PlanId>, ClientError> {
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        // Read as bytes: an entry that is not UTF-8 is no plan id, and is left out like others.
        let ids: Vec<Vec<u8>> = self.conn().zrevrange(self.keys.plans(), 0, stop).await?;
        Ok(ids
            .iter()
            .filter_map(|i| std::str::from_utf8(i).ok()?.parse().ok())
            .collect())
    }

    /// The plans the index marks as active at or after `ms` (ms since the epoch).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn plans_active_since(&self, ms: u64) -> Result<Vec<String>, ClientError> {
        Ok(self
            .conn()
            .zrangebyscore(self.keys.plans(), ms, "+inf")
            .await?)
    }

    /// The pool's pause, with its reason, when the pool is paused.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn pool_pause(&self) -> Result<Option<String>, ClientError> {
        Ok(self.conn().get(self.keys.pause()).await?)
    }

    /// A pool-wide counter (`baton stats`), 0 when never counted. The cost counter is
    /// fractional; read it with [`Client::pool_counters`].
    ///
    /// # Errors
    /// Redis failed.
    pub async fn pool_counter(&self, counter: Counter) -> Result<i64, ClientError> {
        let v: Option<String> = self
            .conn()
            .hget(self.keys.stats(), counter.as_str())
            .await?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Every pool-wide counter that has a value.
    ///
    /// # Errors
    /// Redis failed.
    pub async fn pool_counters(&self) -> Result<HashMap<Counter, f64>, ClientError> {
        let raw: HashMap<String, String> = self.conn().hgetall(self.keys.stats()).await?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?)))
            .collect())
    }
}
