//! baton-connect: connecting to Redis, the same way in every baton process: one URL names a single server, a
//! Redis Cluster or a Sentinel-managed master ([`Target`]), with TLS through rustls (the system's
//! trust roots by default, a CA file, client certificates for mutual TLS, or an explicit
//! insecure switch for self-signed servers). The flags are [`RedisArgs`], shared by the worker
//! and the `baton` CLI.
//!
//! A [`Connector`] makes connections: [`Conn`] (multiplexed, for any command and script) and
//! pub/sub. [`SharedConn`] is the one handle a process shares: it connects on first use and,
//! after a connection breaks (or a failed-over master turns read-only), connects again on the
//! next command, asking the Sentinels where the master is now.
//!
//! # Layout
//! - `target`: what a URL names ([`Target`]);
//! - `build`: the TLS settings and the redis clients a target needs;
//! - `conn`: [`Conn`] and [`SharedConn`];
//! - this module: the flags, the errors and [`Connector`].

mod build;
mod conn;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::sentinel::SentinelClient;

use build::Tls;

pub use conn::{Conn, SharedConn};
pub use target::{redact_url, Target, TargetError};

/// How to reach Redis: the flags (and `BATON_*` variables) every baton binary takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RedisArgs {
    /// Redis URL. One server: redis://[user:password@]host:port[/db]. TLS: rediss://…. Redis
    /// Cluster: redis+cluster://[user:password@]host:port,host:port (seed nodes). Sentinel:
    /// redis+sentinel://[user:password@]host:26379,host:26379/<master name>[/db] (the credentials
    /// are the master's). Each with TLS as rediss+cluster:// and rediss+sentinel://.
    #[arg(
        long,
        global = true,
        env = "BATON_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// With TLS: a PEM file of the certificate authorities to trust, instead of the system's
    /// trust roots.
    #[arg(long, global = true, env = "BATON_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// With TLS: the client certificate (PEM) for servers that require mutual TLS; needs
    /// --redis-client-key.
    #[arg(long, global = true, env = "BATON_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,
    /// With TLS: the client certificate's private key (PEM).
    #[arg(long, global = true, env = "BATON_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,
    /// With TLS: accept any server certificate (self-signed servers such as some hosted
    /// offerings). Logged as a warning: the connection is encrypted but not authenticated.
    #[arg(long, global = true, env = "BATON_REDIS_TLS_INSECURE")]
    pub redis_tls_insecure: bool,
}

/// Why baton cannot even try to connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{flag} {path}: {source}")]
    File {
        flag: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("--redis-url {url}: {source}")]
    Client {
        url: String,
        source: redis::RedisError,
    },
}

/// How long connecting and one reply may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(10),
        }
    }
}

/// Makes connections to the deployment a [`RedisArgs`] names.
#[derive(Clone)]
pub struct Connector {
    target: Target,
    kind: Arc<Kind>,
}

#[expect(
    clippy::large_enum_variant,
    reason = "built once per process and kept behind an Arc"
)]
enum Kind {
    Single(redis::Client),
    /// The cluster client, and a client per seed node (pub/sub goes to one node: Redis
    /// Cluster forwards every `PUBLISH` to all nodes).
    Cluster {
        client: ClusterClient,
        seeds: Vec<redis::Client>,
    },
    Sentinel(Arc<tokio::sync::Mutex<SentinelClient>>),
}

impl Connector {
    /// Checks the URL and reads the TLS files; connects nothing yet.
    ///
    /// # Errors
    /// An invalid URL, an unreadable or invalid TLS file, TLS options without a TLS URL.
    pub fn new(args: &RedisArgs) -> Result<Self, ConnectError> {
        let target = Target::parse(&args.redis_url)?;
        let tls = Tls::from_args(args, &target)?;
        let kind = match &target {
            Target::Single { url } => Kind::Single(tls.client(url)?),
            Target::Cluster { nodes } => build::cluster(&tls, nodes, &args.redis_url)?,
            Target::Sentinel {
                sentinels,
                master_name,
                master_url,
            } => build::sentinel(&tls, sentinels, master_name, master_url, &args.redis_url)?,
        };
        if tls.insecure {
            tracing::warn!(
                "--redis-tls-insecure: the server's certificate is not checked; the connection \
                 is encrypted but anyone on the path can pose as the server"
            );
        }
        Ok(Self {
            target,
            kind: Arc::new(kind),
        })
    }

    /// What this connects to, without the password.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// True for a Redis Cluster (commands of one call must then stay in one slot).
    pub fn is_cluster(&self) -> bool {
        matches!(*self.kind, Kind::Cluster { .. })
    }

    /// A new connection. Give blocking commands one of their own, with a response timeout
    /// longer than their block.
    ///
    /// # Errors
    /// Redis (or every Sentinel, or every seed node) cannot be reached.
    pub async fn connect(&self, timeouts: Timeouts) -> redis::RedisResult<Conn> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        match &*self.kind {
            Kind::Single(client) => Ok(Conn::Single(
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await?,
            )),
            Kind::Cluster { client, .. } => {
                let cfg = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeouts.connect)
                    .set_response_timeout(timeouts.response);
                Ok(Conn::Cluster(
                    client.get_async_connection_with_config(cfg).await?,
                ))
            }
            Kind::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                Ok(Conn::Single(
                    master
                        .get_multiplexed_async_connection_with_config(&cfg)
                        .await?,
                ))
            }
        }
    }

    /// A pub/sub connection: to the server, to the current master, or to the first seed node
    /// of a Cluster that answers.
    ///
    /// # Errors
    /// Nothing could be reached.
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        match &*self.kind {
            Kind::Single(client) => client.get_async_pubsub().await,
            Kind::Cluster { seeds, .. } => {
                let mut last = None;
                for seed in seeds {
                    match seed.get_async_pubsub().await {
                        Ok(p) => return Ok(p),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::Io, "no seed node"))
                }))
            }
            Kind::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await?;
                master.get_async_pubsub().await
            }
        }
    }

    /// The shared handle of a process (connects on first use, reconnects after failures).
    pub fn shared(&self, timeouts: Timeouts) -> SharedConn {
        SharedConn::new(self.clone(), timeouts)
    }
}
