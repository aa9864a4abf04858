//! `baton watch`, and the event-following loop `enqueue --wait` shares with it.
//!
//! What is shown comes from `baton_client::EventCursor`: the channel's live events, with the
//! stored event lists filling in what the channel could not deliver (history, and what was
//! stored while the connection was down), nothing shown twice. This module decides how an
//! event is shown and when a wait for the plan's end is over.

use baton_client::{Delivered, Delivery, EventCursor, Scope};
use baton_core::event::EventBody;
use baton_core::{Event, PlanId, PlanState};

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
        let client = ctx.client().await?;
        let scope = self.plan.clone().map_or(Scope::All, Scope::Plan);
        let mut cursor = EventCursor::new(&client, pubsub, scope);
        // With a plan: its history first (a new cursor starts at the plan's first event).
        cursor.catch_up().await?;
        let shower = Shower {
            json: self.json,
            until_end: self.until_end,
            progress: Progress::for_terminal(self.json, self.plan.is_some()),
        };
        run_follow(cursor, shower).await
    }
}

async fn subscribe(ctx: &Ctx) -> Result<redis::aio::PubSub, Failure> {
    let mut pubsub = ctx.pubsub().await?;
    pubsub.subscribe(ctx.keys.channel()).await?;
    Ok(pubsub)
}

/// How the events a cursor delivers are shown.
struct Shower {
    json: bool,
    until_end: bool,
    /// The progress bar, for a person on a terminal following one plan.
    progress: Option<Progress>,
}

impl Shower {
    /// Shows one event; returns the plan's end when `until_end` and it ended.
    fn show(&mut self, ev: &Event, raw: &str) -> Option<Result<(), Failure>> {
        let end = self.show_one(ev, raw);
        if let (Some(_), Some(bar)) = (&end, &self.progress) {
            bar.finish();
        }
        end
    }

    fn show_one(&mut self, ev: &Event, raw: &str) -> Option<Result<(), Failure>> {
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
        match &ev.body {
            EventBody::PlanCompleted(_) => Some(Ok(())),
            // The plan waits for a person: a wait for its end would not end by itself.
            EventBody::ReviewRequested(_) => {
                if let Some(p) = &ev.plan_id {
                    eprintln!(
                        "plan {p} awaits review of task {}: `baton approve {p}` or `baton reject {p} --note ...`",
                        ev.task_id.as_ref().map(|t| t.as_str()).unwrap_or("?")
                    );
                }
                Some(Ok(()))
            }
            b if b.kind().ends_plan() => Some(Err(Failure::PlanFailed(format!(
                "{}: {}",
                b.kind(),
                b.reason().unwrap_or("see `baton status`")
            )))),
            EventBody::SubmissionRejected(r) => Some(Err(Failure::PlanFailed(format!(
                "document rejected: {}",
                r.reason
            )))),
            EventBody::PlanAccepted(a) if a.state == Some(PlanState::Failed) => Some(Err(Failure::PlanFailed(
                "tasks were added, but the plan is stopped on a failed task (see `baton status`)".into(),
            ))),
            _ => None,
        }
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
    let client = ctx.client().await?;
    let scope = plan.cloned().map_or(Scope::All, Scope::Plan);
    let mut cursor = EventCursor::new(&client, pubsub, scope);
    let progress = Progress::for_terminal(json, plan.is_some());
    if let Some(p) = plan {
        let view = client.plan(p).await?;
        let hash = view.map(|v| v.hash).unwrap_or_default();
        cursor.skip_to(hash.event_seq);
        if let Some(bar) = &progress {
            bar.starting_at(hash.done, hash.next_index);
        }
    }
    run_follow(
        cursor,
        Shower {
            json,
            until_end,
            progress,
        },
    )
    .await
}

async fn run_follow(mut cursor: EventCursor, mut shower: Shower) -> Result<(), Failure> {
    loop {
        match cursor.next().await? {
            Delivery::Event(delivered) => {
                let Delivered {
                    event,
                    raw,
                    replayed,
                } = *delivered;
                let end = shower.show(&event, &raw);
                // Catching up every plan after a reconnect reports no plan's end.
                if let (Some(end), false) = (end, replayed) {
                    return end;
                }
            }
            Delivery::Disconnected => eprintln!("lost the connection to redis; reconnecting"),
            Delivery::Reconnected => eprintln!("reconnected"),
        }
    }
}
