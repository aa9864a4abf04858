//! What a hold tells the world: events (stored in the plan's list and published), counters and
//! metrics, from the executor events and outcomes of its attempts ([`Reporter::dispatch`],
//! [`Reporter::outcome`]), and the pool's pause on a rate limit.
//! The plan's own counters are kept exact by the scripts that do the work; the pool-wide ones
//! follow them by transfer (`baton_core::counters`): the plan's totals go to the pool with the
//! hand-back, or once counts are a second old ([`PoolTally`]): a trip less per task, at the
//! price of `baton stats` lagging by up to a second, and exact whatever crashes.

use std::time::Duration;

use tokio::time::Instant;

use baton_core::event::{
    ApiRetry, AttemptMode, EventBody, PoolPaused, SessionFallback, SessionNote, TaskProgress,
    TaskRetrying, TaskStarted, ToolUse,
};
use baton_core::records::StoredTask;
use baton_core::scripts::pool::Tally;
use baton_core::scripts::task::{Emit, Start};
use baton_core::{Counter, Counts, Event, PlanId, WorkerId};
use tracing::{debug, warn};

use super::next::TtlRefresh;
use super::Prestarted;
use crate::attempt::{ExecutorEvent, Outcome, SessionStarted};
use crate::claude::Progress;
use crate::metrics::{SessionEvent, TaskOutcome};
use crate::pool::Pool;
use crate::session::How;
use crate::store::StoreError;

/// A CLI retry announced for a 429 this far off (or more) is a rate limit with a reset time,
/// not a short backoff: the pool pauses until then.
const RATE_LIMIT_PAUSE_MIN_MS: u64 = 5_000;

/// Since when the plan has counts the pool's counters do not hold yet.
#[derive(Debug, Default)]
pub(crate) struct PoolTally {
    since: std::sync::Mutex<Option<Instant>>,
}

impl PoolTally {
    /// How long counts may wait before the plan's totals are sent.
    const MAX_AGE: Duration = Duration::from_secs(1);

    fn mark(&self) {
        if let Ok(mut since) = self.since.lock() {
            since.get_or_insert_with(Instant::now);
        }
    }

    /// True (once) when counts have waited long enough: the caller sends the totals.
    fn take_due(&self) -> bool {
        let Ok(mut since) = self.since.lock() else {
            return false;
        };
        let due = since.is_some_and(|t| t.elapsed() >= Self::MAX_AGE);
        if due {
            *since = None;
        }
        due
    }

    /// Forgets the pending counts (their totals are being sent).
    pub(crate) fn clear(&self) {
        if let Ok(mut since) = self.since.lock() {
            *since = None;
        }
    }
}

/// Brings the pool's counters up to `plan`'s totals.
pub(crate) async fn transfer(pool: &Pool, plan: &PlanId) -> Result<(), StoreError> {
    let totals = pool.store.plan_totals(plan).await?;
    pool.store
        .call(&Tally {
            plan,
            totals: &totals,
        })
        .await
}

/// The events and counters of one hold.
pub(crate) struct Reporter<'p> {
    pool: &'p Pool,
    plan: PlanId,
    tally: PoolTally,
    /// A start the last commit published for the next task (`prestart`).
    prestarted: Option<Prestarted>,
    /// The plan's trace id, as the hold's acquire read it: on `task_started`.
    pub(super) trace_id: Option<String>,
}

impl<'p> Reporter<'p> {
    pub(crate) fn new(pool: &'p Pool, plan: PlanId, trace_id: Option<String>) -> Self {
        Self {
            pool,
            plan,
            tally: PoolTally::default(),
            prestarted: None,
            trace_id,
        }
    }

    /// The last commit published the start of the next task's first attempt.
    pub(crate) fn expect_started(&mut self, prestarted: Prestarted) {
        self.prestarted = Some(prestarted);
    }

    /// True while a start the last commit published waits for its attempt.
    pub(crate) fn announced_next(&self) -> bool {
        self.prestarted.is_some()
    }

