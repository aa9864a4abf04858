//! baton-standin: a local stand-in for the Anthropic Messages API.
//!
//! It exists so the real Claude Code CLI can run offline in baton's tests, demo and benchmarks.
//! It replaces only the model: the CLI, its session files, and baton itself run for real.
//!
//! What it answers, per `POST /v1/messages` (streamed as Server-Sent Events, or as one JSON
//! message when `stream` is false), looking at the newest user prompt of the request:
//! - With `--answers DIR` (`BATON_STANDIN_ANSWERS`), a prompt that contains the prompt of a task
//!   of the eval suite's answer keys (`DIR/*/project.json` and `standin.json`, see
//!   `eval/README.md`) plays that task: one `Write` per request for each of its files, then its
//!   closing text, each `{{fact}}` filled from the conversation the request carries (or the
//!   fact's guess when it holds none). What each fact resolved to when a task started is kept
//!   (`GET /_facts`: `[{"project", "task", "fact", "value", "found"}]`; `DELETE` forgets them).
//!   Such a prompt's other lines and directives are not read; `/_control` faults still apply.
//! - `Read: <relative path>` lines: the model reads each file with the CLI's `Read` tool first
//!   (one per request); whether the CLI found it is kept (`GET /_reads`).
//! - `File: <relative path>` followed by a fenced code block: the model writes that file with
//!   the CLI's `Write` tool (one file per turn, then a closing text). A real model reads the
//!   same prompt the same way, so plans written like this work with both.
//! - `[[standin:fail STATUS]]` or `[[standin:fail STATUS times=N]]`: answer with that HTTP
//!   error (every time, or for the first N requests carrying this prompt).
//! - `[[standin:limit SECS]]`: the first request with this prompt gets a 429 with rate-limit
//!   headers saying the limit resets in SECS seconds.
//! - `[[standin:structured JSON]]` (or `structured-once`: the first time only): when the request
//!   offers the CLI's `StructuredOutput` tool, call it with JSON as the answer.
//! - `[[standin:sleep MS]]`: wait before answering. `[[standin:hang]]`: start the stream and
//!   never finish it (`after_writes=N`: only once N files were written this turn; `times=N`:
//!   only the first N times). `[[standin:cut]]`: start the stream and drop the connection.
//! - Otherwise a text that reports the conversation it received: the number of prompts and
//!   each prompt's opening words, so a test (or a person) can see that context arrived.
//!
//! `POST /_control` sets pool-wide faults (`{"fail_status":529,"for_secs":20}`,
//! `{"fail_status":401,"match":"plan-x"}`, `{"clear":true}`); `GET /_requests` returns every
//! request body served, `DELETE /_requests` forgets them; `GET /_keys` the `x-api-key` of each messages request; `GET /_reads` returns each `Read` the
//! CLI answered: `{"path", "found", "content"}`. The address is printed on stdout as
//! `BATON_STANDIN_ADDR=127.0.0.1:PORT`.
//!
//! `baton-standin render --answers DIR --project NAME --knowing all|none --out OUT` writes the
//! files a project's tasks would leave, with or without the earlier tasks in the conversation,
//! and prints what each fact resolved to.
//!
//! # Layout
//! - `answers`: the answer keys, which task a prompt asks for, and facts; `render`.
//! - `prompt`: what a request asks for, and the reply it gets.
//! - `wire`: replies as Server-Sent Events or JSON, API errors, rate-limit responses.

mod answers;
mod prompt;
mod wire;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

use answers::{Answers, FactRecord, Knowing};
use prompt::{decide, read_turn};
use wire::{error_response, limited_response, sse_response, whole_message, Reply};

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
    /// A folder of answer keys (`DIR/*/project.json` with `standin.json`): prompts of their
    /// tasks are answered from them. Default: none.
    #[arg(long, env = "BATON_STANDIN_ANSWERS")]
    answers: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// With no subcommand, the stand-in serves the Messages API.
