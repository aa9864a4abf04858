//! Webhooks (plan option `notify`): the worker that produces one of the events a plan asks for
//! POSTs it to the plan's URL, as the JSON published on the channel, signed with HMAC-SHA256
//! over `"<timestamp>.<body>"` (`X-Baton-Timestamp: <unix seconds>`, `X-Baton-Signature:
//! sha256=<hex>`, key: the worker's `BATON_WEBHOOK_SECRET`; Stripe's scheme). The timestamp is
//! signed with the body, so a receiver that refuses old timestamps (the README suggests five
//! minutes) cannot be made to accept a recorded delivery again later.
//!
//! A delivery runs in the background and never blocks or fails the plan; it is tracked, so a
//! worker that shuts down gives the deliveries under way a bounded grace ([`Webhooks::finish`])
//! and records each one still undelivered after it as `webhook_failed` ("the worker shut
//! down"), never dropping one silently. It is retried with
//! backoff (`backon`) for `--webhook-retry-for` (a 4xx answer other than 408 and 429 is not
//! retried: the receiver refused that body; nor is a 3xx: redirects are never followed, since
//! one could lead past the allow list, and asking again gets the same redirect); a delivery
//! given up, or refused because the
//! URL's host is not on the worker's `--webhook-allow` list (empty by default, so a document
//! cannot make workers call internal addresses), is a `webhook_failed` event of the plan.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use baton_core::event::WebhookFailed;
use baton_core::plan::Notify;
use baton_core::scripts::task::Emit;
use baton_core::{Event, EventKind, PlanId, WorkerId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info_span, warn, Instrument};

use crate::config::Secret;
use crate::hosts::HostList;
use crate::store::Store;
use crate::Config;

/// Limit on one delivery attempt (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The signature header.
pub(crate) const SIGNATURE_HEADER: &str = "X-Baton-Signature";
/// How long deliveries under way may go on once the worker has stopped everything else.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long recording the deliveries given up at shutdown may take (Redis may be away).
const RECORD_WAIT: Duration = Duration::from_secs(5);
/// The header carrying the time a delivery was signed (unix seconds), covered by the signature.
pub(crate) const TIMESTAMP_HEADER: &str = "X-Baton-Timestamp";

/// The worker's webhook sender: its HTTP client, allow list, secret and retry bound.
pub(crate) struct Webhooks {
    client: reqwest::Client,
    allow: HostList,
    secret: Option<Secret>,
    retry_for: Duration,
    /// Every delivery under way; the worker waits for them at shutdown ([`Webhooks::finish`]).
    deliveries: TaskTracker,
    /// Cancelled once the shutdown grace is over: deliveries still under way give up.
    give_up: CancellationToken,
}