    /// Tells the world what an attempt did: the one place executor events become events,
    /// counters and metrics.
    pub(crate) async fn dispatch(
        &mut self,
        task: &StoredTask,
        e: ExecutorEvent,
        ttls: &mut TtlRefresh,
    ) {
        match e {
            ExecutorEvent::Started {
                attempt,
                session,
                mode,
            } => {
                let announced = self.prestarted.take().filter(|p| {
                    let same = p.announced(task, attempt, &session, &self.pool.id);
                    if !same {
                        debug!(
                            attempt,
                            "the attempt starts otherwise than its commit announced"
                        );
                    }
                    same
                });
                if announced.is_some() {
                    // Published by the last commit: only this worker's metric is left.
                    self.pool.metrics.session(SessionEvent::resumed);
                    return;
                }
                self.started(task, &session, attempt, mode, ttls.first_start())
                    .await;
            }
            ExecutorEvent::Progress(p) => self.progress(task, p).await,
            ExecutorEvent::RunEnded { took } => self.pool.metrics.task_duration(took),
        }
    }

    /// Counts what a try came to (the worker's task metrics).
    pub(crate) fn outcome(&self, outcome: &Outcome) {
        let metrics = &self.pool.metrics;
        match outcome {
            Outcome::Retry { .. } => {
                metrics.task(TaskOutcome::failed);
                metrics.task(TaskOutcome::retried);
            }
            Outcome::Stop { failed: true, .. } => metrics.task(TaskOutcome::failed),
            Outcome::Commit(_) | Outcome::Stop { .. } | Outcome::Interrupted(_) => {}
        }
    }

    /// The plan is being handed back with its totals: nothing is pending for the pool.
    pub(crate) fn handed_back(&self) {
        self.tally.clear();
    }

    /// An event of this plan, by this worker.
    pub(crate) fn plan_event(&self, body: impl Into<EventBody>) -> Event {
        Event::new(Some(&self.plan), body).worker(&self.pool.id)
    }

    /// An event of `task`.
    pub(crate) fn event(&self, body: impl Into<EventBody>, task: &StoredTask) -> Event {
        self.plan_event(body).task(&task.id, task.index)
    }

    /// Stores and publishes an event; a failure is logged, not fatal (the committed state is
    /// the truth).
    pub(crate) async fn emit(&self, event: Event) {
        let call = Emit {
            plan: &self.plan,
            event: &event,
        };
        if let Err(e) = self.pool.store.call(&call).await {
            warn!(kind = %event.kind(), error = %e, "could not publish event");
        }
    }

    /// Adds to the plan's counters now (the pool's follow with the next transfer).
    pub(crate) async fn count(&self, counters: &[(Counter, i64)]) {
        if let Err(e) = self.pool.store.count(&self.plan, counters).await {
            warn!(error = %e, "could not update counters");
        }
        self.tally.mark();
    }

    /// Announces an attempt in one trip: `task_started`, then how its session starts, and the
    /// plan's counters of it (the pool's go to the tally).
    async fn started(
        &self,
        task: &StoredTask,
        start: &SessionStarted,
        attempt: u32,
        mode: AttemptMode,
        refresh_ttls: bool,
    ) {
        let session_id = start.id;
        let trace_id = self.trace_id.clone();
        let started = TaskStarted {
            attempt,
            session_id,
            mode,
            trace_id,
        };
        let mut events = vec![self.event(started, task)];
        let mut counts = Counts::default();
        let note = |from_worker: Option<&WorkerId>| SessionNote {
            session_id,
            from_worker: from_worker.cloned(),
        };
        match &start.how {
            How::First | How::Fresh(_) => {
                self.pool.metrics.session(SessionEvent::created);
                events.push(self.event(EventBody::SessionCreated(note(None)), task));
                counts.add(Counter::SessionsCreated, 1);
            }
            How::Fallback(reason) => {
                self.pool.metrics.fallback(*reason);
                events.push(self.event(
                    SessionFallback {
                        session_id,
                        reason: *reason,
                    },
                    task,
                ));
                counts
                    .add(Counter::SessionsCreated, 1)
                    .add(Counter::fallback(*reason), 1)
                    .add(Counter::Fallbacks, 1);
            }
            How::Rotated => {
                self.pool.metrics.session(SessionEvent::rotated);
                events.push(self.event(EventBody::SessionRotated(note(None)), task));
                counts
                    .add(Counter::SessionsCreated, 1)
                    .add(Counter::Rotations, 1);
            }
            How::Resume(prev) => {
                let handoff = prev.last_worker != self.pool.id;
                self.pool.metrics.session(if handoff {
                    SessionEvent::handoff
                } else {
                    SessionEvent::resumed
                });
                let from = note(Some(&prev.last_worker));
                let body = if handoff {
                    EventBody::SessionHandoff(from)
                } else {
                    EventBody::SessionResumed(from)
                };
                events.push(self.event(body, task));
                counts.add(Counter::ResumesAttempted, 1);
                if handoff {
                    counts.add(Counter::Handoffs, 1);
                }
            }
        }
        let call = Start {
            plan: &self.plan,
            events: &events,
            plan_counts: &counts,
            refresh_ttls,
        };
        if let Err(e) = self.pool.store.call(&call).await {
            warn!(error = %e, "could not publish the start of a task");
        }
        self.tally.mark();
    }

