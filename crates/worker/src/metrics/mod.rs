//! The worker's Prometheus metrics, and the endpoint that serves them (`--metrics-addr`, off
//! unless set). Labels come from small closed sets only (outcomes, modes, lists, session events,
//! fallback reasons, token kinds, HTTP statuses), each a type in `labels`: never a plan id, a
//! path or any other text from outside. Counters count this worker's work; the queue gauges are
//! the pool's, read from Redis every few seconds.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use baton_core::FallbackReason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::Store;

mod labels;

use labels::{
    ApiStatus, InfoLabels, KindLabels, ListLabels, ModeLabels, OutcomeLabels, QueueList, Reason,
    ReasonLabels, Sandbox, SessionLabels, StatusLabels, TokenKind,
};
pub(crate) use labels::{RunMode, SessionEvent, TaskOutcome};

/// How often the queue gauges are read from Redis.
const QUEUE_SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Buckets of the task duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
];

/// Every metric of one worker.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The worker's one mode, the label of every task duration.
    mode: RunMode,
    tasks: Family<OutcomeLabels, Counter>,
    task_duration: Family<ModeLabels, Histogram>,
    queue_length: Family<ListLabels, Gauge>,
    queue_oldest_age: Gauge<f64, AtomicU64>,
    sessions: Family<SessionLabels, Counter>,
    fallbacks: Family<ReasonLabels, Counter>,
    cost: Counter<f64, AtomicU64>,
    tokens: Family<KindLabels, Counter>,
    plans_held: Gauge,
    lease_lost: Counter,
    api_retries: Family<StatusLabels, Counter>,
    rate_limit_paused: Gauge,
    pool_paused: Gauge,
}

