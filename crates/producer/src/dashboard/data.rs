//! What the dashboard shows, read from Redis in as few round trips as a page allows (one or two
//! pipelines per page, whatever the number of plans). The plans, their events and the dead
//! letters are read through baton-client, as every other reader reads them; the pool's overview
//! (workers, queues, the minute counters) is the dashboard's own.

use std::collections::HashMap;

use baton_client::{Client, ClientError, DetailParts, PlanView};
use baton_connect::SharedConn;
use baton_core::records::DeadLetter;
use baton_core::{Counter, Keys, PlanId, PlanState};

pub(super) use baton_client::PlanDetail;

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
    /// Concurrency keys: limits, running and waiting plans, daily budgets.
    pub(super) limits: baton_client::limits::Limits,
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
    let workers = worker_rows(&workers, held, &info, now);
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
    let client = baton_client::Client::new(conn.clone(), keys.clone());
    let limits = client.limits().await.map_err(|e| match e {
        baton_client::ClientError::Redis(e) => e,
        other => redis::RedisError::from((
            redis::ErrorKind::Client,
            "reading the limits",
            other.to_string(),
        )),
    })?;
    Ok(Overview {
        limits,
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

/// The workers' rows: each heartbeat's age on the server's clock `now`, how many plans it
/// holds (`held`, in the order of `workers`), and what it says of itself (`worker_info`).
fn worker_rows(
    workers: &[(String, u64)],
    held: &[redis::Value],
    info: &HashMap<String, String>,
    now: u64,
) -> Vec<WorkerRow> {
    workers
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
        .collect()
}

/// A plan in the listing.
pub(super) type PlanRow = PlanView;

/// The read library's error as the dashboard reports it (a Redis error; the reads used here
/// are the lenient ones, which decode nothing strictly).
fn redis_error(e: ClientError) -> redis::RedisError {
    match e {
        ClientError::Redis(e) => e,
        ClientError::Reply(e) => e.into(),
        other => std::io::Error::other(other.to_string()).into(),
    }
}

/// The plans most recently active (submitted to or handed back) first, at most `limit`, of
/// one state when `state` is given (the state is filtered among those `limit`).
pub(super) async fn plans(
    conn: &mut SharedConn,
    keys: &Keys,
    state: Option<PlanState>,
    limit: usize,
) -> redis::RedisResult<Vec<PlanRow>> {
    let client = Client::new(conn.clone(), keys.clone());
    let ids = client.recent_plans(limit).await.map_err(redis_error)?;
    let views = client.plans(&ids).await.map_err(redis_error)?;
    Ok(views
        .into_iter()
        .flatten()
        .filter(|v| state.is_none_or(|s| v.state() == Some(s)))
        .collect())
}

/// A plan with everything its page shows (events and transcript included), or `None` when
/// there is no such plan (or it is past its retention).
pub(super) async fn plan(
    conn: &mut SharedConn,
    keys: &Keys,
    id: &PlanId,
) -> redis::RedisResult<Option<PlanDetail>> {
    let parts = DetailParts {
        events: true,
        transcript: true,
    };
    Client::new(conn.clone(), keys.clone())
        .plan_detail(id, parts)
        .await
        .map_err(redis_error)
}

/// The plan's stored events after `seq` (for a live page that rendered up to it).
pub(super) async fn events_after(
    conn: &mut SharedConn,
    keys: &Keys,
    plan: &PlanId,
    seq: Option<u64>,
) -> redis::RedisResult<Vec<(u64, String)>> {
    Client::new(conn.clone(), keys.clone())
        .events_after(plan, seq)
        .await
        .map_err(redis_error)
}

/// The newest dead letters, at most `limit`, with each one's raw JSON (to requeue it exactly).
pub(super) async fn dead_letters(
    conn: &mut SharedConn,
    keys: &Keys,
    limit: isize,
) -> redis::RedisResult<Vec<(String, DeadLetter)>> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let letters = Client::new(conn.clone(), keys.clone())
        .dead_letters(Some(limit))
        .await
        .map_err(redis_error)?;
    Ok(letters
        .into_iter()
        .filter_map(|s| Some((s.raw, s.letter?)))
        .collect())
}
