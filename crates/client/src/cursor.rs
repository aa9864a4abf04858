//! [`EventCursor`]: the events as they happen, with nothing repeated and nothing missed across
//! a reconnect (`baton watch`, `baton enqueue --wait`).
//!
//! Live events come from the pub/sub channel. Following one plan ([`Scope::Plan`]), the plan's
//! stored event list fills in what the channel could not deliver (events before the cursor
//! started, or while the connection was down): each stored event carries `seq`, so none is
//! delivered twice.
//!
//! Following every plan ([`Scope::All`]), a reconnect catches up too: the plans that may have
//! had events while the connection was down are those seen before, those in a worker's hands
//! or waiting now, and those the plan index marks as submitted to or handed back since (every
//! hand-back marks its plan); their stored events after what was delivered come in time
//! order, and documents rejected meanwhile are told from the dead-letter list.
//!
//! The cursor yields whatever [`baton_core::Event`] is; it reads only the fields every event
//! has (`plan_id`, `seq`, `at`), except where a rejected document's event is matched with its
//! dead letter (see [`rejection_id`] and [`rejection_event`]).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_core::event::{EventBody, SubmissionRejected};
use baton_core::records::DeadLetter;
use baton_core::{DeadLetterKind, Event, PlanField, PlanId};
use futures_util::StreamExt;
use redis::AsyncCommands;

use crate::{Client, ClientError};

/// Which events a cursor delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One plan's events, its stored history filling every gap.
    Plan(PlanId),
    /// Every event on the channel.
    All,
}

/// An event the cursor delivers.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event: Event,
    /// The event's JSON as published or stored.
    pub raw: String,
    /// Told by a catch-up of every plan after a reconnect (not live): a watch of every plan
    /// reports no plan's end from it.
    pub replayed: bool,
}

/// What [`EventCursor::next`] brings.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event (boxed: events are large beside the other variants).
    Event(Box<Delivered>),
    /// The channel's connection was lost; the next call reconnects (retrying with backoff).
    Disconnected,
    /// Subscribed again; the next call first delivers what was stored meanwhile.
    Reconnected,
}

/// Where the cursor's subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Live,
    Lost,
    /// Reconnected; the stored events are to be read before following again.
    CatchUp,
}

/// How far before the last event heard a catch-up of every plan looks (workers' clocks stamp
/// events).
const CATCH_UP_MARGIN_MS: u64 = 5_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Follows the pool's events from a subscription (see the module).
pub struct EventCursor {
    client: Client,
    pubsub: redis::aio::PubSub,
    scope: Scope,
    link: Link,
    /// Following one plan: the first stored sequence number not yet delivered.
    next_seq: u64,
    /// Following every plan: per plan, the first stored sequence number not yet delivered.
    shown: HashMap<PlanId, u64>,
    /// Following every plan: the rejected documents already told of.
    rejections: HashSet<String>,
    /// When the last event arrived (or the subscription started), ms since the epoch.
    heard_at_ms: u64,
    /// Events read but not yet delivered (or dropped as repeats), and whether each is replayed.
    backlog: VecDeque<(Event, String, bool)>,
}

impl EventCursor {
    /// A cursor over `pubsub`, already subscribed to the pool's channel (subscribe before
    /// submitting what is to be followed, so nothing published is missed). Following a plan,
    /// it starts at the plan's first stored event: call [`EventCursor::catch_up`] to deliver
    /// its history, or [`EventCursor::skip_to`] to start later.
    pub fn new(client: &Client, pubsub: redis::aio::PubSub, scope: Scope) -> Self {
        Self {
            client: client.clone(),
            pubsub,
            scope,
            link: Link::Live,
            next_seq: 0,
            shown: HashMap::new(),
            rejections: HashSet::new(),
            heard_at_ms: now_ms(),
            backlog: VecDeque::new(),
        }
    }

    /// Following a plan: the events stored before `seq` are not delivered.
    pub fn skip_to(&mut self, seq: u64) {
        self.next_seq = seq;
    }

    /// Following a plan: queues its stored events not yet delivered, to come before anything
    /// live. Following every plan: does nothing (there is no one list to read).
    ///
    /// # Errors
    /// Redis failed.
    pub async fn catch_up(&mut self) -> Result<(), ClientError> {
        let Scope::Plan(plan) = &self.scope else {
            return Ok(());
        };
        let stored: Vec<String> = self
            .client
            .conn()
            .lrange(self.client.keys.events(plan), 0, -1)
            .await?;
        for raw in stored {
            if let Ok(ev) = parse_event(&raw) {
                self.backlog.push_back((ev, raw, false));
            }
        }
        Ok(())
    }

