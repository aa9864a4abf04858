//! OpenTelemetry traces of the worker: the worker's `tracing` spans (hold, task, attempt, git
//! steps, transcript restore, commit) exported over OTLP/HTTP (protobuf) when an endpoint is
//! set (`--otlp-endpoint`, else the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT`). Off otherwise: no exporter, no OpenTelemetry layer, and the
//! spans cost what `tracing` spans cost under the log subscriber.
//!
//! The SDK's batch processor sends from a thread of its own with reqwest's blocking client, so
//! a span's end costs the hold a channel send; [`Traces::shutdown`] flushes what is queued
//! when the worker stops. The trace follows the plan, not the worker: `context` keeps the
//! plan's root `traceparent` in its plan hash (`trace`), and every hold is a child of it.

mod context;

pub(crate) use context::{join_plan, mark_task, traceparent, Root};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use baton_core::WorkerId;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::Layer;

/// True once an exporter is installed: holds then make the plan's root when it has none.
static ON: AtomicBool = AtomicBool::new(false);
/// The tracer the plan roots are started with (the layer has its own handle to it).
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// True when this worker exports traces.
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The worker's traces: an exporter, or none.
#[derive(Debug, Default)]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
    /// The URL spans are sent to.
    pub endpoint: Option<String>,
}

impl Traces {
    /// Sends the spans still queued and stops the exporter (at the worker's exit).
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                eprintln!("could not flush the last traces: {e}");
            }
        }
    }
}

/// Where traces go: `flag` (`--otlp-endpoint`, a collector's base URL, `/v1/traces` added),
/// else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole URL), else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL). None with `OTEL_TRACES_EXPORTER=none`.
pub fn endpoint(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let base = |b: &str| {
        let b = b.trim().trim_end_matches('/');
        if b.ends_with("/v1/traces") {
            b.to_owned()
        } else {
            format!("{b}/v1/traces")
        }
    };
    if let Some(f) = set(flag.map(str::to_owned)) {
        return Some(base(&f));
    }
    if set(env("OTEL_TRACES_EXPORTER")).is_some_and(|e| e.trim() == "none") {
        return None;
    }
    if let Some(t) = set(env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        return Some(t.trim().to_owned());
    }
    set(env("OTEL_EXPORTER_OTLP_ENDPOINT")).map(|b| base(&b))
}

/// Installs the global subscriber: the logs as always, and the OpenTelemetry layer when
/// `endpoint` is set (`service.name` baton-worker, `baton.worker_id` the worker's id).
///
/// # Errors
/// The exporter could not be built (a URL that does not parse).
pub fn install(endpoint: Option<String>, worker: &WorkerId) -> Result<Traces, String> {
    let Some(url) = endpoint else {
        baton_core::logging::init_logging("info");
        return Ok(Traces::default());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| format!("--otlp-endpoint {url}: {e}"))?;
    let resource = Resource::builder()
        .with_service_name("baton-worker")
        .with_attribute(KeyValue::new("baton.worker_id", worker.to_string()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("baton-worker");
    let _ = TRACER.set(tracer.clone());
    // The worker's own spans only (no log events as span events, no other crate's spans).
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|m| {
            m.is_span() && m.target().starts_with("baton_worker")
        }));
    baton_core::logging::init_logging_with("info", layer);
    ON.store(true, Ordering::Relaxed);
    Ok(Traces {
        provider: Some(provider),
        endpoint: Some(url),
    })
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_flag_wins_then_the_signal_variable_then_the_base_one() {
        let all = [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:2/"),
        ];
        assert_eq!(
            endpoint(Some("http://f:3"), env(&all)).as_deref(),
            Some("http://f:3/v1/traces")
        );
        assert_eq!(endpoint(None, env(&all)).as_deref(), Some("http://t:1/x"));
        assert_eq!(
            endpoint(None, env(&all[1..])).as_deref(),
            Some("http://b:2/v1/traces")
        );
        assert_eq!(
            endpoint(Some("http://f:3/v1/traces"), env(&[])).as_deref(),
            Some("http://f:3/v1/traces")
        );
    }

    #[test]
    fn nothing_set_or_none_asked_is_off() {
        assert_eq!(endpoint(None, env(&[])), None);
        assert_eq!(endpoint(Some(" "), env(&[])), None);
        let none = [
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://b:2"),
        ];
        assert_eq!(endpoint(None, env(&none)), None);
    }
}
