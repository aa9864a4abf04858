//! Typed waits: until a plan is in one of some states, a pool counter reaches a value, or a
//! plan has stored an event of a kind. Each looks again every [`Client::with_poll`] interval
//! and gives up after its `within` with [`ClientError::TimedOut`], saying what it saw last.
//! A state or counter is a baton-core type: a typo fails to compile instead of waiting.
//! A read that finds the connection broken or Redis asking to retry (a restart, a failover)
//! is looked at again on the next poll, as the shared connection reconnects; other errors end
//! the wait.

use std::fmt::Write;
use std::time::Duration;

use baton_core::{Counter, Event, EventKind, PlanId, PlanState};
use tokio::time::Instant;

use crate::{Client, ClientError, PlanView};

/// Ok(None) for a read that failed only because the connection is broken for now.
fn transient<T>(read: Result<T, ClientError>) -> Result<Option<T>, ClientError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(ClientError::Redis(e)) if transient_error(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `e` says to look again later: the connection broke, or Redis says retry (a
/// Sentinel that has no master during a failover, a Cluster moving slots).
pub(crate) fn transient_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || !matches!(e.retry_method(), redis::RetryMethod::NoRetry)
}

const BROKEN: &str = "redis was unreachable or asked to retry";

impl Client {
    /// After a look that found nothing: an error once `deadline` passed, else a pause of one
    /// poll interval.
    async fn again(
        &self,
        deadline: Instant,
        within: Duration,
        what: impl FnOnce() -> String,
        last: String,
    ) -> Result<(), ClientError> {
        if Instant::now() > deadline {
            return Err(ClientError::TimedOut {
                what: what(),
                within,
                last,
            });
        }
        tokio::time::sleep(self.poll).await;
        Ok(())
    }

    /// Waits until the plan exists and `pred` holds for it; returns the view that satisfied it.
    ///
    /// # Errors
    /// Redis failed, or `within` passed.
    pub async fn wait_plan(
        &self,
        plan: &PlanId,
        what: &str,
        within: Duration,
        mut pred: impl FnMut(&PlanView) -> bool,
    ) -> Result<PlanView, ClientError> {
        let deadline = Instant::now() + within;
        loop {
            let last = match transient(self.plan(plan).await)? {
                Some(view) => {
                    let last = describe(view.as_ref());
                    if let Some(v) = view.filter(|v| pred(v)) {
                        return Ok(v);
                    }
                    last
                }
                None => BROKEN.to_owned(),
            };
            self.again(deadline, within, || format!("plan {plan}: {what}"), last)
                .await?;
        }
    }

    /// Waits until the plan's state is one of `states`; returns it.
    ///
    /// # Errors
    /// Redis failed, or `within` passed.
    pub async fn wait_state(
        &self,
        plan: &PlanId,
        states: &[PlanState],
        within: Duration,
    ) -> Result<PlanState, ClientError> {
        let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let view = self
            .wait_plan(plan, &format!("reach {names:?}"), within, |v| {
                v.state().is_some_and(|s| states.contains(&s))
            })
            .await?;
        // The predicate held, so the state is one of `states`.
        Ok(view.state().unwrap_or(states[0]))
    }

    /// Waits until the pool-wide `counter` is at least `n`; returns its value.
    ///
    /// # Errors
    /// Redis failed, or `within` passed.
    pub async fn wait_counter(
        &self,
        counter: Counter,
        n: i64,
        within: Duration,
    ) -> Result<i64, ClientError> {
        let deadline = Instant::now() + within;
        loop {
            let last = match transient(self.pool_counter(counter).await)? {
                Some(v) if v >= n => return Ok(v),
                Some(v) => v.to_string(),
                None => BROKEN.to_owned(),
            };
            self.again(
                deadline,
                within,
                || format!("counter {counter} reaching {n}"),
                last,
            )
            .await?;
        }
    }

    /// Waits until the plan's stored events hold one of `kind`; returns the first such.
    ///
    /// # Errors
    /// Redis failed, an event does not decode, or `within` passed.
    pub async fn wait_event(
        &self,
        plan: &PlanId,
        kind: EventKind,
        within: Duration,
    ) -> Result<Event, ClientError> {
        self.wait_events(plan, &format!("an event {kind}"), within, |evs| {
            evs.iter().find(|e| e.kind() == kind).cloned()
        })
        .await
    }

    /// Waits until `found` finds something in the plan's stored events (oldest first).
    ///
    /// # Errors
    /// Redis failed, an event does not decode, or `within` passed.
    pub async fn wait_events<T>(
        &self,
        plan: &PlanId,
        what: &str,
        within: Duration,
        mut found: impl FnMut(&[Event]) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + within;
        loop {
            let last = match transient(self.events(plan).await)? {
                Some(evs) => {
                    if let Some(v) = found(&evs) {
                        return Ok(v);
                    }
                    evs.iter().fold(String::new(), |mut s, e| {
                        let _ = write!(s, "{} ", e.kind());
                        s
                    })
                }
                None => BROKEN.to_owned(),
            };
            self.again(deadline, within, || format!("plan {plan}: {what}"), last)
                .await?;
        }
    }
}

/// A plan's state and progress in a few words (for a wait's error).
fn describe(view: Option<&PlanView>) -> String {
    match view {
        None => "no such plan".to_owned(),
        Some(v) => format!(
            "state {}, {} of {} task(s) done",
            v.state().map_or("(none)", |s| s.as_str()),
            v.tasks_done(),
            v.tasks_total()
        ),
    }
}
