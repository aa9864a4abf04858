//! The Messages API on the wire: a reply streamed as Server-Sent Events (or as one JSON
//! message), the errors the API sends, and a 429 with the rate-limit headers the CLI reads.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// What the model answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Error(u16),
    /// 429 with rate-limit headers: the limit resets this many seconds from now.
    Limited(u64),
    Text(String),
    /// A tool use (`Write`, `Read`) with its input; the CLI runs the tool and sends the result.
    Tool {
        name: &'static str,
        input: Value,
    },
}

/// How the stream of a reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Normal,
    Hang,
    Cut,
}

pub(crate) fn error_response(status: u16, message: &str) -> Response {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// A 429 as the API sends it when a rate limit is hit, with the reset time in its headers.
pub(crate) fn limited_response(secs: u64) -> Response {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + secs;
    let mut r = error_response(429, "rate limit reached");
    let h = r.headers_mut();
    let val = |v: String| axum::http::HeaderValue::from_str(&v).expect("ascii header");
    h.insert("retry-after", val(secs.to_string()));
    h.insert("anthropic-ratelimit-unified-status", val("rejected".into()));
    h.insert("anthropic-ratelimit-unified-reset", val(reset.to_string()));
    h.insert(
        "anthropic-ratelimit-requests-reset",
        val(humanize_reset(reset)),
    );
    r
}

fn humanize_reset(epoch: u64) -> String {
    // RFC 3339 without pulling a date crate: the CLI only needs a parseable time.
    let secs = epoch % 86_400;
    let days = epoch / 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn content_block(reply: &Reply) -> Value {
    match reply {
        Reply::Tool { name, input } => json!({
            "type": "tool_use", "id": format!("toolu_{}", uuid::Uuid::new_v4().simple()),
            "name": name, "input": input}),
        Reply::Text(t) => json!({"type": "text", "text": t}),
        Reply::Error(_) | Reply::Limited(_) => json!({"type": "text", "text": ""}),
    }
}

fn stop_reason(reply: &Reply) -> &'static str {
    if matches!(reply, Reply::Tool { .. }) {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn output_tokens(reply: &Reply) -> u64 {
    (content_block(reply).to_string().len() / 4).max(1) as u64
}

pub(crate) fn whole_message(reply: &Reply, model: &str, input_tokens: u64) -> Value {
    json!({
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()), "type": "message", "role": "assistant",
        "model": model, "content": [content_block(reply)], "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens(reply)}
    })
}

fn sse(event: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The events that open a streamed message, up to its content block's start, and the delta
/// that fills the block.
fn opening_events(reply: &Reply, model: &str, input_tokens: u64) -> (Vec<Bytes>, Value) {
    let start = json!({"type": "message_start", "message": {
        "id": format!("msg_{}", uuid::Uuid::new_v4().simple()), "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}});
    let mut events = vec![sse("message_start", start)];
    let (block_start, delta) = match reply {
        Reply::Tool { name, input } => (
            json!({"type": "tool_use", "id": format!("toolu_{}", uuid::Uuid::new_v4().simple()), "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": input.to_string()}),
        ),
        Reply::Text(t) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": t}),
        ),
        Reply::Error(_) | Reply::Limited(_) => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": ""}),
        ),
    };
    events.push(sse(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": block_start}),
    ));
    (events, delta)
}

/// The events that fill the content block with `delta` and close the message.
fn closing_events(reply: &Reply, delta: Value) -> Vec<Bytes> {
    vec![
        sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ),
        sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        sse(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
            "usage": {"output_tokens": output_tokens(reply)}}),
        ),
        sse("message_stop", json!({"type": "message_stop"})),
    ]
}

/// The reply as a Server-Sent Events stream, ended as `ending` says: whole, silent after the
/// block's start until the client goes away, or cut off there.
pub(crate) fn sse_response(
    reply: Reply,
    ending: Ending,
    model: String,
    input_tokens: u64,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let (mut events, delta) = opening_events(&reply, &model, input_tokens);
        match ending {
            Ending::Hang => {
                for e in events {
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
                // Keep the stream open, silent, until the client goes away.
                tx.closed().await;
                return;
            }
            Ending::Cut => {
                for e in events {
                    let _ = tx.send(Ok(e)).await;
                }
                // Dropping the sender mid-message ends the body early: a stream cut short.
                return;
            }
            Ending::Normal => {}
        }
        events.extend(closing_events(&reply, delta));
        for e in events {
            if tx.send(Ok(e)).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static headers are valid")
}
