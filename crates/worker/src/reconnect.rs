//! Riding out Redis outages: a worker keeps its state, retries with backoff, logs the outage
//! once, and carries on when Redis returns. One backoff builder for every wait that grows,
//! [`redis_retry`] for single operations, and [`BlockingPop`] for the loops that block on a
//! list (claims and submissions) on a connection of their own.

use std::time::Duration;

use baton_connect::Conn;
use baton_core::WorkerId;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::store::{Popped, Store, StoreError};

/// The longest wait between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Delays growing exponentially from `min` to `max`, with jitter, never ending (`backon`).
pub(crate) fn backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Delays between reconnect attempts: from 100 ms, capped at 5 s.
fn reconnect_delays() -> impl Iterator<Item = Duration> {
    backoff(Duration::from_millis(100), MAX_RECONNECT_DELAY)
}

/// Retries a Redis operation with backoff until it succeeds or `stop` is cancelled. An error
/// that will not pass by waiting is logged and ends the retrying (`None`), as a stop does.
pub(crate) async fn redis_retry<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delays = reconnect_delays();
    let mut logged = false;
    loop {
        match op().await {
            Ok(v) => {
                if logged {
                    info!(what, "redis is back");
                }
                return Some(v);
            }
            Err(e) if !e.is_transient() => {
                error!(what, error = %e, cause = ?std::error::Error::source(&e), "redis refused the operation; not retrying");
                return None;
            }
            Err(e) => {
                if !logged {
                    warn!(what, error = %e, cause = ?std::error::Error::source(&e), "redis unavailable; retrying with backoff");
                    logged = true;
                }
                let delay = delays.next().unwrap_or(MAX_RECONNECT_DELAY);
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// The lists a worker blocks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PopFrom {
    /// Claims: ready list → this worker's in-flight list.
    Ready,
    /// Submissions: submit list → this worker's ingesting list.
    Submit,
}

/// A loop's blocking pops, on a connection of its own (a blocking command on the shared
/// connection would stall every other caller). A failed or stuck connection is dropped and
/// rebuilt with backoff, never reused; the outage is logged once.
pub(crate) struct BlockingPop<'s> {
    store: &'s Store,
    worker: &'s WorkerId,
    from: PopFrom,
    block: Duration,
    conn: Option<Conn>,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    down: bool,
}

impl<'s> BlockingPop<'s> {
    /// `worker`'s pops from `from`, each blocking for up to `block`.
    pub(crate) fn new(
        store: &'s Store,
        worker: &'s WorkerId,
        from: PopFrom,
        block: Duration,
    ) -> Self {
        Self {
            store,
            worker,
            from,
            block,
            conn: None,
            delays: Box::new(reconnect_delays()),
            down: false,
        }
    }

    /// Pops on the loop's connection (connecting first if needed) until Redis answers, and
    /// returns the answer; `None` once `stop` is cancelled.
    pub(crate) async fn next(&mut self, stop: &CancellationToken) -> Option<Popped> {
        loop {
            if stop.is_cancelled() {
                return None;
            }
            let failure = match self.conn.as_mut() {
                None => match self.store.blocking_conn(self.block).await {
                    Ok(c) => {
                        self.conn = Some(c);
                        continue;
                    }
                    Err(e) => e,
                },
                Some(conn) => {
                    let pop = async {
                        match self.from {
                            PopFrom::Ready => {
                                self.store
                                    .blocking_claim(conn, self.worker, self.block)
                                    .await
                            }
                            PopFrom::Submit => {
                                self.store
                                    .blocking_take_submission(conn, self.worker, self.block)
                                    .await
                            }
                        }
                    };
                    let popped = tokio::select! {
                        _ = stop.cancelled() => return None,
                        r = pop => r,
                    };
                    match popped {
                        Ok(v) => {
                            if self.down {
                                info!(from = ?self.from, "redis is back");
                                self.down = false;
                                self.delays = Box::new(reconnect_delays());
                            }
                            return Some(v);
                        }
                        Err(e) => {
                            self.conn = None;
                            e
                        }
                    }
                }
            };
            if !self.down {
                warn!(from = ?self.from, error = %failure, "cannot reach redis; reconnecting with backoff");
                self.down = true;
            }
            let delay = self.delays.next().unwrap_or(MAX_RECONNECT_DELAY);
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
