//! The connection types: [`Conn`], one multiplexed connection (to a server or master, or a
//! Cluster connection that routes each command to its slot's node), and [`SharedConn`], the
//! handle a whole process shares, which replaces a broken connection on the next command.

use std::sync::Arc;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value};

use super::{Connector, Timeouts};

/// One connection: cheap to clone (clones share it), usable for every command and script.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// True when `e` means the connection itself is no good (closed, timed out, or to a master
/// that failed over and now refuses writes), rather than that the command failed.
fn connection_broken(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

/// The connection a process shares. Connects on first use; when a command finds the
/// connection broken, the command fails (callers retry with their own backoff) and the next
/// one connects afresh (for Sentinel: to wherever the master is now). A Cluster connection
/// follows `MOVED`/`ASK` and reconnects nodes by itself, so it is kept.
#[derive(Clone)]
pub struct SharedConn {
    connector: Connector,
    timeouts: Timeouts,
    /// The live connection (a cheap handle, cloned per command without waiting).
    current: Arc<std::sync::RwLock<Option<Conn>>>,
    /// Held while connecting, so that one caller connects and the others wait for it.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl SharedConn {
    pub(super) fn new(connector: Connector, timeouts: Timeouts) -> Self {
        Self {
            connector,
            timeouts,
            current: Arc::new(std::sync::RwLock::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn live(&self) -> Option<Conn> {
        self.current.read().ok()?.clone()
    }

    /// The live connection, connecting if there is none.
    ///
    /// # Errors
    /// Redis cannot be reached.
    pub async fn connection(&self) -> redis::RedisResult<Conn> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        let fresh = self.connector.connect(self.timeouts).await?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// Forgets the connection after `e` if it shows the connection is broken.
    fn after_error(&self, e: &RedisError) {
        if connection_broken(e) && !self.connector.is_cluster() {
            if let Ok(mut current) = self.current.write() {
                *current = None;
            }
        }
    }

    /// The connector it connects with.
    pub fn connector(&self) -> &Connector {
        &self.connector
    }
}

impl ConnectionLike for SharedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let reply = conn.req_packed_command(cmd).await;
            if let Err(e) = &reply {
                self.after_error(e);
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            let reply = conn.req_packed_commands(pipeline, offset, count).await;
            if let Err(e) = &reply {
                self.after_error(e);
            }
            reply
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