    /// `task_retrying`: the next attempt and why; `backoff` is the wait before it (a counted
    /// retry), `None` for one that starts at once in a new session.
    pub(crate) async fn retrying(
        &self,
        task: &StoredTask,
        next_attempt: u32,
        reason: &str,
        backoff: Option<Duration>,
    ) {
        let delay_ms = backoff.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.emit(self.event(
            TaskRetrying {
                attempt: next_attempt,
                reason: reason.to_owned(),
                delay_ms,
            },
            task,
        ))
        .await;
        if backoff.is_some() {
            self.count(&[(Counter::TaskRetries, 1)]).await;
        }
    }

    /// After a commit (which wrote the plan's counts): the plan's totals go to the pool once
    /// counts are a second old.
    pub(crate) async fn committed(&self) {
        self.tally.mark();
        if !self.tally.take_due() {
            return;
        }
        if let Err(e) = transfer(self.pool, &self.plan).await {
            // The next transfer (the hand-back at the latest) carries them.
            warn!(error = %e, "could not update the pool's counters");
        }
    }

    async fn progress(&self, task: &StoredTask, p: Progress) {
        let body = match p {
            Progress::ToolUse { tool, file_path } => {
                TaskProgress::ToolUse(ToolUse { tool, file_path })
            }
            Progress::ApiRetry {
                status,
                attempt,
                delay_ms,
            } => {
                self.pool.metrics.api_retry(status);
                if status == Some(429) && delay_ms >= RATE_LIMIT_PAUSE_MIN_MS {
                    self.pause_pool(task, delay_ms).await;
                }
                TaskProgress::ApiRetry(ApiRetry {
                    api_retry: true,
                    status,
                    cli_attempt: attempt,
                    delay_ms,
                })
            }
        };
        self.emit(self.event(body, task)).await;
    }

    /// A rate limit with a reset time: the CLI waits it out itself; the rest of the pool stops
    /// claiming until then instead of each worker burning its retries on the same limit.
    async fn pause_pool(&self, task: &StoredTask, delay_ms: u64) {
        let until = baton_core::time::now_millis() + delay_ms;
        let reason = format!(
            "rate limit (429) hit by plan {}; claims resume in {}s",
            self.plan,
            delay_ms.div_ceil(1000)
        );
        match self.pool.store.pause(&reason, delay_ms).await {
            Ok(true) => {
                warn!(delay_ms, "rate limited: pausing the pool");
                let ev = self.event(
                    PoolPaused {
                        reason,
                        retry_after_ms: Some(delay_ms),
                        until_ms: Some(until),
                        by: None,
                    },
                    task,
                );
                self.emit(ev).await;
                self.count(&[(Counter::PoolPauses, 1)]).await;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not pause the pool"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tally says the plan's totals are due once its oldest pending count is a second old,
    /// once, and nothing while nothing is pending.
    #[tokio::test(start_paused = true)]
    async fn counts_are_due_for_the_pool_a_second_after_the_first_pending_one() {
        let tally = PoolTally::default();
        assert!(!tally.take_due(), "nothing pending");
        tally.mark();
        tokio::time::advance(Duration::from_millis(600)).await;
        tally.mark(); // a later count does not move the first one's time
        tokio::time::advance(Duration::from_millis(399)).await;
        assert!(!tally.take_due(), "not a second yet");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(tally.take_due(), "a second old");
        assert!(!tally.take_due(), "taken once");
        tally.mark();
        tally.clear();
        tokio::time::advance(PoolTally::MAX_AGE).await;
        assert!(!tally.take_due(), "sent with a hand-back");
    }
}