    /// The next event not delivered before, or news of the connection.
    ///
    /// # Errors
    /// A catch-up after a reconnect failed to read Redis.
    pub async fn next(&mut self) -> Result<Delivery, ClientError> {
        loop {
            while let Some((event, raw, replayed)) = self.backlog.pop_front() {
                if self.accept(&event, replayed) {
                    return Ok(Delivery::Event(Box::new(Delivered {
                        event,
                        raw,
                        replayed,
                    })));
                }
            }
            match self.link {
                Link::Live => {
                    let Some(msg) = self.pubsub.on_message().next().await else {
                        self.link = Link::Lost;
                        return Ok(Delivery::Disconnected);
                    };
                    let Ok(raw) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if let Ok(ev) = parse_event(&raw) {
                        self.backlog.push_back((ev, raw, false));
                    }
                }
                Link::Lost => {
                    let mut delays = crate::reconnect::reconnect_delays();
                    self.pubsub = loop {
                        tokio::time::sleep(crate::reconnect::next_delay(&mut delays)).await;
                        if let Ok(p) = self.client.subscribe().await {
                            // The shared connection may still be the one that broke: its first
                            // command fails and the next connects afresh, so the catch-up does
                            // not meet a stale connection.
                            if self.ping().await || self.ping().await {
                                break p;
                            }
                        }
                    };
                    self.link = Link::CatchUp;
                    return Ok(Delivery::Reconnected);
                }
                Link::CatchUp => {
                    self.link = Link::Live;
                    match self.scope {
                        Scope::Plan(_) => self.catch_up().await?,
                        Scope::All => self.catch_up_all().await?,
                    }
                }
            }
        }
    }

    /// True when the shared connection answers.
    async fn ping(&self) -> bool {
        redis::cmd("PING")
            .query_async::<String>(&mut self.client.conn())
            .await
            .is_ok()
    }

    /// True when `ev` is to be delivered: of the plan followed, and not delivered before.
    fn accept(&mut self, ev: &Event, replayed: bool) -> bool {
        if !replayed {
            self.heard_at_ms = now_ms();
        }
        match &self.scope {
            Scope::Plan(p) => {
                if ev.plan_id.as_ref() != Some(p) {
                    return false;
                }
                if let Some(seq) = ev.seq {
                    if seq < self.next_seq {
                        return false;
                    }
                    self.next_seq = seq + 1;
                }
                true
            }
            Scope::All => match (&ev.plan_id, ev.seq) {
                (Some(p), Some(seq)) => {
                    let next = self.shown.entry(p.clone()).or_insert(0);
                    if seq < *next {
                        return false;
                    }
                    *next = seq + 1;
                    true
                }
                _ => match rejection_id(ev) {
                    Some(letter) => self.rejections.insert(letter),
                    None => true,
                },
            },
        }
    }

    /// After a reconnect, following every plan: queues the events stored while the
    /// connection was down (see the module), in time order.
    async fn catch_up_all(&mut self) -> Result<(), ClientError> {
        let mut conn = self.client.conn();
        let k = &self.client.keys;
        let from_ms = self.heard_at_ms.saturating_sub(CATCH_UP_MARGIN_MS);
        let from = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(from_ms))
            .to_string();
        let mut plans: BTreeSet<String> = self.shown.keys().map(ToString::to_string).collect();
        let recent = self.client.plans_active_since(from_ms).await?;
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
        // Each plan's stored events after what was delivered (or, for a plan not seen yet,
        // since the last event heard), read all at once: each plan is a slot of its own.
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
                if let Ok(ev) = parse_event(&raw) {
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
            let ev = rejection_event(&letter);
            let raw = ev.to_json();
            backlog.push((ev, raw));
        }
        backlog.sort_by(|(a, _), (b, _)| (&a.at, a.seq).cmp(&(&b.at, b.seq)));
        self.backlog
            .extend(backlog.into_iter().map(|(ev, raw)| (ev, raw, true)));
        self.heard_at_ms = self
            .heard_at_ms
            .max(now_ms().saturating_sub(CATCH_UP_MARGIN_MS));
        Ok(())
    }
}

/// An event as published or stored, or `Err` after a warning naming what did not parse (an
/// event a newer or older writer shaped otherwise is skipped, and said so, not dropped quietly).
fn parse_event(raw: &str) -> Result<Event, ()> {
    serde_json::from_str::<Event>(raw).map_err(|e| {
        tracing::warn!(error = %e, event = %raw, "skipped an event that does not parse");
    })
}

/// The dead letter a `submission_rejected` event tells of (events without a plan's `seq` are
/// matched by it).
pub fn rejection_id(ev: &Event) -> Option<String> {
    match &ev.body {
        EventBody::SubmissionRejected(r) => Some(r.dead_letter_id.clone()),
        _ => None,
    }
}

/// The `submission_rejected` event a rejected document's dead letter stands for (as the
/// ingesting worker published it).
pub fn rejection_event(letter: &DeadLetter) -> Event {
    let mut ev = Event::new(
        letter.plan_id.as_ref(),
        SubmissionRejected {
            reason: letter.reason.clone(),
            field: letter.field.clone(),
            dead_letter_id: letter.id.to_string(),
        },
    );
    ev.at.clone_from(&letter.at);
    ev
}
