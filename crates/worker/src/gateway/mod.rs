//! The model gateway: the only way a CLI run reaches the model, and the reason the API key
//! never enters a box.
//!
//! Each hold gets a [`Grant`]: a random token good while the hold lasts. The CLI is given the
//! token as its `ANTHROPIC_API_KEY` and the gateway as its `ANTHROPIC_BASE_URL`. The gateway
//! checks the token, puts the worker's real credentials in its place (`ANTHROPIC_API_KEY` as
//! `x-api-key`, or `ANTHROPIC_AUTH_TOKEN` as a bearer token, from the worker's environment),
//! and forwards the request to the real endpoint (the worker's `ANTHROPIC_BASE_URL`, else
//! Anthropic's), streaming the answer back as it comes: TLS to the endpoint, server-sent
//! events and the CLI's own retries are untouched. On the way it counts each grant's requests
//! and tokens (from the stream's `message_start` and `message_delta` usage).
//!
//! Two doors: a unix socket, which boxes reach through their relay (`sandbox::relay`), and a
//! loopback TCP port for CLIs run without a box (`--sandbox off`). Through the socket the
//! gateway is also the boxes' HTTP CONNECT proxy, to the hosts of `--sandbox-allow-host` only.
//!
//! Public for the benchmark, which measures what it adds to a request.
//!
//! # Layout
//! - this module: the gateway, its doors, grants and the worker's upstream.
//! - `forward`: a model request passed on (paths, headers, credential, budget, usage).
//! - `proxy`: the boxes' CONNECT tunnels.
//! - `usage`: what each grant used, and the budget it is held to.

mod forward;
mod proxy;
mod usage;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::hosts::HostList;
pub(crate) use usage::{Usage, Used};

/// The endpoint used when the worker's environment names none.
const DEFAULT_UPSTREAM: &str = "https://api.anthropic.com";
/// What a request refused for the plan's budget is answered with (the CLI shows it as an API
/// error; the attempt reads the grant's own flag, not this text).
const BUDGET_REFUSAL: &str = "the plan's budget is spent";
/// Largest request body forwarded (a long conversation with tool results is a few MiB).
const MAX_REQUEST: usize = 64 << 20;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the model gateway cannot listen on {what}")]
    Listen {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where the gateway forwards to, and with which credentials.
#[derive(Debug, Clone)]
pub struct Upstream {
    base_url: String,
    credential: Credential,
}

impl Upstream {
    /// The worker's: `ANTHROPIC_BASE_URL` (else Anthropic's API), with `ANTHROPIC_API_KEY` (as
    /// `x-api-key`) or `ANTHROPIC_AUTH_TOKEN` (as a bearer token).
    pub fn from_env() -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let credential = match (env("ANTHROPIC_API_KEY"), env("ANTHROPIC_AUTH_TOKEN")) {
            (Some(k), _) => Credential::ApiKey(k),
            (None, Some(t)) => Credential::Bearer(t),
            (None, None) => Credential::None,
        };
        Self::new(
            env("ANTHROPIC_BASE_URL").unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned()),
            credential,
        )
    }

    /// True when it has a credential to put in place of the holds' tokens.
    pub fn has_credential(&self) -> bool {
        !matches!(self.credential, Credential::None)
    }

    /// `base_url` with an API key (benchmarks and tests).
    pub fn with_api_key(base_url: &str, key: &str) -> Self {
        Self::new(base_url.to_owned(), Credential::ApiKey(key.to_owned()))
    }

    fn new(base_url: String, credential: Credential) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credential,
        }
    }
}

/// The worker's real credentials, as the endpoint takes them.
#[derive(Clone)]
enum Credential {
    ApiKey(String),
    Bearer(String),
    None,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ApiKey(_) => "ApiKey(..)",
            Self::Bearer(_) => "Bearer(..)",
            Self::None => "None",
        })
    }
}

/// What every connection shares.
struct Shared {
    grants: Mutex<HashMap<String, Arc<Usage>>>,
    upstream: String,
    credential: Credential,
    client: reqwest::Client,
    allow: HostList,
}

/// The running gateway; stopped (and its socket removed) on drop.
pub struct Gateway {
    shared: Arc<Shared>,
    socket_dir: PathBuf,
    socket: PathBuf,
    /// `http://127.0.0.1:<port>`: the door for CLIs without a box.
    loopback: String,
    stop: CancellationToken,
}

/// Which door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// The unix socket: a box's relay.
    Boxed,
    /// Loopback TCP: a CLI without a box.
    Loopback,
}

