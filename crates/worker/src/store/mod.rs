//! The worker's view of Redis: one multiplexed, self-reconnecting connection that every slot
//! shares for ordinary commands (concurrent callers are pipelined on it; `baton_connect` makes it
//! for a single server, a Cluster or a Sentinel-managed master), dedicated connections for
//! blocking pops, every script called through its typed call ([`Store::call`], the scripts
//! and their replies are in `baton_core::scripts`), and the plain commands in `commands` and
//! `pool_commands`.
//!
//! Not a connection pool: deadpool-redis checks each connection out with `UNWATCH` + `PING`,
//! a round trip more than the command itself, and a multiplexed connection needs no checkout.

mod commands;
mod pool_commands;

pub(crate) use commands::Popped;

use std::time::Duration;

use baton_connect::{Conn, Connector, SharedConn, Timeouts};
use baton_core::scripts::{Env, ScriptCall};
use redis::FromRedisValue;

/// A Redis command or script that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("redis command failed: {0}")]
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
    shared: SharedConn,
    env: Env,
}

impl Store {
    /// A store that connects through `connector` (lazily, on the first command).
    pub(crate) fn new(connector: &Connector, env: Env) -> Self {
        // Reconnects on the next command after a failure; a command sent meanwhile fails at
        // once and the caller's own backoff (`reconnect::redis_retry`) decides what to do.
        let shared = connector.shared(Timeouts {
            connect: CONNECT_TIMEOUT,
            response: RESPONSE_TIMEOUT,
        });
        Self { shared, env }
    }

    /// The key layout and the pool's limits.
    pub(crate) fn env(&self) -> &Env {
        &self.env
    }

    /// The shared connection (a cheap handle; concurrent commands on it are pipelined).
    pub(crate) fn conn(&self) -> SharedConn {
        self.shared.clone()
    }

    /// A connection of its own for blocking pops of up to `block` (a blocking command on a
    /// shared multiplexed connection would stall every other caller).
    pub(crate) async fn blocking_conn(&self, block: Duration) -> Result<Conn, StoreError> {
        Ok(self
            .shared
            .connector()
            .connect(Timeouts {
                connect: CONNECT_TIMEOUT,
                response: block + RESPONSE_TIMEOUT,
            })
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
