//! `baton watch`, and the event-following loop `enqueue --wait` shares with it.
//!
//! Live events come from the pub/sub channel. With a plan named, the plan's stored event list
//! fills in what the channel could not deliver (events before the watch started, or while the
//! connection was down): each stored event carries `seq`, so nothing is printed twice.
//!
//! Without a plan, a reconnect catches up too: the plans that may have had events while the
//! connection was down are those seen before, those in a worker's hands or waiting now, and
//! those the plan index marks as submitted to or handed back since (every hand-back marks its
//! plan); their stored events after what was shown are printed in time order, and documents
//! rejected meanwhile are told from the dead-letter list.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_core::records::DeadLetter;
use baton_core::{DeadLetterKind, Event, EventKind, PlanField, PlanId, PlanState};
use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::progress::Progress;
use crate::render::{human, out};
use crate::{Ctx, Failure};

/// Print events as they happen (all plans, or one). With --plan, the plan's earlier events are
/// printed first. A reconnect after a Redis outage misses nothing: the events stored meanwhile
/// are printed when the connection is back.
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
            shown: HashMap::new(),
            rejections: HashSet::new(),
            heard_at_ms: now_ms(),
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
    /// Following every plan: per plan, the first stored sequence number not yet shown.
    shown: HashMap<PlanId, u64>,
    /// Following every plan: the rejected documents already told of.
    rejections: HashSet<String>,
    /// When the last event arrived (or the subscription started), ms since the epoch.
    heard_at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How far before the last event heard a catch-up looks (workers' clocks stamp events).
const CATCH_UP_MARGIN_MS: u64 = 5_000;

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
        self.heard_at_ms = now_ms();
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
        } else {
            match (&ev.plan_id, ev.seq) {
                (Some(p), Some(seq)) => {
                    let next = self.shown.entry(p.clone()).or_insert(0);
                    if seq < *next {
                        return None;
                    }
                    *next = seq + 1;
                }
                _ => {
                    if let Some(letter) = ev.field_str("dead_letter_id") {
                        if !self.rejections.insert(letter.to_owned()) {
                            return None;
                        }
                    }
                }
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
            // The plan waits for a person: a wait for its end would not end by itself.
            EventKind::ReviewRequested => {
                if let Some(p) = &ev.plan_id {
                    eprintln!(
                        "plan {p} awaits review of task {}: `baton approve {p}` or `baton reject {p} --note ...`",
                        ev.task_id.as_ref().map(|t| t.as_str()).unwrap_or("?")
                    );
                }
                Some(Ok(()))
            }
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

impl Cursor {
    /// After a reconnect, following every plan: shows the events stored while the connection
    /// was down (see the module), in time order.
    async fn catch_up_all(&mut self, ctx: &Ctx) -> Result<(), Failure> {
        let mut conn = ctx.conn().await?;
        let k = &ctx.keys;
        let from_ms = self.heard_at_ms.saturating_sub(CATCH_UP_MARGIN_MS);
        let from = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(from_ms))
            .to_string();
        let mut plans: BTreeSet<String> = self.shown.keys().map(ToString::to_string).collect();
        let recent: Vec<String> = conn.zrangebyscore(k.plans(), from_ms, "+inf").await?;
        let mut waiting: Vec<String> = Vec::new();
        for list in k.ready_lists() {
            let line: Vec<String> = conn.lrange(list, 0, -1).await?;
            waiting.extend(line);
        }
        let workers: Vec<String> = conn.zrange(k.workers(), 0, -1).await?;
        plans.extend(recent.into_iter().chain(waiting));
        for w in workers.iter().filter_map(|w| w.parse().ok()) {
            let held: Vec<String> = conn.lrange(k.inflight(&w), 0, -1).await?;
            plans.extend(held);
        }
        let plans: Vec<PlanId> = plans.iter().filter_map(|p| p.parse().ok()).collect();
        // Each plan's stored events after what was shown (or, for a plan not seen yet, since
        // the last event heard), read all at once: each plan is a slot of its own.
        let reads = plans.iter().map(|plan| {
            let mut conn = conn.clone();
            let next = self.shown.get(plan).copied();
            async move {
                let (seq, len): (Option<u64>, u64) = redis::pipe()
                    .hget(k.plan(plan), PlanField::EventSeq.as_str())
                    .llen(k.events(plan))
                    .query_async(&mut conn)
                    .await?;
                let new = match next {
                    Some(next) => seq.unwrap_or(0).saturating_sub(next).min(len),
                    None => len,
                };
                if new == 0 {
                    return Ok::<_, redis::RedisError>(Vec::new());
                }
                let start = isize::try_from(new).map_or(0, |n| -n);
                conn.lrange::<_, Vec<String>>(k.events(plan), start, -1)
                    .await
            }
        });
        let mut backlog: Vec<(Event, String)> = Vec::new();
        for stored in futures_util::future::join_all(reads).await {
            for raw in stored? {
                if let Ok(ev) = serde_json::from_str::<Event>(&raw) {
                    let known = ev
                        .plan_id
                        .as_ref()
                        .is_some_and(|p| self.shown.contains_key(p));
                    if known || ev.at >= from {
                        backlog.push((ev, raw));
                    }
                }
            }
        }
        // Documents rejected meanwhile: their events were only published.
        let letters: Vec<String> = conn.lrange(k.dead(), 0, 199).await?;
        for letter in letters
            .iter()
            .filter_map(|l| serde_json::from_str::<DeadLetter>(l).ok())
        {
            if letter.kind != DeadLetterKind::Submission || letter.at < from {
                continue;
            }
            let mut ev = Event::new(EventKind::SubmissionRejected, letter.plan_id.as_ref())
                .with("reason", letter.reason.as_str())
                .with("dead_letter_id", letter.id.to_string());
            if let Some(field) = &letter.field {
                ev = ev.with("field", field.as_str());
            }
            ev.at.clone_from(&letter.at);
            let raw = ev.to_json();
            backlog.push((ev, raw));
        }
        backlog.sort_by(|(a, _), (b, _)| (&a.at, a.seq).cmp(&(&b.at, b.seq)));
        let heard = self.heard_at_ms;
        for (ev, raw) in &backlog {
            // Catching up reports no plan's end: this watch follows every plan.
            let _ = self.show(ev, raw);
        }
        self.heard_at_ms = heard.max(now_ms().saturating_sub(CATCH_UP_MARGIN_MS));
        Ok(())
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
            shown: HashMap::new(),
            rejections: HashSet::new(),
            heard_at_ms: now_ms(),
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
        let mut delays = crate::reconnect::reconnect_delays();
        pubsub = loop {
            tokio::time::sleep(crate::reconnect::next_delay(&mut delays)).await;
            if let Ok(p) = subscribe(ctx).await {
                break p;
            }
        };
        eprintln!("reconnected");
        if let Some(plan) = cursor.plan.clone() {
            if let Some(end) = cursor.catch_up(ctx, &plan).await? {
                return end;
            }
        } else {
            cursor.catch_up_all(ctx).await?;
        }
    }
}
