//! The worker's Prometheus metrics, and the endpoint that serves them (`--metrics-addr`, off
//! unless set). Labels come from small closed sets only (outcomes, modes, lists, session events,
//! fallback reasons, HTTP statuses): never a plan id or anything else unbounded. Counters count
//! this worker's work; the queue gauges are the pool's, read from Redis every few seconds.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use baton_core::FallbackReason;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::Store;

/// How often the queue gauges are read from Redis.
const QUEUE_SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Buckets of the task duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
];

/// What became of a task attempt.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(crate) enum TaskOutcome {
    succeeded,
    /// An attempt that failed (retried or not).
    failed,
    /// An attempt about to be made again after a failure.
    retried,
    /// A task that failed for good.
    dead_lettered,
}

/// A session event of `baton_sessions_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(crate) enum SessionEvent {
    created,
    resumed,
    handoff,
    fallback,
    rotated,
}

/// The pool's lists of `baton_queue_length`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
enum QueueList {
    submit,
    ready,
    dead,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: TaskOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListLabels {
    list: QueueList,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    event: SessionEvent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    version: String,
    mode: String,
    /// `boxed` (the sandbox is on) or `unconfined` (`--sandbox off`, or a benchmark executor).
    sandbox: String,
}

/// Every metric of one worker.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
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
    pub(crate) fn new(mode: &str, boxed: bool) -> Self {
        let tasks = Family::<OutcomeLabels, Counter>::default();
        let task_duration = Family::<ModeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DURATION_BUCKETS)
        });
        let queue_length = Family::<ListLabels, Gauge>::default();
        let queue_oldest_age = Gauge::<f64, AtomicU64>::default();
        let sessions = Family::<SessionLabels, Counter>::default();
        let fallbacks = Family::<ReasonLabels, Counter>::default();
        let cost = Counter::<f64, AtomicU64>::default();
        let tokens = Family::<KindLabels, Counter>::default();
        let plans_held = Gauge::default();
        let lease_lost = Counter::default();
        let api_retries = Family::<StatusLabels, Counter>::default();
        let rate_limit_paused = Gauge::default();
        let pool_paused = Gauge::default();
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            mode: mode.to_owned(),
            sandbox: if boxed { "boxed" } else { "unconfined" }.to_owned(),
        })
        .set(1);

        let mut r = Registry::with_prefix("baton");
        r.register("tasks", "Task attempts by outcome", tasks.clone());
        r.register(
            "task_duration_seconds",
            "How long one CLI run of a task took",
            task_duration.clone(),
        );
        r.register(
            "queue_length",
            "Entries in the pool's lists",
            queue_length.clone(),
        );
        r.register(
            "queue_oldest_age_seconds",
            "How long the oldest plan on the ready list has waited",
            queue_oldest_age.clone(),
        );
        r.register("sessions", "How tasks' sessions started", sessions.clone());
        r.register(
            "session_fallbacks",
            "Sessions that could not be resumed, by reason",
            fallbacks.clone(),
        );
        r.register(
            "cost_usd",
            "What committed tasks cost, in US dollars",
            cost.clone(),
        );
        r.register("tokens", "Tokens of committed tasks", tokens.clone());
        r.register(
            "plans_held",
            "Plans this worker holds now",
            plans_held.clone(),
        );
        r.register(
            "lease_lost",
            "Holds that lost their lease",
            lease_lost.clone(),
        );
        r.register(
            "claude_api_retries",
            "API errors the CLI retried inside a run, by HTTP status",
            api_retries.clone(),
        );
        r.register(
            "rate_limit_paused",
            "1 while the pool is paused for a rate limit",
            rate_limit_paused.clone(),
        );
        r.register(
            "pool_paused",
            "1 while a user has paused the pool (baton pause --all)",
            pool_paused.clone(),
        );
        r.register(
            "worker_info",
            "The worker's version, session mode and sandbox (boxed or unconfined)",
            info,
        );
        Self {
            registry: r,
            tasks,
            task_duration,
            queue_length,
            queue_oldest_age,
            sessions,
            fallbacks,
            cost,
            tokens,
            plans_held,
            lease_lost,
            api_retries,
            rate_limit_paused,
            pool_paused,
        }
    }

    pub(crate) fn task(&self, outcome: TaskOutcome) {
        self.tasks.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub(crate) fn task_duration(&self, mode: &str, d: Duration) {
        self.task_duration
            .get_or_create(&ModeLabels {
                mode: mode.to_owned(),
            })
            .observe(d.as_secs_f64());
    }

    pub(crate) fn session(&self, event: SessionEvent) {
        self.sessions.get_or_create(&SessionLabels { event }).inc();
    }

    pub(crate) fn fallback(&self, reason: FallbackReason) {
        self.session(SessionEvent::fallback);
        self.fallbacks
            .get_or_create(&ReasonLabels {
                reason: reason.as_str().to_owned(),
            })
            .inc();
    }

    pub(crate) fn committed(&self, cost_usd: f64, input_tokens: u64, output_tokens: u64) {
        self.task(TaskOutcome::succeeded);
        self.cost.inc_by(cost_usd);
        for (kind, n) in [("input", input_tokens), ("output", output_tokens)] {
            self.tokens
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .inc_by(n);
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
        let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        self.api_retries
            .get_or_create(&StatusLabels { status })
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
        let m = Metrics::new("warm", true);
        m.committed(0.5, 10, 3);
        m.task(TaskOutcome::retried);
        m.fallback(FallbackReason::Expired);
        m.api_retry(Some(529));
        m.task_duration("warm", Duration::from_secs(3));
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
}
