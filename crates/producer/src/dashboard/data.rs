//! What the dashboard shows, read from Redis in as few round trips as a page allows (one or two
//! pipelines per page, whatever the number of plans).

use std::collections::HashMap;

use baton_connect::SharedConn;
use baton_core::records::{DeadLetter, SessionRecord, StoredTask, TaskResult};
use baton_core::{Counter, Event, Keys, PlanHash, PlanId, PlanState};
use redis::AsyncCommands;

/// Minutes of history the overview charts.
pub(super) const TIMELINE_MINUTES: u64 = 60;

/// A live worker.
#[derive(Debug)]
pub(super) struct WorkerRow {
    pub(super) id: String,
    pub(super) heartbeat_ago_ms: u64,
    /// Plans in its in-flight list.
    pub(super) holding: u64,
    /// What the worker said of itself at start-up (`worker_info`): its session mode, and
    /// whether its CLI runs are `boxed` or `unconfined` (`--sandbox off`).
    pub(super) mode: Option<String>,
    pub(super) sandbox: Option<String>,
}

/// One minute of pool counters.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Minute {
    pub(super) tasks: f64,
    pub(super) resumes_attempted: f64,
    pub(super) resumes_succeeded: f64,
}

/// The overview page.
#[derive(Debug)]
pub(super) struct Overview {
    pub(super) submit: u64,
    pub(super) ready: u64,
    /// Plans waiting for their not_before time or for the plans they run after.
    pub(super) delayed: u64,
    pub(super) dead: u64,
    pub(super) workers: Vec<WorkerRow>,
    pub(super) counters: HashMap<String, f64>,
    /// Oldest first, one per minute of the last hour.
    pub(super) minutes: Vec<Minute>,
    pub(super) pause: Option<String>,
}

impl Overview {
    pub(super) fn counter(&self, c: Counter) -> f64 {
        self.counters.get(c.as_str()).copied().unwrap_or(0.0)
    }
}

fn number_map(raw: HashMap<String, String>) -> HashMap<String, f64> {
    raw.into_iter()
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect()
}

type OverviewReply = (
    u64,
    u64,
    u64,
    Vec<(String, u64)>,
    HashMap<String, String>,
    Option<String>,
    (u64, u64),
    HashMap<String, String>,
);

pub(super) async fn overview(conn: &mut SharedConn, keys: &Keys) -> redis::RedisResult<Overview> {
    let (submit, ready, dead, workers, stats, pause, time, info): OverviewReply = redis::pipe()
        .llen(keys.submit())
        .llen(keys.ready())
        .llen(keys.dead())
        .zrange_withscores(keys.workers(), 0, -1)
        .hgetall(keys.stats())
        .get(keys.pause())
        .cmd("TIME")
        .hgetall(keys.worker_info())
        .query_async(conn)
        .await?;
    // Heartbeats carry the server's clock.
    let now = baton_core::time::server_millis(time);
    let this_minute = now / 60_000;
    let mut pipe = redis::pipe();
    for (w, _) in &workers {
        // Worker ids come from the workers set; a malformed one simply holds nothing.
        if let Ok(id) = w.parse() {
            pipe.llen(keys.inflight(&id));
        } else {
            pipe.cmd("ECHO").arg(0);
        }
    }
    for m in (this_minute + 1 - TIMELINE_MINUTES)..=this_minute {
        pipe.hgetall(keys.minute(m));
    }
    // The other ready lines (high and low priority) and the plans waiting for a time: last.
    pipe.llen(keys.ready_for(baton_core::Priority::High))
        .llen(keys.ready_for(baton_core::Priority::Low))
        .zcard(keys.delayed());
    let mut values: Vec<redis::Value> = pipe.query_async(conn).await?;
    let tail = values.split_off(values.len().saturating_sub(3));
    let count = |i: usize| -> u64 {
        tail.get(i)
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .unwrap_or(0)
    };
    let ready = ready + count(0) + count(1);
    let delayed = count(2);
    let (held, minutes) = values.split_at(workers.len().min(values.len()));
    let workers = workers
        .iter()
        .zip(held)
        .map(|((id, beat), held)| {
            let said: serde_json::Value = info
                .get(id)
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let field = |k: &str| said.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            WorkerRow {
                id: id.clone(),
                heartbeat_ago_ms: now.saturating_sub(*beat),
                holding: redis::from_redis_value_ref(held).unwrap_or(0),
                mode: field("mode"),
                sandbox: field("sandbox"),
            }
        })
        .collect();
    let minutes = minutes
        .iter()
        .map(|v| {
            let m = number_map(redis::from_redis_value_ref(v).unwrap_or_default());
            let n = |c: Counter| m.get(c.as_str()).copied().unwrap_or(0.0);
            Minute {
                tasks: n(Counter::TasksSucceeded),
                resumes_attempted: n(Counter::ResumesAttempted),
                resumes_succeeded: n(Counter::ResumesSucceeded),
            }
        })
        .collect();
    Ok(Overview {
        submit,
        ready,
        delayed,
        dead,
        workers,
        counters: number_map(stats),
        minutes,
        pause,
    })
}

/// One plan in the listing.
#[derive(Debug)]
pub(super) struct PlanRow {
    pub(super) id: String,
    pub(super) hash: PlanHash,
    pub(super) pending: u64,
    /// Seconds the session has left, when one is live.
    pub(super) session_ttl: Option<i64>,
}