#[derive(Subcommand, Debug)]
enum Command {
    /// Write the files a project's tasks would leave, without a model or a pool, and print what
    /// each fact resolved to.
    Render {
        /// The folder of answer keys.
        #[arg(long, env = "BATON_STANDIN_ANSWERS")]
        answers: PathBuf,
        /// The project (its folder's name).
        #[arg(long)]
        project: String,
        /// What each task's conversation holds of the earlier tasks: `all` (one conversation)
        /// or `none` (a fresh one per task).
        #[arg(long, value_enum)]
        knowing: Knowing,
        /// The folder to write the files into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// A pool-wide fault set through `/_control`.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) status: u16,
    until: Option<Instant>,
    matching: Option<String>,
    pub(crate) stall: bool,
}

#[derive(Default)]
pub(crate) struct Shared {
    requests: Vec<Value>,
    faults: Vec<Fault>,
    /// How many requests carried each prompt that has a `fail ... times=N` directive.
    pub(crate) fail_counts: HashMap<String, u32>,
    /// Each `Read` the CLI answered (path, found, content), once per tool use.
    reads: Vec<Value>,
    read_ids: HashSet<String>,
    /// The `x-api-key` of every messages request, in order: what reached the endpoint.
    keys: Vec<String>,
    /// What each fact of an answer key resolved to when its task started, in order.
    facts: Vec<FactRecord>,
}

#[derive(Clone)]
struct AppState {
    // Locked only for short, non-async sections: never held across an await.
    shared: Arc<Mutex<Shared>>,
    latency: Duration,
    /// Loaded once at start-up (empty without `--answers`), read-only afterwards.
    answers: Arc<Answers>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    if let Some(Command::Render {
        answers,
        project,
        knowing,
        out,
    }) = args.command
    {
        return render(&answers, &project, knowing, &out);
    }
    let answers = match &args.answers {
        Some(dir) => Answers::load(dir)?,
        None => Answers::default(),
    };
    let state = AppState {
        shared: Arc::default(),
        latency: Duration::from_millis(args.latency_ms),
        answers: Arc::new(answers),
    };
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/_requests", get(list_requests).delete(clear_requests))
        .route("/_reads", get(list_reads))
        .route("/_keys", get(list_keys))
        .route("/_facts", get(list_facts).delete(clear_facts))
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
    // Answers stream as many small writes (one per event): like a real endpoint, send each at
    // once rather than let Nagle's algorithm wait for the client's delayed ACK (~40 ms).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// `baton-standin render`: the project's files into `out`, and each fact's value on stdout.
fn render(
    dir: &std::path::Path,
    project: &str,
    knowing: Knowing,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let answers = Answers::load(dir)?;
    let records = answers::render(&answers, project, knowing, out)?;
    for r in records {
        let how = if r.found { "found" } else { "guessed" };
        println!("{} {}: {} ({how})", r.task, r.fact, r.value);
    }
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

async fn list_keys(State(st): State<AppState>) -> Json<Value> {
    let shared = st.shared.lock().expect("lock poisoned only by a panic");
    Json(json!(shared.keys))
}

async fn list_reads(State(st): State<AppState>) -> Json<Value> {
    let shared = st.shared.lock().expect("lock poisoned only by a panic");
    Json(Value::Array(shared.reads.clone()))
}

async fn list_facts(State(st): State<AppState>) -> Json<Value> {
    let shared = st.shared.lock().expect("lock poisoned only by a panic");
    Json(json!(shared.facts))
}

async fn clear_facts(State(st): State<AppState>) -> StatusCode {
    st.shared
        .lock()
        .expect("lock poisoned only by a panic")
        .facts
        .clear();
    StatusCode::NO_CONTENT
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

async fn messages(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let raw = String::from_utf8_lossy(&body).into_owned();
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400, "request body is not JSON");
    };
    let turn = read_turn(&req);
    let prompt = turn.prompts.last().cloned().unwrap_or_default();
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("standin")
        .to_owned();

    // Outside the lock: a fact's search reads the whole conversation.
    let play = st.answers.play(&req, &turn, &prompt);
    let (reply, ending, sleep) = {
        let mut shared = st.shared.lock().expect("lock poisoned only by a panic");
        record_reads(&mut shared, &req);
        shared.requests.push(req.clone());
        shared.keys.push(key);
        let now = Instant::now();
        shared.faults.retain(|f| f.until.is_none_or(|u| u > now));
        let fault = shared
            .faults
            .iter()
            .find(|f| f.matching.as_ref().is_none_or(|m| raw.contains(m.as_str())))
            .cloned();
        match (fault, play) {
            (None, Some(play)) => {
                shared.facts.extend(play.facts);
                (play.reply, wire::Ending::Normal, Duration::ZERO)
            }
            (fault, _) => decide(&mut shared, &turn, &prompt, fault),
        }
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

/// Keeps what each `Read` tool use of the conversation found: the tool result that answered
/// it (an error result means the file was not there). Each tool use is kept once, however many
/// later requests repeat the conversation.
fn record_reads(shared: &mut Shared, req: &Value) {
    let blocks = || {
        req.get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("content").and_then(Value::as_array))
            .flatten()
    };
    let mut asked: HashMap<&str, &str> = HashMap::new();
    for b in blocks() {
        if b.get("type").and_then(Value::as_str) == Some("tool_use")
            && b.get("name").and_then(Value::as_str) == Some("Read")
        {
            if let (Some(id), Some(path)) = (
                b.get("id").and_then(Value::as_str),
                b.pointer("/input/file_path").and_then(Value::as_str),
            ) {
                asked.insert(id, path);
            }
        }
    }
    for b in blocks() {
        if b.get("type").and_then(Value::as_str) != Some("tool_result") {
            continue;
        }
        let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
            continue;
        };
        let Some(path) = asked.get(id) else { continue };
        if !shared.read_ids.insert(id.to_owned()) {
            continue;
        }
        let content = prompt::result_text(b);
        let found = !b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        shared
            .reads
            .push(json!({"path": path, "found": found, "content": content}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server stays the default (existing callers pass no subcommand); `render` has its own
    /// flags.
    #[test]
    fn command_lines_parse() {
        let parse = |line: &str| Args::try_parse_from(line.split_whitespace());
        for ok in [
            "baton-standin",
            "baton-standin --listen 127.0.0.1:0 --answers eval/projects",
            "baton-standin render --answers a --project p --knowing all --out o",
            "baton-standin render --answers a --project p --knowing none --out o",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "baton-standin render --answers a --project p --knowing some --out o",
            "baton-standin render --answers a --project p --knowing all",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let args = Args::try_parse_from(["baton-standin", "--answers", "d"]).expect("parses");
        assert_eq!(args.answers, Some(PathBuf::from("d")));
        assert!(args.command.is_none());
    }
}