/// The webhook sender's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook client")]
pub struct WebhookClientError(#[source] reqwest::Error);

/// Why a delivery was not made.
#[derive(Debug, thiserror::Error)]
enum Undelivered {
    #[error("host {0:?} is not on this worker's --webhook-allow list")]
    NotAllowed(String),
    #[error("no BATON_WEBHOOK_SECRET on this worker to sign with")]
    NoSecret,
    #[error("the URL does not parse: {0}")]
    BadUrl(String),
    #[error("{0}")]
    Failed(String),
    /// The receiver refused the delivery itself (a 4xx other than 408 and 429), or answered
    /// with a redirect (3xx, never followed): sending the same body again gets the same answer.
    #[error("{0}")]
    Refused(String),
    /// The worker shut down before the delivery could be made.
    #[error("the worker shut down before the delivery was made")]
    ShutDown,
}

impl Webhooks {
    /// The sender the worker's settings describe.
    ///
    /// # Errors
    /// [`WebhookClientError`] when the HTTP client cannot be built (its TLS back end fails to
    /// start). The worker does not start then: a default client in its place would follow
    /// redirects past the allow list.
    pub(crate) fn new(cfg: &Config) -> Result<Self, WebhookClientError> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("baton-worker/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere, past the allow list.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookClientError)?;
        Ok(Self {
            client,
            allow: HostList::new(&cfg.webhook_allow),
            secret: cfg.webhook_secret.clone(),
            retry_for: cfg.webhook_retry_for,
            deliveries: TaskTracker::new(),
            give_up: CancellationToken::new(),
        })
    }

    /// Whether `host` is on the `--webhook-allow` list.
    fn allowed(&self, host: &str) -> bool {
        self.allow.allows(host)
    }

    /// Sends `event` to the plan's webhook if `notify` asks for its kind, in the background
    /// (tracked: see [`Webhooks::finish`]).
    pub(crate) fn send(
        self: &Arc<Self>,
        notify: Option<&Notify>,
        event: &Event,
        store: &Store,
        worker: &WorkerId,
    ) {
        let Some(notify) = notify.filter(|n| n.events.contains(&event.kind())) else {
            return;
        };
        let Some(plan) = event.plan_id.clone() else {
            return;
        };
        let (me, url, body) = (self.clone(), notify.url.clone(), event.to_json());
        let (store, worker, kind) = (store.clone(), worker.clone(), event.kind());
        let span = info_span!("webhook", plan = %plan, %kind);
        let delivery = async move {
            let attempts = AtomicU32::new(0);
            let outcome = tokio::select! {
                () = me.give_up.cancelled() => Err(Undelivered::ShutDown),
                r = me.deliver(&url, body, &attempts) => r,
            };
            let attempts = attempts.load(Ordering::Relaxed);
            match outcome {
                Ok(()) => debug!(attempts, "webhook delivered"),
                Err(why) => {
                    warn!(error = %why, "webhook not delivered");
                    failed(&store, &plan, &worker, kind, &url, &why, attempts).await;
                }
            }
        };
        self.deliveries.spawn(delivery.instrument(span));
    }

    /// At shutdown, once nothing can start a delivery any more: waits for the deliveries under
    /// way for a bounded grace, then makes the rest give up (each recorded as `webhook_failed`).
    pub(crate) async fn finish(&self) {
        self.deliveries.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.deliveries.wait())
            .await
            .is_ok()
        {
            return;
        }
        self.give_up.cancel();
        if tokio::time::timeout(RECORD_WAIT, self.deliveries.wait())
            .await
            .is_err()
        {
            warn!("could not record every webhook given up at shutdown (redis away?)");
        }
    }

    /// POSTs `body` until a 2xx answer, with backoff, for at most `retry_for`, counting the
    /// attempts made in `attempts`.
    async fn deliver(
        &self,
        url: &str,
        body: String,
        attempts: &AtomicU32,
    ) -> Result<(), Undelivered> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Undelivered::BadUrl(e.to_string()))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        if !self.allowed(&host) {
            return Err(Undelivered::NotAllowed(host));
        }
        let Some(secret) = &self.secret else {
            return Err(Undelivered::NoSecret);
        };
        let attempt = || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            // Signed afresh per attempt: a retry minutes later must not look like a replay.
            let timestamp = baton_core::time::now_millis() / 1000;
            let signature = sign(secret.expose(), timestamp, body.as_bytes());
            let answer = self
                .client
                .post(parsed.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| Undelivered::Failed(e.without_url().to_string()))?;
            let status = answer.status();
            let why = format!("the receiver answered {status}");
            match status.as_u16() {
                200..=299 => Ok(()),
                300..=399 => Err(Undelivered::Refused(format!(
                    "{why}, a redirect, which is never followed (it could lead past the allow list)"
                ))),
                408 | 429 => Err(Undelivered::Failed(why)),
                400..=499 => Err(Undelivered::Refused(why)),
                _ => Err(Undelivered::Failed(why)),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .with_total_delay(Some(self.retry_for))
            .without_max_times();
        attempt
            .retry(backoff)
            .when(|e| matches!(e, Undelivered::Failed(_)))
            .await
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`: what a receiver recomputes
/// (from the `X-Baton-Timestamp` header and the body) to trust a delivery.
pub(crate) fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The URL as an event may show it: no query or fragment (they may carry tokens).
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// Records a delivery given up as the plan's `webhook_failed` event.
async fn failed(
    store: &Store,
    plan: &PlanId,
    worker: &WorkerId,
    kind: EventKind,
    url: &str,
    why: &Undelivered,
    attempts: u32,
) {
    let event = Event::new(
        Some(plan),
        WebhookFailed {
            event: kind,
            url: redacted(url),
            reason: why.to_string(),
            attempts,
        },
    )
    .worker(worker);
    let call = Emit {
        plan,
        event: &event,
    };
    if let Err(e) = store.call(&call).await {
        warn!(error = %e, "could not record a failed webhook");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex_over_the_timestamp_and_the_body() {
        // RFC 4231, test case 2: the signed text is "<timestamp>.<body>".
        let body = r#"{"kind":"plan_completed"}"#;
        assert_eq!(
            sign("Jefe", 1_700_000_000, body.as_bytes()),
            sign_text("Jefe", &format!("1700000000.{body}"))
        );
        assert_eq!(
            sign_text("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            sign("Jefe", 1_700_000_000, b"{}"),
            sign("Jefe", 1_700_000_001, b"{}"),
            "the timestamp is signed"
        );
    }

    /// HMAC-SHA256 of a whole text, as `sha256=<hex>`.
    fn sign_text(secret: &str, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    }

    #[test]
    fn only_listed_hosts_are_called() {
        let mut cfg = crate::config::tests::parse(&[]).unwrap();
        cfg.webhook_allow = vec![
            "hooks.example.com".into(),
            "*.corp.example".into(),
            "127.0.0.1".into(),
        ];
        let w = Webhooks::new(&cfg).expect("the client builds");
        assert!(w.allowed("hooks.example.com"));
        assert!(w.allowed("HOOKS.example.com"));
        assert!(w.allowed("ci.corp.example"));
        assert!(w.allowed("127.0.0.1"));
        assert!(!w.allowed("corp.example"));
        assert!(!w.allowed("evil.example.com"));
        assert!(!w.allowed("localhost"));
        assert!(!w.allowed("169.254.169.254"));
        let none =
            Webhooks::new(&crate::config::tests::parse(&[]).unwrap()).expect("the client builds");
        assert!(
            !none.allowed("hooks.example.com"),
            "nothing is allowed by default"
        );
    }

    #[test]
    fn event_urls_lose_their_query() {
        assert_eq!(
            redacted("https://h.example/x?token=s3cret#f"),
            "https://h.example/x"
        );
    }
}
