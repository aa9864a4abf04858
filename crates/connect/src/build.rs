//! Building the redis clients a [`Target`] needs from the flags: the TLS settings read once
//! ([`Tls`]: the PEM files, the insecure switch), then a single client, a cluster client with a
//! client per seed node, or a Sentinel client. Nothing connects here; this is the part that
//! changes with the redis crate's builders.

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{ClientTlsConfig, IntoConnectionInfo, TlsCertificates, TlsMode};
use std::path::Path;
use std::sync::Arc;

use crate::{redact_url, ConnectError, Kind, RedisArgs, Target, Timeouts};

/// The TLS settings of every client of one target.
pub(crate) struct Tls {
    /// The CA file and client certificate, if any was given.
    certs: Option<TlsCertificates>,
    /// `--redis-tls-insecure`: accept any server certificate.
    pub(crate) insecure: bool,
    /// The URL asks for TLS (`rediss…`).
    on: bool,
}

fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|source| ConnectError::File {
        flag,
        path: path.display().to_string(),
        source,
    })
}

/// A redis error about the URL as given (`--redis-url`), password redacted.
fn fail(url: &str, source: redis::RedisError) -> ConnectError {
    ConnectError::Client {
        url: redact_url(url),
        source,
    }
}

impl Tls {
    /// Reads the TLS flags and files.
    ///
    /// # Errors
    /// TLS options without a TLS URL, a client certificate without its key (or the other way
    /// round), an unreadable file.
    pub(crate) fn from_args(args: &RedisArgs, target: &Target) -> Result<Self, ConnectError> {
        let tls_options = args.redis_ca_file.is_some()
            || args.redis_client_cert.is_some()
            || args.redis_client_key.is_some()
            || args.redis_tls_insecure;
        if tls_options && !target.uses_tls() {
            return Err(ConnectError::Tls(format!(
                "TLS options (--redis-ca-file, --redis-client-cert/key, --redis-tls-insecure) need a \
                 TLS URL: rediss://… instead of {}",
                redact_url(&args.redis_url)
            )));
        }
        let client_tls = match (&args.redis_client_cert, &args.redis_client_key) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_pem("--redis-client-cert", cert)?,
                client_key: read_pem("--redis-client-key", key)?,
            }),
            (None, None) => None,
            _ => return Err(ConnectError::Tls(
                "--redis-client-cert and --redis-client-key go together (mutual TLS needs both)"
                    .into(),
            )),
        };
        let root_cert = match &args.redis_ca_file {
            Some(p) => Some(read_pem("--redis-ca-file", p)?),
            None => None,
        };
        let certs = (client_tls.is_some() || root_cert.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        });
        Ok(Self {
            certs,
            insecure: args.redis_tls_insecure,
            on: target.uses_tls(),
        })
    }

    /// The URL with the redis crate's `#insecure` mark when certificates are not checked.
    fn url(&self, url: &str) -> String {
        if self.insecure && !url.contains('#') {
            format!("{url}#insecure")
        } else {
            url.to_owned()
        }
    }

    /// The mode for builders that take one, if the target uses TLS.
    fn mode(&self) -> Option<TlsMode> {
        self.on.then_some(if self.insecure {
            TlsMode::Insecure
        } else {
            TlsMode::Secure
        })
    }

    /// A client of one server.
    pub(crate) fn client(&self, url: &str) -> Result<redis::Client, ConnectError> {
        let url = self.url(url);
        let built = match &self.certs {
            Some(c) => redis::Client::build_with_tls(url.as_str(), c.clone()),
            None => redis::Client::open(url.as_str()),
        };
        built.map_err(|source| fail(&url, source))
    }
}

/// A cluster client from the seed nodes, and a client per seed for pub/sub.
pub(crate) fn cluster(tls: &Tls, nodes: &[String], redis_url: &str) -> Result<Kind, ConnectError> {
    let infos = nodes
        .iter()
        .map(|n| tls.url(n).as_str().into_connection_info())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(redis_url, e))?;
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(Timeouts::default().connect)
        .response_timeout(Timeouts::default().response);
    if let Some(mode) = tls.mode() {
        builder = builder.tls(mode);
    }
    if let Some(c) = &tls.certs {
        builder = builder.certs(c.clone());
    }
    let client = builder.build().map_err(|e| fail(redis_url, e))?;
    let seeds = nodes
        .iter()
        .map(|n| tls.client(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Kind::Cluster { client, seeds })
}

/// A Sentinel client for the master `master_name`, with the credentials and database of
/// `master_url`.
pub(crate) fn sentinel(
    tls: &Tls,
    sentinels: &[String],
    master_name: &str,
    master_url: &str,
    redis_url: &str,
) -> Result<Kind, ConnectError> {
    let addrs = sentinels
        .iter()
        .map(|s| {
            tls.url(s)
                .as_str()
                .into_connection_info()
                .map(|i| i.addr().clone())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(redis_url, e))?;
    let master = tls
        .url(master_url)
        .as_str()
        .into_connection_info()
        .map_err(|e| fail(redis_url, e))?;
    let settings = master.redis_settings();
    let mut builder = SentinelClientBuilder::new(addrs, master_name, SentinelServerType::Master)
        .map_err(|e| fail(redis_url, e))?
        .set_client_to_redis_db(settings.db());
    if let Some(u) = settings.username() {
        builder = builder.set_client_to_redis_username(u);
    }
    if let Some(p) = settings.password() {
        builder = builder.set_client_to_redis_password(p);
    }
    if let Some(mode) = tls.mode() {
        builder = builder
            .set_client_to_redis_tls_mode(mode)
            .set_client_to_sentinel_tls_mode(mode);
        if let Some(c) = &tls.certs {
            builder = builder
                .set_client_to_redis_certificates(c.clone())
                .set_client_to_sentinel_certificates(c.clone());
        }
    }
    let client = builder.build().map_err(|e| fail(redis_url, e))?;
    Ok(Kind::Sentinel(Arc::new(tokio::sync::Mutex::new(client))))
}
