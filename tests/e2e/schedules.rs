//! Recurring plans (`baton schedule`) on a real redis-server, with real workers (the instant
//! executor: what is tested is when plans are submitted, not what the CLI does) and the real
//! `baton` CLI: a 2-second schedule gives exactly one plan per tick across a kill -9 of the
//! worker holding the scheduler lease and a Redis restart, with two workers both running the
//! scheduler; missed ticks fire once when the pool comes back; run-now; remove; validation
//! with the field named; `after` naming another schedule; the dashboard's schedules page.

use baton_tests::cli::{refused, run};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use baton_core::event::EventBody;
use baton_core::{Event, EventKind};
use baton_tests::*;
use futures_util::StreamExt;
use redis::AsyncCommands;

/// A worker that answers every task at once, with the scheduler on (the default).
fn instant(pool: &Pool, name: &str) -> WorkerOpts {
    let mut m = pool.machine(name, 2);
    m.extra.extend(["--executor".into(), "instant".into()]);
    m
}

/// Writes a schedule's plan document; returns its path.
fn plan_file(pool: &Pool, name: &str, doc: &serde_json::Value) -> Result<String> {
    let path = pool.dir.path().join(format!("{name}.json"));
    std::fs::write(&path, doc.to_string())?;
    Ok(path.display().to_string())
}

fn one_task() -> serde_json::Value {
    serde_json::json!({"tasks": [{"prompt": "Update the dependencies."}]})
}

/// The plans the schedule `name` fired for its ticks (not run-now's), in tick order.
async fn tick_plans(pool: &Pool, name: &str) -> Result<Vec<PlanId>> {
    let mut c = pool.conn().await?;
    let all: Vec<String> = c.zrange(pool.keys.plans(), 0, -1).await?;
    let prefix = format!("{name}-");
    let mut ids: Vec<String> = all
        .into_iter()
        .filter(|p| p.starts_with(&prefix) && !p.starts_with(&format!("{name}-now-")))
        .collect();
    ids.sort();
    Ok(ids.iter().map(plan_id).collect())
}

/// Waits until the schedule has fired at least `n` tick plans; returns them.
async fn wait_ticks(pool: &Pool, name: &str, n: usize, within: Duration) -> Result<Vec<PlanId>> {
    let deadline = Instant::now() + within;
    loop {
        // Redis may be restarting: a failed read is a read to make again.
        if let Ok(plans) = tick_plans(pool, name).await {
            if plans.len() >= n {
                return Ok(plans);
            }
        }
        ensure!(
            Instant::now() < deadline,
            "{n} ticks of {name} not within {within:?}\n{}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tick's time (ms) a plan id names: `<name>-YYYYMMDDTHHMMSSZ`.
fn tick_of(plan: &PlanId) -> u64 {
    let s = plan.as_str().rsplit('-').next().expect("a stamp");
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    let t = humantime::parse_rfc3339(&rfc).expect("a tick stamp");
    let since = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

/// Every `schedule_fired` event published, kept across Redis restarts (it subscribes again).
fn collect_fired(url: String) -> Arc<Mutex<Vec<Event>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                if let Ok(mut ps) = client.get_async_pubsub().await {
                    if ps.subscribe("baton:events").await.is_ok() {
                        let mut msgs = ps.on_message();
                        while let Some(m) = msgs.next().await {
                            let raw: String = m.get_payload().unwrap_or_default();
                            if let Ok(e) = serde_json::from_str::<Event>(&raw) {
                                if e.kind() == EventKind::ScheduleFired {
                                    out.lock().expect("not poisoned").push(e);
                                }
                            }
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    seen
}

/// Each plan was submitted once (one `plan_accepted`, `created`, never `appended`) and ran its
/// one task once.
async fn each_ran_once(pool: &Pool, plans: &[PlanId]) -> Result<()> {
    for p in plans {
        pool.wait_done(p, 1, Duration::from_secs(30)).await?;
        let events = pool.events(p).await?;
        let accepted: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::PlanAccepted(a) => Some(a.status),
                _ => None,
            })
            .collect();
        ensure!(accepted.len() == 1, "{p}: accepted {accepted:?}");
        ensure!(pool.results(p).await?.len() == 1, "{p}: one result");
    }
    Ok(())
}

mod faults;
mod inputs;
mod page;
