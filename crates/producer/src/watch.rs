//! `baton watch`, and the event-following loop `enqueue --wait` shares with it.
//!
//! Live events come from the pub/sub channel. With a plan named, the plan's stored event list
//! fills in what the channel could not deliver (events before the watch started, or while the
//! connection was down): each stored event carries `seq`, so nothing is printed twice.

use std::time::Duration;

use baton_core::{Event, EventKind, PlanField, PlanId, PlanState};
use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::progress::Progress;
use crate::render::{human, out};
use crate::{Ctx, Failure};

/// Print events as they happen (all plans, or one). With --plan, the plan's earlier events are
/// printed first, and a reconnect after a Redis outage misses nothing.
#[derive(clap::Args, Debug)]
pub(crate) struct Watch {
    /// Only this plan's events (and its history first).
    #[arg(long)]
    plan: Option<PlanId>,
    /// Print events as JSON lines, as published.
    #[arg(long)]
    json: bool,
    /// Exit when the plan ends (needs --plan); exit 1 if it failed.
    #[arg(long, requires = "plan")]
    until_end: bool,
}

impl Watch {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let pubsub = subscribe(ctx).await?;
        let mut cursor = Cursor {
            next_seq: 0,
            json: self.json,
            until_end: self.until_end,
            plan: self.plan.clone(),
            progress: Progress::for_terminal(self.json, self.plan.is_some()),
        };
        if let Some(plan) = &self.plan {
            if let Some(end) = cursor.catch_up(ctx, plan).await? {
                return end;
            }
        }
        run_follow(ctx, pubsub, cursor).await
    }
}

async fn subscribe(ctx: &Ctx) -> Result<redis::aio::PubSub, Failure> {
    let mut pubsub = ctx.pubsub().await?;
    pubsub.subscribe(ctx.keys.channel()).await?;
    Ok(pubsub)
}

struct Cursor {
    /// First stored sequence number not yet shown (with a plan filter).
    next_seq: u64,
    json: bool,
    until_end: bool,
    plan: Option<PlanId>,
    /// The progress bar, for a person on a terminal following one plan.
    progress: Option<Progress>,
}

impl Cursor {
    /// Shows one event if it is new; returns the plan's end when `until_end` and it ended.
    fn show(&mut self, ev: &Event, raw: &str) -> Option<Result<(), Failure>> {
        let end = self.show_one(ev, raw);
        if let (Some(_), Some(bar)) = (&end, &self.progress) {
            bar.finish();
        }
        end
    }

    fn show_one(&mut self, ev: &Event, raw: &str) -> Option<Result<(), Failure>> {
        if let Some(p) = &self.plan {
            if ev.plan_id.as_ref() != Some(p) {
                return None;
            }
            if let Some(seq) = ev.seq {
                if seq < self.next_seq {
                    return None;
                }
                self.next_seq = seq + 1;
            }
        }
        let shown = match (&mut self.progress, self.json) {
            (Some(p), _) => {
                p.event(ev, &human(ev));
                true
            }
            (None, true) => out(raw),
            (None, false) => out(&human(ev)),
        };
        if !shown {
            return Some(Ok(()));
        }
        if !self.until_end {
            return None;
        }
        match ev.kind {
            EventKind::PlanCompleted => Some(Ok(())),
            k if k.ends_plan() => Some(Err(Failure::PlanFailed(format!(
                "{}: {}",
                k,
                ev.field_str("reason").unwrap_or("see `baton status`")
            )))),
            EventKind::SubmissionRejected => Some(Err(Failure::PlanFailed(format!(
                "document rejected: {}",
                ev.field_str("reason").unwrap_or("")
            )))),
            EventKind::PlanAccepted if ev.field_str("state") == Some(PlanState::Failed.as_str()) => Some(Err(Failure::PlanFailed(
                "tasks were added, but the plan is stopped on a failed task (see `baton status`)".into(),
            ))),
            _ => None,
        }
    }

    /// Shows stored events not yet shown.
    async fn catch_up(
        &mut self,
        ctx: &Ctx,
        plan: &PlanId,
    ) -> Result<Option<Result<(), Failure>>, Failure> {
        let mut conn = ctx.conn().await?;
        let stored: Vec<String> = conn.lrange(ctx.keys.events(plan), 0, -1).await?;
        for raw in stored {
            if let Ok(ev) = serde_json::from_str::<Event>(&raw) {
                if let Some(end) = self.show(&ev, &raw) {
                    return Ok(Some(end));
                }
            }
        }
        Ok(None)
    }
}

/// Follows from a subscription made before the plan was submitted (for `enqueue --wait`):
/// only events stored from now on count.
pub(crate) async fn follow(
    ctx: &Ctx,
    pubsub: redis::aio::PubSub,
    plan: Option<&PlanId>,
    json: bool,
    until_end: bool,
) -> Result<(), Failure> {
    let mut next_seq = 0;
    let progress = Progress::for_terminal(json, plan.is_some());
    if let Some(p) = plan {
        let mut conn = ctx.conn().await?;
        let (seq, done, tasks): (Option<u64>, Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(ctx.keys.plan(p))
            .arg(PlanField::EventSeq.as_str())
            .arg(PlanField::Done.as_str())
            .arg(PlanField::NextIndex.as_str())
            .query_async(&mut conn)
            .await?;
        next_seq = seq.unwrap_or(0);
        if let Some(bar) = &progress {
            bar.starting_at(done.unwrap_or(0), tasks.unwrap_or(0));
        }
    }
    run_follow(
        ctx,
        pubsub,
        Cursor {
            next_seq,
            json,
            until_end,
            plan: plan.cloned(),
            progress,
        },
    )
    .await
}

async fn run_follow(
    ctx: &Ctx,
    mut pubsub: redis::aio::PubSub,
    mut cursor: Cursor,
) -> Result<(), Failure> {
    loop {
        {
            let mut stream = pubsub.on_message();
            while let Some(msg) = stream.next().await {
                let Ok(raw) = msg.get_payload::<String>() else {
                    continue;
                };
                let Ok(ev) = serde_json::from_str::<Event>(&raw) else {
                    continue;
                };
                if let Some(end) = cursor.show(&ev, &raw) {
                    return end;
                }
            }
        }
        eprintln!("lost the connection to redis; reconnecting");
        let mut delay = Duration::from_millis(200);
        pubsub = loop {
            tokio::time::sleep(delay).await;
            match subscribe(ctx).await {
                Ok(p) => break p,
                Err(_) => delay = (delay * 2).min(Duration::from_secs(5)),
            }
        };
        eprintln!("reconnected");
        if let Some(plan) = cursor.plan.clone() {
            if let Some(end) = cursor.catch_up(ctx, &plan).await? {
                return end;
            }
        }
    }
}
