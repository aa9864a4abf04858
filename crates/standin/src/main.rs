//! baton-standin: a local stand-in for the Anthropic Messages API.
//!
//! It exists so the real Claude Code CLI can run offline in baton's tests, demo and benchmarks.
//! It replaces only the model: the CLI, its session files, and baton itself run for real.
//!
//! What it answers, per `POST /v1/messages` (streamed as Server-Sent Events, or as one JSON
//! message when `stream` is false), looking at the newest user prompt of the request:
//! - `File: <relative path>` followed by a fenced code block: the model writes that file with
//!   the CLI's `Write` tool (one file per turn, then a closing text). A real model reads the
//!   same prompt the same way, so plans written like this work with both.
//! - `[[standin:fail STATUS]]` or `[[standin:fail STATUS times=N]]`: answer with that HTTP
//!   error (every time, or for the first N requests carrying this prompt).
//! - `[[standin:limit SECS]]`: the first request with this prompt gets a 429 with rate-limit
//!   headers saying the limit resets in SECS seconds.
//! - `[[standin:sleep MS]]`: wait before answering. `[[standin:hang]]`: start the stream and
//!   never finish it (`after_writes=N`: only once N files were written this turn; `times=N`:
//!   only the first N times). `[[standin:cut]]`: start the stream and drop the connection.
//! - Otherwise a text that reports the conversation it received: the number of prompts and
//!   each prompt's opening words, so a test (or a person) can see that context arrived.
//!
//! `POST /_control` sets pool-wide faults (`{"fail_status":529,"for_secs":20}`,
//! `{"fail_status":401,"match":"plan-x"}`, `{"clear":true}`); `GET /_requests` returns every
//! request body served, `DELETE /_requests` forgets them. The address is printed on stdout as
//! `BATON_STANDIN_ADDR=127.0.0.1:PORT`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A local stand-in for the Anthropic Messages API, for running the real Claude Code CLI offline.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on. Port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0", env = "BATON_STANDIN_LISTEN")]
    listen: SocketAddr,
    /// Pause before each answer's first byte, in milliseconds (a crude model latency).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

/// A pool-wide fault set through `/_control`.
#[derive(Debug, Clone)]
struct Fault {
    status: u16,
    until: Option<Instant>,
    matching: Option<String>,
    stall: bool,
}

#[derive(Default)]
struct Shared {
    requests: Vec<Value>,
    faults: Vec<Fault>,
    /// How many requests carried each prompt that has a `fail ... times=N` directive.
    fail_counts: HashMap<String, u32>,
}

#[derive(Clone)]
struct AppState {
    // Locked only for short, non-async sections: never held across an await.
    shared: Arc<Mutex<Shared>>,
    latency: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let state = AppState {
        shared: Arc::default(),
        latency: Duration::from_millis(args.latency_ms),
    };
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/_requests", get(list_requests).delete(clear_requests))
        .route("/_control", post(control))
        .fallback(fallback)
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("BATON_STANDIN_ADDR={addr}");
    use std::io::Write as _;
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn fallback(method: axum::http::Method) -> Response {
    // The CLI makes a few side calls (e.g. GETs for settings); `{}` satisfies them.
    let _ = method;
    Json(json!({})).into_response()
}

async fn count_tokens(body: Bytes) -> Json<Value> {
    Json(json!({"input_tokens": body.len() / 4}))
}

async fn list_requests(State(st): State<AppState>) -> Json<Value> {
    let shared = st.shared.lock().expect("lock poisoned only by a panic");
    Json(Value::Array(shared.requests.clone()))
}

async fn clear_requests(State(st): State<AppState>) -> StatusCode {
    st.shared
        .lock()
        .expect("lock poisoned only by a panic")
        .requests
        .clear();
    StatusCode::NO_CONTENT
}

async fn control(State(st): State<AppState>, Json(body): Json<Value>) -> StatusCode {
    let mut shared = st.shared.lock().expect("lock poisoned only by a panic");
    if body.get("clear").and_then(Value::as_bool) == Some(true) {
        shared.faults.clear();
        return StatusCode::NO_CONTENT;
    }
    let status = body
        .get("fail_status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let stall = body.get("stall").and_then(Value::as_bool).unwrap_or(false);
    if status == 0 && !stall {
        return StatusCode::BAD_REQUEST;
    }
    shared.faults.push(Fault {
        status,
        until: body
            .get("for_secs")
            .and_then(Value::as_f64)
            .map(|s| Instant::now() + Duration::from_secs_f64(s)),
        matching: body.get("match").and_then(Value::as_str).map(str::to_owned),
        stall,
    });
    StatusCode::NO_CONTENT
}

/// What the newest turn of a request asks for.
struct Turn {
    /// Every user prompt of the conversation, oldest first (system reminders left out).
    prompts: Vec<String>,
    /// Tool results since the newest prompt (how many files were written this turn).
    tool_results_since_prompt: usize,
    /// The working directory the CLI reported.
    cwd: Option<String>,
}

fn prompt_texts(content: &Value) -> (Vec<String>, usize) {
    match content {
        Value::String(s) => (vec![s.clone()], 0),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            let mut results = 0;
            for b in blocks {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.trim_start().starts_with("<system-reminder>") {
                            texts.push(t.to_owned());
                        }
                    }
                    Some("tool_result") => results += 1,
                    _ => {}
                }
            }
            (texts, results)
        }
        _ => (Vec::new(), 0),
    }
}

