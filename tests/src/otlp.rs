//! A real OTLP/HTTP trace receiver on a free loopback port: `POST /v1/traces` with an
//! `ExportTraceServiceRequest` in protobuf (what an OpenTelemetry Collector takes), decoded
//! with `opentelemetry-proto` and kept as flat [`Span`]s; and the span tree as text, for
//! people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

/// One span received, ids in lower-case hex.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root.
    pub parent_id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes (`service.name`, `baton.worker_id`).
    pub resource: BTreeMap<String, String>,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span {
    /// An attribute's value as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The receiver: every span of every export so far.
#[derive(Clone)]
pub struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    /// `http://127.0.0.1:PORT`: a worker's `--otlp-endpoint`.
    pub base_url: String,
    /// Export requests received (and answered 200).
    pub exports: Arc<Mutex<usize>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// The spans of one export request.
pub fn decode(body: &[u8]) -> Result<Vec<Span>> {
    let req = ExportTraceServiceRequest::decode(body)?;
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                out.push(Span {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    attributes: attrs(&s.attributes),
                    resource: resource.clone(),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                });
            }
        }
    }
    Ok(out)
}

async fn export(State(r): State<Receiver>, body: Bytes) -> StatusCode {
    match decode(&body) {
        Ok(spans) => {
            r.spans.lock().expect("not poisoned").extend(spans);
            *r.exports.lock().expect("not poisoned") += 1;
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

impl Receiver {
    /// Starts on a free loopback port (on the current Tokio runtime).
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let r = Self {
            spans: Arc::default(),
            base_url: format!("http://{}", listener.local_addr()?),
            exports: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state(r.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(r)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.spans.lock().expect("not poisoned").clear();
    }
}

/// The spans as an indented tree (children by start time), with their baton attributes and
/// the worker of each: what README shows of a trace.
pub fn tree(spans: &[Span]) -> String {
    let mut sorted = spans.to_vec();
    sorted.sort_by_key(|s| s.start_ns);
    let ids: std::collections::HashSet<&str> = sorted.iter().map(|s| s.span_id.as_str()).collect();
    let mut out = String::new();
    let roots = sorted
        .iter()
        .filter(|s| !ids.contains(s.parent_id.as_str()));
    for r in roots {
        walk(&sorted, r, 0, &mut out);
    }
    out
}

fn walk(all: &[Span], s: &Span, depth: usize, out: &mut String) {
    let ms = s.end_ns.saturating_sub(s.start_ns) as f64 / 1e6;
    let a: Vec<String> = s
        .attributes
        .iter()
        .filter(|(k, _)| k.starts_with("baton."))
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("baton.")))
        .collect();
    let worker = s.resource.get("baton.worker_id").map_or("", String::as_str);
    let _ = writeln!(
        out,
        "{:indent$}{} {} [{ms:.1} ms] {}{}",
        "",
        s.name,
        &s.span_id,
        a.join(" "),
        if depth == 1 {
            format!(" @{worker}")
        } else {
            String::new()
        },
        indent = depth * 2
    );
    for c in all.iter().filter(|c| c.parent_id == s.span_id) {
        walk(all, c, depth + 1, out);
    }
}