/// The plans most recently active (submitted to or handed back) first, at most `limit`, of
/// one state when `state` is given (the state is filtered among those `limit`).
pub(super) async fn plans(
    conn: &mut SharedConn,
    keys: &Keys,
    state: Option<PlanState>,
    limit: usize,
) -> redis::RedisResult<Vec<PlanRow>> {
    let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
    let ids: Vec<String> = conn.zrevrange(keys.plans(), 0, stop).await?;
    let ids: Vec<PlanId> = ids.iter().filter_map(|i| i.parse().ok()).collect();
    // A pipeline per plan, all sent at once: each plan's keys share a slot of their own.
    let reads = ids.iter().map(|id| {
        let mut conn = conn.clone();
        async move {
            redis::pipe()
                .hgetall(keys.plan(id))
                .llen(keys.tasks(id))
                .ttl(keys.session(id))
                .query_async::<Vec<redis::Value>>(&mut conn)
                .await
        }
    });
    let values = futures_util::future::join_all(reads).await;
    let mut rows = Vec::with_capacity(ids.len());
    for (id, v) in ids.iter().zip(values) {
        let Ok::<[redis::Value; 3], _>([hash, pending, ttl]) = v?.try_into() else {
            continue;
        };
        let hash: HashMap<String, String> = redis::from_redis_value(hash).unwrap_or_default();
        let hash = PlanHash::from_pairs(&hash);
        if hash.is_missing() || state.is_some_and(|s| hash.state != Some(s)) {
            continue;
        }
        let ttl: i64 = redis::from_redis_value(ttl).unwrap_or(-2);
        rows.push(PlanRow {
            id: id.to_string(),
            hash,
            pending: redis::from_redis_value(pending).unwrap_or(0),
            session_ttl: (ttl >= 0).then_some(ttl),
        });
    }
    Ok(rows)
}

/// Everything the plan page shows.
#[derive(Debug)]
pub(super) struct PlanDetail {
    pub(super) hash: PlanHash,
    pub(super) results: Vec<TaskResult>,
    pub(super) pending: Vec<StoredTask>,
    pub(super) events: Vec<Event>,
    pub(super) session: Option<SessionRecord>,
    pub(super) session_ttl: Option<i64>,
    /// The committed transcript: base pack and chunks.
    pub(super) transcript: Option<(Vec<u8>, Vec<Vec<u8>>)>,
}

type PlanReply = (
    HashMap<String, String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Option<String>,
    i64,
    Option<Vec<u8>>,
    Vec<Vec<u8>>,
);

/// A plan, or `None` when there is no such plan (or it is past its retention).
pub(super) async fn plan(
    conn: &mut SharedConn,
    keys: &Keys,
    id: &PlanId,
) -> redis::RedisResult<Option<PlanDetail>> {
    // One snapshot (a transaction in the plan's slot): the transcript's base and chunks must
    // be of the same commit.
    let (hash, results, pending, events, session, ttl, transcript, chunks): PlanReply =
        redis::pipe()
            .atomic()
            .hgetall(keys.plan(id))
            .lrange(keys.results(id), 0, -1)
            .lrange(keys.tasks(id), 0, -1)
            .lrange(keys.events(id), 0, -1)
            .get(keys.session(id))
            .ttl(keys.session(id))
            .get(keys.transcript(id))
            .lrange(keys.transcript_chunks(id), 0, -1)
            .query_async(conn)
            .await?;
    let hash = PlanHash::from_pairs(&hash);
    if hash.is_missing() {
        return Ok(None);
    }
    Ok(Some(PlanDetail {
        hash,
        results: parse_all(&results),
        pending: parse_all(&pending),
        events: parse_all(&events),
        session: session.and_then(|s| serde_json::from_str(&s).ok()),
        session_ttl: (ttl >= 0).then_some(ttl),
        transcript: transcript.map(|base| (base, chunks)),
    }))
}

/// The records that decode (a record no longer readable is left out, not fatal to the page).
fn parse_all<T: serde::de::DeserializeOwned>(raw: &[String]) -> Vec<T> {
    raw.iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect()
}

/// The plan's stored events after `seq` (for a live page that rendered up to it).
pub(super) async fn events_after(
    conn: &mut SharedConn,
    keys: &Keys,
    plan: &PlanId,
    seq: Option<u64>,
) -> redis::RedisResult<Vec<(u64, String)>> {
    let raw: Vec<String> = conn.lrange(keys.events(plan), 0, -1).await?;
    Ok(raw
        .into_iter()
        .filter_map(|r| {
            let s = serde_json::from_str::<Event>(&r).ok()?.seq?;
            (seq.is_none_or(|after| s > after)).then_some((s, r))
        })
        .collect())
}

/// The newest dead letters, at most `limit`, with each one's raw JSON (to requeue it exactly).
pub(super) async fn dead_letters(
    conn: &mut SharedConn,
    keys: &Keys,
    limit: isize,
) -> redis::RedisResult<Vec<(String, DeadLetter)>> {
    let raw: Vec<String> = conn.lrange(keys.dead(), 0, limit - 1).await?;
    Ok(raw
        .into_iter()
        .filter_map(|r| {
            let l = serde_json::from_str(&r).ok()?;
            Some((r, l))
        })
        .collect())
}