fn read_turn(body: &Value, raw: &str) -> Turn {
    let mut prompts = Vec::new();
    let mut since = 0;
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let (texts, results) = prompt_texts(m.get("content").unwrap_or(&Value::Null));
        if texts.is_empty() {
            since += results;
        } else {
            prompts.extend(texts);
            since = results;
        }
    }
    let marker = "Primary working directory: ";
    let cwd = raw.find(marker).map(|i| {
        let rest = &raw[i + marker.len()..];
        let end = rest.find(['\\', '"', '\n']).unwrap_or(rest.len());
        rest[..end].trim().to_owned()
    });
    Turn {
        prompts,
        tool_results_since_prompt: since,
        cwd,
    }
}

/// `File: path` lines each followed by a fenced block, in order.
fn files_in(prompt: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = prompt.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(path) = line.trim().strip_prefix("File:") else {
            continue;
        };
        let path = path.trim().trim_matches('`').to_owned();
        // Skip to the opening fence.
        let mut opened = false;
        while let Some(l) = lines.peek() {
            if l.trim_start().starts_with("```") {
                lines.next();
                opened = true;
                break;
            }
            if !l.trim().is_empty() {
                break;
            }
            lines.next();
        }
        if !opened {
            continue;
        }
        let mut content = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            content.push_str(l);
            content.push('\n');
        }
        out.push((path, content));
    }
    out
}

/// A `[[standin:NAME ARGS]]` directive's arguments, if the prompt has it.
fn directive<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("[[standin:{name}");
    let i = prompt.find(&open)?;
    let rest = &prompt[i + open.len()..];
    let end = rest.find("]]")?;
    Some(rest[..end].trim())
}

enum Reply {
    Error(u16),
    /// 429 with rate-limit headers: the limit resets this many seconds from now.
    Limited(u64),
    Text(String),
    Write {
        path: String,
        content: String,
    },
}

enum Ending {
    Normal,
    Hang,
    Cut,
}

async fn messages(State(st): State<AppState>, body: Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body).into_owned();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400, "request body is not JSON");
    };
    let turn = read_turn(&req, &raw);
    let prompt = turn.prompts.last().cloned().unwrap_or_default();
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("standin")
        .to_owned();

    let (reply, ending, sleep) = {
        let mut shared = st.shared.lock().expect("lock poisoned only by a panic");
        shared.requests.push(req.clone());
        let now = Instant::now();
        shared.faults.retain(|f| f.until.is_none_or(|u| u > now));
        let fault = shared
            .faults
            .iter()
            .find(|f| f.matching.as_ref().is_none_or(|m| raw.contains(m.as_str())))
            .cloned();
        decide(&mut shared, &turn, &prompt, fault)
    };
    let sleep = sleep + st.latency;
    if !sleep.is_zero() {
        tokio::time::sleep(sleep).await;
    }
    let input_tokens = (raw.len() / 4) as u64;
    match reply {
        Reply::Error(status) => error_response(status, "stand-in was told to fail"),
        Reply::Limited(secs) => limited_response(secs),
        reply if !stream => Json(whole_message(&reply, &model, input_tokens)).into_response(),
        reply => sse_response(reply, ending, model, input_tokens),
    }
}