impl Gateway {
    /// Starts the gateway in front of `upstream`; boxes' CONNECT proxy reaches the hosts of
    /// `allow` (the `--sandbox-allow-host` entries).
    ///
    /// # Errors
    /// [`GatewayError::Listen`].
    pub async fn start<S: AsRef<str>>(
        upstream: Upstream,
        allow: &[S],
    ) -> Result<Self, GatewayError> {
        let Upstream {
            base_url: upstream,
            credential,
        } = upstream;
        if matches!(credential, Credential::None) {
            warn!("neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set: the model gateway forwards requests without credentials");
        }
        let allow = HostList::new(allow);
        let client = reqwest::Client::builder()
            .user_agent(concat!("baton-gateway/", env!("CARGO_PKG_VERSION")))
            // The CLI's requests go where the operator said, nowhere a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .map_err(|e| GatewayError::Listen {
                what: "an HTTP client".into(),
                source: std::io::Error::other(e),
            })?;
        let shared = Arc::new(Shared {
            grants: Mutex::new(HashMap::new()),
            upstream,
            credential,
            client,
            allow,
        });
        let socket_dir =
            std::env::temp_dir().join(format!("baton-gw-{}", uuid::Uuid::new_v4().simple()));
        let listen_err = |what: &Path| {
            let what = what.display().to_string();
            move |source| GatewayError::Listen { what, source }
        };
        std::fs::create_dir(&socket_dir).map_err(listen_err(&socket_dir))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&socket_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(listen_err(&socket_dir))?;
        }
        let socket = socket_dir.join("gateway.sock");
        let unix = UnixListener::bind(&socket).map_err(listen_err(&socket))?;
        let tcp = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(listen_err(Path::new("127.0.0.1:0")))?;
        let tcp_addr = tcp
            .local_addr()
            .map_err(listen_err(Path::new("127.0.0.1:0")))?;
        let stop = CancellationToken::new();
        tokio::spawn(accept_unix(unix, shared.clone(), stop.clone()));
        tokio::spawn(accept_tcp(tcp, shared.clone(), stop.clone()));
        debug!(socket = %socket.display(), tcp = %tcp_addr, upstream = %shared.upstream, "model gateway listening");
        Ok(Self {
            shared,
            socket_dir,
            socket,
            loopback: format!("http://{tcp_addr}"),
            stop,
        })
    }

    /// A new token for one hold.
    pub fn grant(&self) -> Grant {
        let token = format!(
            "baton-gw-{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let usage = Arc::new(Usage::default());
        self.shared
            .grants
            .lock()
            .expect("grants lock is never held across an await")
            .insert(token.clone(), usage.clone());
        Grant {
            token,
            usage,
            shared: self.shared.clone(),
        }
    }

    /// The unix socket boxes reach.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The base URL for a CLI run without a box.
    pub fn loopback_url(&self) -> &str {
        &self.loopback
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

/// A hold's token; revoked when dropped (the hold ended).
pub struct Grant {
    token: String,
    usage: Arc<Usage>,
    shared: Arc<Shared>,
}

impl Grant {
    /// The token the CLI presents as its API key.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// What the hold's CLI runs have used so far.
    pub(crate) fn usage(&self) -> &Usage {
        &self.usage
    }

    /// From now on this grant's requests count as `hold`'s, and its budget holds them (a spare
    /// CLI, started with a grant of its own, claimed by a hold). The token stays good until
    /// this grant drops, with the process that holds it.
    pub(crate) fn count_as(&self, hold: &Grant) {
        if let Ok(mut g) = self.shared.grants.lock() {
            if let Some(usage) = g.get_mut(&self.token) {
                *usage = hold.usage.clone();
            }
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Ok(mut g) = self.shared.grants.lock() {
            g.remove(&self.token);
        }
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Grant(..)")
    }
}

async fn accept_unix(listener: UnixListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            conn = listener.accept() => match conn {
                Ok((io, _)) => { tokio::spawn(serve(io, shared.clone(), Door::Boxed)); }
                Err(e) => warn!(error = %e, "model gateway: accept failed"),
            },
        }
    }
}

async fn accept_tcp(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            conn = listener.accept() => match conn {
                Ok((io, _)) => {
                    // Answers go out in several writes (headers, then events): without this,
                    // Nagle's algorithm and the peer's delayed ACK hold each back ~40 ms.
                    let _ = io.set_nodelay(true);
                    tokio::spawn(serve(io, shared.clone(), Door::Loopback));
                }
                Err(e) => warn!(error = %e, "model gateway: accept failed"),
            },
        }
    }
}

async fn serve<I>(io: I, shared: Arc<Shared>, door: Door)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(req, shared.clone(), door));
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// An error answer in the API's own shape, so the CLI reports it as it would the endpoint's.
fn api_error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": format!("baton gateway: {message}")},
    });
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    door: Door,
) -> Result<Response<Body>, Infallible> {
    if req.method() == Method::CONNECT {
        return Ok(match door {
            Door::Boxed => proxy::connect(req, &shared),
            Door::Loopback => api_error(
                StatusCode::FORBIDDEN,
                "permission_error",
                "CONNECT is for sandboxed runs only",
            ),
        });
    }
    let usage = presented_token(&req).and_then(|t| {
        shared
            .grants
            .lock()
            .expect("grants lock is never held across an await")
            .get(t)
            .cloned()
    });
    let Some(usage) = usage else {
        return Ok(api_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "no valid hold token (a token is good while its hold lasts)",
        ));
    };
    Ok(forward::forward(req, &shared, usage).await)
}

/// The token a request presents: `x-api-key`, or `Authorization: Bearer`.
fn presented_token(req: &Request<Incoming>) -> Option<&str> {
    let h = req.headers();
    if let Some(k) = h.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k);
    }
    h.get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}
