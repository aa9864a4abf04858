//! The worker's view of Redis: one multiplexed, self-reconnecting connection that every slot
//! shares for ordinary commands (concurrent callers are pipelined on it), dedicated connections
//! for blocking pops, every script called through its typed call ([`Store::call`], the scripts
//! and their replies are in `baton_core::scripts`), and the plain commands in `commands`.
//!
//! Not a connection pool: deadpool-redis checks each connection out with `UNWATCH` + `PING`,
//! a round trip more than the command itself, and a multiplexed connection needs no checkout.

mod commands;

pub(crate) use commands::Popped;

use std::time::Duration;

use baton_core::scripts::{Env, ScriptCall};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, FromRedisValue};

/// A Redis command or script that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    /// A script answered something its reply type does not read: a bug or a foreign script
    /// under baton's name, which waiting will not fix.
    #[error("unexpected reply from a baton script")]
    Reply(#[source] redis::ParsingError),
}

impl StoreError {
    /// True for failures that can pass (a dropped connection, a timeout, Redis loading its
    /// data or out of memory): worth retrying. False for answers that will not change (a wrong
    /// key type, a script error, a reply that does not decode): retrying those would hang a
    /// worker loop silently.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Redis(e) => {
                e.code() == Some("OOM") || !matches!(e.retry_method(), redis::RetryMethod::NoRetry)
            }
            Self::Reply(_) => false,
        }
    }
}

/// Longest a single command may take before it counts as failed (scripts move transcripts of
/// a few hundred KB; redis-rs's default of 500 ms is too tight for a busy server).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections, the key layout and the pool's limits.
#[derive(Clone)]
pub(crate) struct Store {
    shared: ConnectionManager,
    client: redis::Client,
    env: Env,
}

impl Store {
    /// A store for `url`. Connects lazily.
    ///
    /// # Errors
    /// An invalid URL.
    pub(crate) fn new(url: &str, env: Env) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        // Reconnects after a failure on its own; a command sent meanwhile fails at once and
        // the caller's own backoff (`reconnect::redis_retry`) decides what to do.
        let cfg = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), cfg)?;
        Ok(Self {
            shared,
            client,
            env,
        })
    }

    /// The shared connection (a cheap handle; concurrent commands on it are pipelined).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A connection of its own for blocking pops of up to `block` (a blocking command on a
    /// shared multiplexed connection would stall every other caller).
    pub(crate) async fn blocking_conn(
        &self,
        block: Duration,
    ) -> Result<MultiplexedConnection, StoreError> {
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(block + RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        Ok(self
            .client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?)
    }

    /// Runs one script call and decodes its reply.
    pub(crate) async fn call<C: ScriptCall>(&self, call: &C) -> Result<C::Reply, StoreError> {
        let invocation = call.invocation(&self.env);
        let reply: redis::Value = invocation.invoke_async(&mut self.conn()).await?;
        C::Reply::from_redis_value(reply).map_err(StoreError::Reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_retried() {
        let dropped: redis::RedisError =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
        assert!(StoreError::Redis(dropped).is_transient());
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "bad command"));
        assert!(!StoreError::Redis(refused).is_transient());
        let undecodable = redis::ParsingError::from("commit.lua returned \"what\"");
        assert!(!StoreError::Reply(undecodable).is_transient());
    }
}
