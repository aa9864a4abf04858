//! Running the eval's plans through the pool: submitted like any client submits, followed to
//! their end, and for the `handoff` arm, every task forced onto the other machine.
//!
//! The handoff arm runs in rounds with one worker up at a time. Each plan is paused as soon as
//! its next task starts (a pause lets the running task finish, then holds the plan), the round
//! ends when every plan is paused and handed back (or over), and the next round starts the other
//! machine's worker and resumes them. So every task after the first resumes the conversation on
//! another machine, in another workspace root; the report counts the handoffs the events show.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_core::{ActionRequest, EventKind, PlanAction, PlanId, PlanState};
use redis::AsyncCommands;

use super::pool::EmbeddedPool;
use crate::Ctx;

/// How often the driver looks at the plans.
const POLL: Duration = Duration::from_millis(100);

/// Submits each document (one `LPUSH` each, as `baton enqueue` does).
pub(super) async fn submit_all(ctx: &Ctx, docs: &[(PlanId, serde_json::Value)]) -> Result<()> {
    let mut conn = ctx.conn().await.map_err(failure)?;
    for (_, doc) in docs {
        let raw = serde_json::to_vec(doc)?;
        let _: i64 = conn.lpush(ctx.keys.submit(), raw).await?;
    }
    Ok(())
}

fn failure(f: crate::Failure) -> anyhow::Error {
    anyhow::anyhow!(f.message())
}

/// Whether `state` is one a plan does not leave by itself.
fn ended(state: Option<PlanState>) -> bool {
    matches!(
        state,
        Some(PlanState::Completed | PlanState::Failed | PlanState::Cancelled)
    )
}

/// Waits until every plan ended, printing progress to stderr now and then; gives up at
/// `deadline`. `pool` (embedded) is watched for a worker that exited on its own.
pub(super) async fn wait_all(
    ctx: &Ctx,
    plans: &[PlanId],
    deadline: Instant,
    mut pool: Option<&mut EmbeddedPool>,
) -> Result<()> {
    let client = ctx.client().await.map_err(failure)?;
    let mut last_report = Instant::now();
    loop {
        let views = client.plans(plans).await?;
        let done = views
            .iter()
            .filter(|v| ended(v.as_ref().and_then(|v| v.state())))
            .count();
        if done == plans.len() {
            return Ok(());
        }
        // A plan with no hash was never ingested: refused (its dead letter says why), or no
        // worker is taking documents. One read of the dead letters per look, however many.
        let missing: Vec<&PlanId> = plans
            .iter()
            .zip(&views)
            .filter_map(|(p, v)| v.is_none().then_some(p))
            .collect();
        if !missing.is_empty() {
            let letters = client.dead_letters(None).await?;
            let refused = letters
                .into_iter()
                .filter_map(|s| s.letter)
                .find(|l| l.plan_id.as_ref().is_some_and(|p| missing.contains(&p)));
            if let Some(letter) = refused {
                let plan = letter.plan_id.map(|p| p.to_string()).unwrap_or_default();
                // The field, unless the reason names it already.
                let field = letter
                    .field
                    .filter(|f| !letter.reason.starts_with(f.as_str()))
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default();
                bail!("the pool refused plan {plan}: {field}{}", letter.reason);
            }
        }
        if let Some(log) = pool.as_deref_mut().and_then(EmbeddedPool::exited_worker) {
            bail!("a worker of the eval's pool exited:\n{log}");
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} plans had not ended by the deadline (--timeout)",
                plans.len() - done,
                plans.len()
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let tasks: u64 = views.iter().flatten().map(|v| v.tasks_done()).sum();
            let waiting = views.iter().filter(|v| v.is_none()).count();
            let unread = if waiting > 0 {
                format!("; {waiting} not taken in yet (is a worker running?)")
            } else {
                String::new()
            };
            eprintln!(
                "eval: {done}/{} plans ended, {tasks} tasks done{unread}",
                plans.len()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The highest event seq of each plan so far.
async fn last_seqs(
    client: &baton_client::Client,
    plans: &[PlanId],
) -> Result<HashMap<PlanId, u64>> {
    let mut out = HashMap::new();
    for p in plans {
        let seq = client
            .events(p)
            .await?
            .iter()
            .filter_map(|e| e.seq)
            .max()
            .unwrap_or(0);
        out.insert(p.clone(), seq);
    }
    Ok(out)
}

/// Runs the handoff arm's plans (already submitted, no worker up) in rounds, one machine's
/// worker at a time, until every plan ended.
pub(super) async fn handoff_rounds(
    ctx: &Ctx,
    pool: &mut EmbeddedPool,
    plans: &[PlanId],
    deadline: Instant,
) -> Result<()> {
    let client = ctx.client().await.map_err(failure)?;
    let mut conn = ctx.conn().await.map_err(failure)?;
    for round in 0.. {
        let views = client.plans(plans).await?;
        let live: Vec<PlanId> = plans
            .iter()
            .zip(&views)
            .filter(|(_, v)| !ended(v.as_ref().and_then(|v| v.state())))
            .map(|(p, _)| p.clone())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let machine = round % pool.machines();
        let seen = last_seqs(&client, &live).await?;
        pool.start_worker(machine)?;
        if round > 0 {
            for p in &live {
                let action = ActionRequest::new(p.clone(), PlanAction::Resume);
                crate::control::request(&mut conn, &ctx.keys, &action)
                    .await
                    .map_err(failure)
                    .with_context(|| format!("resuming {p}"))?;
            }
        }
        one_round(ctx, &client, pool, &live, &seen, deadline).await?;
        pool.stop_worker(machine).await?;
    }
    Ok(())
}

/// One round: pause each plan when a task of it starts; over when each is ended, or paused
/// and no longer held.
async fn one_round(
    ctx: &Ctx,
    client: &baton_client::Client,
    pool: &mut EmbeddedPool,
    live: &[PlanId],
    seen: &HashMap<PlanId, u64>,
    deadline: Instant,
) -> Result<()> {
    let mut conn = ctx.conn().await.map_err(failure)?;
    let mut paused: HashSet<PlanId> = HashSet::new();
    loop {
        let mut over = 0;
        for p in live {
            let state = client.plan(p).await?.and_then(|v| v.state());
            if ended(state) {
                over += 1;
                continue;
            }
            if paused.contains(p) {
                let held: bool = conn.exists(ctx.keys.lock(p)).await?;
                if state == Some(PlanState::Paused) && !held {
                    over += 1;
                }
                continue;
            }
            let from = seen.get(p).copied().unwrap_or(0);
            let started = client
                .events(p)
                .await?
                .iter()
                .any(|e| e.seq.is_some_and(|s| s > from) && e.kind() == EventKind::TaskStarted);
            if started {
                crate::control::pause(
                    &mut conn,
                    &ctx.env,
                    p,
                    "eval: hand the next task over",
                    false,
                )
                .await
                .map_err(failure)?;
                paused.insert(p.clone());
            }
        }
        if over == live.len() {
            return Ok(());
        }
        if let Some(log) = pool.exited_worker() {
            bail!("a worker of the eval's pool exited:\n{log}");
        }
        if Instant::now() > deadline {
            bail!("the handoff arm had not ended by the deadline (--timeout)");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for SIGINT, SIGTERM or SIGHUP; says which.
pub(super) async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
        _ = hup.recv() => "hung up",
    }
}