fn decide(
    shared: &mut Shared,
    turn: &Turn,
    prompt: &str,
    fault: Option<Fault>,
) -> (Reply, Ending, Duration) {
    let sleep = directive(prompt, "sleep")
        .and_then(|a| a.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_default();
    if let Some(f) = fault {
        if f.stall {
            return (Reply::Text(String::new()), Ending::Hang, sleep);
        }
        return (Reply::Error(f.status), Ending::Normal, sleep);
    }
    if let Some(secs) = directive(prompt, "limit").and_then(|a| a.parse::<u64>().ok()) {
        let seen = shared
            .fail_counts
            .entry(format!("limit\u{0}{prompt}"))
            .or_default();
        *seen += 1;
        if *seen == 1 {
            return (Reply::Limited(secs), Ending::Normal, sleep);
        }
    }
    if let Some(args) = directive(prompt, "fail") {
        let mut parts = args.split_whitespace();
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(500);
        let times = parts
            .find_map(|p| p.strip_prefix("times="))
            .and_then(|n| n.parse::<u32>().ok());
        let seen = shared.fail_counts.entry(prompt.to_owned()).or_default();
        *seen += 1;
        if times.is_none_or(|t| *seen <= t) {
            return (Reply::Error(status), Ending::Normal, sleep);
        }
    }
    let hang = directive(prompt, "hang").is_some_and(|args| {
        let arg = |name: &str| {
            args.split_whitespace()
                .find_map(|p| p.strip_prefix(name))
                .and_then(|n| n.parse::<usize>().ok())
        };
        if arg("after_writes=").is_some_and(|n| turn.tool_results_since_prompt < n) {
            return false;
        }
        let seen = shared
            .fail_counts
            .entry(format!("hang\u{0}{prompt}"))
            .or_default();
        *seen += 1;
        arg("times=").is_none_or(|t| *seen as usize <= t)
    });
    let ending = if hang {
        Ending::Hang
    } else if directive(prompt, "cut").is_some() {
        Ending::Cut
    } else {
        Ending::Normal
    };
    let files = files_in(prompt);
    if let Some((path, content)) = files.get(turn.tool_results_since_prompt) {
        let abs = match (&turn.cwd, path.starts_with('/')) {
            (Some(cwd), false) => format!("{}/{path}", cwd.trim_end_matches('/')),
            _ => path.clone(),
        };
        return (
            Reply::Write {
                path: abs,
                content: content.clone(),
            },
            ending,
            sleep,
        );
    }
    (Reply::Text(report(turn, &files)), ending, sleep)
}

/// The default answer: what the conversation held, so context can be checked from outside.
fn report(turn: &Turn, files: &[(String, String)]) -> String {
    let n = turn.prompts.len();
    let mut s = format!("[standin] This conversation holds {n} prompt(s).");
    for (i, p) in turn.prompts.iter().enumerate() {
        let head: String = p
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(60)
            .collect();
        let _ = write!(s, " #{}: \"{head}\"", i + 1);
    }
    if !files.is_empty() {
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        let _ = write!(s, " Wrote {}.", names.join(", "));
    }
    s
}

fn error_response(status: u16, message: &str) -> Response {
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
fn limited_response(secs: u64) -> Response {
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
        Reply::Write { path, content } => json!({
            "type": "tool_use", "id": format!("toolu_{}", uuid::Uuid::new_v4().simple()),
            "name": "Write", "input": {"file_path": path, "content": content}}),
        Reply::Text(t) => json!({"type": "text", "text": t}),
        Reply::Error(_) | Reply::Limited(_) => json!({"type": "text", "text": ""}),
    }
}

fn stop_reason(reply: &Reply) -> &'static str {
    if matches!(reply, Reply::Write { .. }) {
        "tool_use"
    } else {
        "end_turn"
    }
}

fn output_tokens(reply: &Reply) -> u64 {
    (content_block(reply).to_string().len() / 4).max(1) as u64
}

fn whole_message(reply: &Reply, model: &str, input_tokens: u64) -> Value {
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

fn sse_response(reply: Reply, ending: Ending, model: String, input_tokens: u64) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let start = json!({"type": "message_start", "message": {
            "id": format!("msg_{}", uuid::Uuid::new_v4().simple()), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}});
        let mut events = vec![sse("message_start", start)];
        let (block_start, delta) = match &reply {
            Reply::Write { path, content } => (
                json!({"type": "tool_use", "id": format!("toolu_{}", uuid::Uuid::new_v4().simple()), "name": "Write", "input": {}}),
                json!({"type": "input_json_delta", "partial_json": json!({"file_path": path, "content": content}).to_string()}),
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
        events.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ));
        events.push(sse(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        events.push(sse(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(&reply), "stop_sequence": null},
            "usage": {"output_tokens": output_tokens(&reply)}}),
        ));
        events.push(sse("message_stop", json!({"type": "message_stop"})));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_blocks_are_found_in_order() {
        let p = "Make two files.\nFile: a/b.py\n```python\nprint(1)\n```\ntext\nFile: `c.txt`\n\n```\nhi\n```\n";
        let f = files_in(p);
        assert_eq!(
            f,
            vec![
                ("a/b.py".into(), "print(1)\n".into()),
                ("c.txt".into(), "hi\n".into())
            ]
        );
    }

    #[test]
    fn directives_parse() {
        assert_eq!(
            directive("x [[standin:fail 529 times=2]] y", "fail"),
            Some("529 times=2")
        );
        assert_eq!(directive("x [[standin:hang]]", "hang"), Some(""));
        assert_eq!(directive("nothing", "hang"), None);
    }

    #[test]
    fn turns_count_prompts_and_tool_results() {
        let body = json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"}, {"type": "text", "text": "one"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": [{"type": "tool_use"}]},
            {"role": "user", "content": [{"type": "tool_result"}]}
        ]});
        let t = read_turn(&body, "Primary working directory: /w/p1\\n");
        assert_eq!(t.prompts, vec!["one", "two"]);
        assert_eq!(t.tool_results_since_prompt, 1);
        assert_eq!(t.cwd.as_deref(), Some("/w/p1"));
    }
}