impl Metrics {
    /// The metrics of a worker running tasks in `mode`, boxed or not.
    pub(crate) fn new(mode: RunMode, boxed: bool) -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("baton"),
            mode,
            tasks: Family::default(),
            task_duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            queue_length: Family::default(),
            queue_oldest_age: Gauge::default(),
            sessions: Family::default(),
            fallbacks: Family::default(),
            cost: Counter::default(),
            tokens: Family::default(),
            plans_held: Gauge::default(),
            lease_lost: Counter::default(),
            api_retries: Family::default(),
            rate_limit_paused: Gauge::default(),
            pool_paused: Gauge::default(),
        };
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            version: env!("CARGO_PKG_VERSION"),
            mode,
            sandbox: if boxed {
                Sandbox::boxed
            } else {
                Sandbox::unconfined
            },
        })
        .set(1);
        let mut r = Registry::with_prefix("baton");
        m.register(&mut r);
        r.register(
            "worker_info",
            "The worker's version, session mode and sandbox (boxed or unconfined)",
            info,
        );
        m.registry = r;
        m
    }

    /// Names every metric (each registered handle shares its value with the field).
    fn register(&self, r: &mut Registry) {
        r.register("tasks", "Task attempts by outcome", self.tasks.clone());
        r.register(
            "task_duration_seconds",
            "How long one CLI run of a task took",
            self.task_duration.clone(),
        );
        r.register(
            "queue_length",
            "Entries in the pool's lists",
            self.queue_length.clone(),
        );
        r.register(
            "queue_oldest_age_seconds",
            "How long the oldest plan on the ready list has waited",
            self.queue_oldest_age.clone(),
        );
        r.register(
            "sessions",
            "How tasks' sessions started",
            self.sessions.clone(),
        );
        r.register(
            "session_fallbacks",
            "Sessions that could not be resumed, by reason",
            self.fallbacks.clone(),
        );
        r.register(
            "cost_usd",
            "What committed tasks cost, in US dollars",
            self.cost.clone(),
        );
        r.register("tokens", "Tokens of committed tasks", self.tokens.clone());
        r.register(
            "plans_held",
            "Plans this worker holds now",
            self.plans_held.clone(),
        );
        r.register(
            "lease_lost",
            "Holds that lost their lease",
            self.lease_lost.clone(),
        );
        r.register(
            "claude_api_retries",
            "API errors the CLI retried inside a run, by HTTP status",
            self.api_retries.clone(),
        );
        r.register(
            "rate_limit_paused",
            "1 while the pool is paused for a rate limit",
            self.rate_limit_paused.clone(),
        );
        r.register(
            "pool_paused",
            "1 while a user has paused the pool (baton pause --all)",
            self.pool_paused.clone(),
        );
    }

    pub(crate) fn task(&self, outcome: TaskOutcome) {
        self.tasks.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// One CLI run of a task took `d` (labelled with the worker's mode).
    pub(crate) fn task_duration(&self, d: Duration) {
        self.task_duration
            .get_or_create(&ModeLabels { mode: self.mode })
            .observe(d.as_secs_f64());
    }

    pub(crate) fn session(&self, event: SessionEvent) {
        self.sessions.get_or_create(&SessionLabels { event }).inc();
    }

    pub(crate) fn fallback(&self, reason: FallbackReason) {
        self.session(SessionEvent::fallback);
        self.fallbacks
            .get_or_create(&ReasonLabels {
                reason: Reason(reason),
            })
            .inc();
    }

    pub(crate) fn committed(&self, cost_usd: f64, input_tokens: u64, output_tokens: u64) {
        self.task(TaskOutcome::succeeded);
        self.cost.inc_by(cost_usd);
        for (kind, n) in [
            (TokenKind::input, input_tokens),
            (TokenKind::output, output_tokens),
        ] {
            self.tokens.get_or_create(&KindLabels { kind }).inc_by(n);
        }
    }

    pub(crate) fn plan_held(&self, held: bool) {
        if held {
            self.plans_held.inc();
        } else {
            self.plans_held.dec();
        }
    }

    pub(crate) fn lease_lost(&self) {
        self.lease_lost.inc();
    }

    pub(crate) fn api_retry(&self, status: Option<u16>) {
        self.api_retries
            .get_or_create(&StatusLabels {
                status: ApiStatus(status),
            })
            .inc();
    }

    /// The exposition, in the OpenMetrics text format.
    fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Reads the pool's queue gauges from Redis.
    async fn sample_queues(&self, store: &Store) {
        match store.queue_depths().await {
            Ok(q) => {
                for (list, n) in [
                    (QueueList::submit, q.submit),
                    (QueueList::ready, q.ready),
                    (QueueList::dead, q.dead),
                    (QueueList::waiting_on_limit, q.waiting_on_limit),
                ] {
                    self.queue_length
                        .get_or_create(&ListLabels { list })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                self.queue_oldest_age
                    .set(q.oldest_ready_wait.map_or(0.0, |d| d.as_secs_f64()));
                self.rate_limit_paused.set(i64::from(q.rate_limited));
                self.pool_paused.set(i64::from(q.user_paused));
            }
            Err(e) => warn!(error = %e, "could not read the queue depths for the metrics"),
        }
    }
}

/// Serves `GET /metrics` on `addr` and keeps the queue gauges fresh, until `stop`.
///
/// # Errors
/// The address cannot be bound.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    store: Store,
    stop: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    info!(addr = %listener.local_addr()?, "metrics at /metrics");
    let scrape = {
        let metrics = metrics.clone();
        move || {
            let body = metrics.encode();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
                    .into_response()
            }
        }
    };
    let app = axum::Router::new().route("/metrics", get(scrape));
    Ok(tokio::spawn(async move {
        let sampler = async {
            loop {
                metrics.sample_queues(&store).await;
                tokio::time::sleep(QUEUE_SAMPLE_EVERY).await;
            }
        };
        let server = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        tokio::select! {
            r = server => if let Err(e) = r { warn!(error = %e, "the metrics endpoint failed") },
            () = sampler => {}
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_with_bounded_labels() {
        let m = Metrics::new(RunMode::warm, true);
        m.committed(0.5, 10, 3);
        m.task(TaskOutcome::retried);
        m.fallback(FallbackReason::Expired);
        m.api_retry(Some(529));
        m.task_duration(Duration::from_secs(3));
        let text = m.encode();
        for line in [
            "baton_tasks_total{outcome=\"succeeded\"} 1",
            "baton_tasks_total{outcome=\"retried\"} 1",
            "baton_session_fallbacks_total{reason=\"expired\"} 1",
            "baton_sessions_total{event=\"fallback\"} 1",
            "baton_cost_usd_total 0.5",
            "baton_tokens_total{kind=\"input\"} 10",
            "baton_claude_api_retries_total{status=\"529\"} 1",
            "baton_worker_info{version=",
            "sandbox=\"boxed\"",
            "baton_task_duration_seconds_bucket{le=\"5.0\",mode=\"warm\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    /// Every label value in an exposition, as `(label, value)`.
    fn label_values(text: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((_, rest)) = line.split_once('{') else {
                continue;
            };
            let Some((labels, _)) = rest.rsplit_once('}') else {
                continue;
            };
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                found.push((name.to_owned(), value.trim_end_matches('"').to_owned()));
            }
        }
        found
    }

    /// Whatever a worker runs (a benchmark program's path included) and whatever it counts,
    /// every label value is one of a known few.
    #[test]
    fn every_label_value_is_from_a_closed_set() {
        let config =
            crate::config::tests::parse(&["--executor", "spawn:/opt/bench/task.sh"]).unwrap();
        let m = Metrics::new(RunMode::of(&config), false);
        m.task_duration(Duration::from_secs(1));
        m.committed(0.1, 1, 1);
        for outcome in [
            TaskOutcome::failed,
            TaskOutcome::retried,
            TaskOutcome::dead_lettered,
        ] {
            m.task(outcome);
        }
        for event in [
            SessionEvent::created,
            SessionEvent::resumed,
            SessionEvent::handoff,
            SessionEvent::rotated,
        ] {
            m.session(event);
        }
        for reason in FallbackReason::ALL {
            m.fallback(*reason);
        }
        m.api_retry(Some(429));
        m.api_retry(None);
        let text = m.encode();
        let reasons: Vec<&str> = FallbackReason::ALL.iter().map(|r| r.as_str()).collect();
        let found = label_values(&text);
        assert!(found.len() > 20, "the labels were read: {found:?}");
        for (name, value) in found {
            let known = match name.as_str() {
                "mode" => ["warm", "cold", "instant", "spawn"].contains(&value.as_str()),
                "outcome" => {
                    ["succeeded", "failed", "retried", "dead_lettered"].contains(&value.as_str())
                }
                "event" => ["created", "resumed", "handoff", "fallback", "rotated"]
                    .contains(&value.as_str()),
                "reason" => reasons.contains(&value.as_str()),
                "kind" => ["input", "output"].contains(&value.as_str()),
                "status" => value == "none" || value.parse::<u16>().is_ok(),
                "sandbox" => ["boxed", "unconfined"].contains(&value.as_str()),
                "version" => value == env!("CARGO_PKG_VERSION"),
                "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
                _ => false,
            };
            assert!(
                known,
                "label {name}={value:?} is not from a closed set in\n{text}"
            );
        }
        assert!(text.contains("mode=\"spawn\""), "{text}");
    }
}
