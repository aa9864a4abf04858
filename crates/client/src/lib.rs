//! baton-client: a baton pool as a reader sees it, written once for every reader.
//!
//! `baton status`, `baton watch`, the dashboard, the benchmark and the test harness all need
//! the same things from Redis: where a plan stands, its results and events, the dead letters,
//! the events as they happen (with nothing missed or repeated across a reconnect), and a wait
//! until something is true. They read them here, typed with baton-core's vocabulary
//! (`PlanId`, `PlanState`, `Counter`, `EventKind`), so a renamed field or state fails to
//! compile in every reader at once. Nothing here writes to Redis.
//!
//! # Layout
//! - [`Client`] (this module): the connection and key layout every read goes through, and
//!   [`ClientError`].
//! - [`plan`]: [`PlanView`] (a plan in one round trip), [`PlanDetail`] (with its results,
//!   pending tasks, events, transcript), the plan index, pool counters.
//! - [`dead`]: the dead-letter list, typed.
//! - [`limits`]: concurrency keys: limits, running and parked plans, daily budgets and spend.
//! - [`cursor`]: [`EventCursor`], a plan's stored events from a position, then the channel.
//! - [`schedules`]: the recurring plans, with what each fired.
//! - [`wait`]: typed waits: a plan's state, a pool counter, an event kind.

pub mod cursor;
pub mod dead;
pub mod limits;
pub mod plan;
pub mod reconnect;
pub mod schedules;
pub mod wait;

use std::time::Duration;

use baton_connect::{Connector, SharedConn, Timeouts};
use baton_core::Keys;

pub use cursor::{Delivered, Delivery, EventCursor, Scope};
pub use dead::StoredLetter;
pub use plan::{DetailParts, PlanDetail, PlanView};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected reply from redis")]
    Reply(#[from] redis::ParsingError),
    /// A record baton wrote does not decode (only the strict reads report it; the lenient ones
    /// used for display leave such a record out).
    #[error("could not decode {what}")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A wait ran out of time; `last` says what was seen last.
    #[error("{what} did not happen within {within:?} (last seen: {last})")]
    TimedOut {
        what: String,
        within: Duration,
        last: String,
    },
}

impl ClientError {
    /// True when the read may succeed if made again shortly: the connection broke, or Redis
    /// asked to retry (a Sentinel without a master during a failover, a Cluster moving slots).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Redis(e) if wait::transient_error(e))
    }
}

/// The reads of one pool: a shared connection (reconnecting after a failure) and its keys.
/// Cheap to clone.
#[derive(Clone)]
pub struct Client {
    conn: SharedConn,
    keys: Keys,
    /// How often a wait looks again.
    poll: Duration,
}

impl Client {
    /// A client over a connection the caller made (and may have checked).
    pub fn new(conn: SharedConn, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            poll: Duration::from_millis(100),
        }
    }

    /// A client that connects on its first read.
    pub fn connect(connector: &Connector, keys: Keys) -> Self {
        Self::new(connector.shared(Timeouts::default()), keys)
    }

    /// The same client, its waits looking again every `poll` (default 100 ms).
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The pool's key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle on the shared connection (for a caller's own commands).
    pub fn conn(&self) -> SharedConn {
        self.conn.clone()
    }

    /// A pub/sub connection subscribed to the pool's event channel.
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn subscribe(&self) -> Result<redis::aio::PubSub, ClientError> {
        let mut pubsub = self.conn.connector().pubsub().await?;
        pubsub.subscribe(self.keys.channel()).await?;
        Ok(pubsub)
    }
}
