//! `baton dashboard`: a web UI for the pool, served by the binary itself (every asset is
//! embedded: it works offline). Pages are rendered on the server; a little script keeps them
//! current from Server-Sent Events, fed by the pub/sub channel and, for a plan, by the plan's
//! stored event list (so nothing between the page's render and the stream is missed).
//!
//! # Layout
//! - `data`: what each page reads from Redis; `conversation`: a transcript as a chat;
//! - `pages`: the HTML; `assets`: the stylesheet and script; `actions`: the buttons;
//! - `schedules`: the schedules page's handlers;
//! - `guard`: the `Host` and `Origin` checks and the security headers every answer carries.
//!
//! Read-only unless started with `--allow-actions`; then every action (retry, cancel, requeue a
//! dead letter) also needs the token in `BATON_DASHBOARD_TOKEN`, and must come from one of the
//! dashboard's own pages (`Origin`). Binds to loopback by default, and answers only to its own
//! host names (`Host`), so a DNS-rebinding page cannot read it through that binding.

mod actions;
mod assets;
mod conversation;
mod data;
mod guard;
mod pages;
mod schedules;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use baton_connect::SharedConn;
use baton_core::{PlanId, PlanState};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::{Ctx, Failure};
use actions::done_banner;
use pages::Actions;

/// Most plans the plans page lists.
const PLANS_SHOWN: usize = 2000;
/// Most dead letters the dead-letter page lists.
const DEAD_SHOWN: isize = 500;

/// Serve a web dashboard: queues and workers, every plan, each plan's tasks, events and
/// conversation, and the dead letters. Read-only unless started with --allow-actions.
#[derive(clap::Args, Debug)]
pub(crate) struct Dashboard {
    /// Address to serve on. Loopback by default: put your own authentication in front before
    /// exposing it.
    #[arg(long, env = "BATON_DASHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Enable the buttons (retry, cancel, requeue a dead letter). Each action then needs the
    /// token set in BATON_DASHBOARD_TOKEN.
    #[arg(long)]
    allow_actions: bool,
    /// Another host name the dashboard answers to (repeatable; the environment variable takes
    /// them comma-separated), e.g. the name a reverse proxy forwards with. A name without a port
    /// matches with or without the listen port. Requests naming any other host get 421.
    /// Default: none; the listen address, and `localhost`, `127.0.0.1` and `[::1]` at its port
    /// when it is loopback or every address, are always accepted.
    #[arg(
        long = "dashboard-host",
        env = "BATON_DASHBOARD_HOST",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    dashboard_hosts: Vec<String>,
}

struct App {
    conn: SharedConn,
    ctx: Ctx,
    /// Every event published on the channel, as published.
    events: broadcast::Sender<Arc<str>>,
    /// The token actions need; `None`: read-only.
    token: Option<String>,
}

type Shared = Arc<App>;

impl App {
    fn actions(&self) -> Actions {
        Actions {
            enabled: self.token.is_some(),
        }
    }
}

impl Dashboard {
    pub(crate) async fn run(self, ctx: Ctx) -> Result<(), Failure> {
        let token = if self.allow_actions {
            match std::env::var("BATON_DASHBOARD_TOKEN") {
                Ok(t) if !t.is_empty() => Some(t),
                _ => {
                    return Err(Failure::BadInput(
                        "--allow-actions needs a token in BATON_DASHBOARD_TOKEN".into(),
                    ))
                }
            }
        } else {
            None
        };
        let conn = ctx.conn().await?;
        let (events, _) = broadcast::channel(1024);
        tokio::spawn(relay_events(
            ctx.connector.clone(),
            ctx.keys.channel(),
            events.clone(),
        ));
        let app = Arc::new(App {
            conn,
            ctx,
            events,
            token,
        });
        let router = Router::new()
            .route("/", get(overview))
            .route("/fragments/overview", get(overview_fragment))
            .route("/plans", get(plans))
            .route("/fragments/plans", get(plans_fragment))
            .route("/plans/{id}", get(plan))
            .route("/plans/{id}/tasks", get(plan_tasks))
            .route("/plans/{id}/{action}", post(actions::plan_action))
            .route("/dead", get(dead))
            .route("/schedules", get(schedules::page))
            .route("/fragments/schedules", get(schedules::fragment))
            .route("/schedules/{name}/run-now", post(schedules::run_now))
            .route("/dead/{id}/requeue", post(actions::requeue))
            .route("/events", get(events_stream))
            .route(
                "/assets/style.css",
                get(|| async { asset("text/css", assets::STYLE) }),
            )
            .route(
                "/assets/live.js",
                get(|| async { asset("text/javascript", assets::LIVE) }),
            )
            .with_state(app);
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .map_err(|e| Failure::Other(anyhow::Error::new(e).context("cannot listen")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Failure::Other(e.into()))?;
        // The port really bound (`--listen` may ask for port 0).
        let hosts = Arc::new(guard::Hosts::new(addr, &self.dashboard_hosts));
        let router = router.layer(axum::middleware::from_fn_with_state(hosts, guard::guard));
        eprintln!("dashboard at http://{addr}/");
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Failure::Other(e.into()))
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Forwards the pub/sub channel to the dashboard's SSE streams, reconnecting after outages.
async fn relay_events(
    connector: baton_connect::Connector,
    channel: String,
    out: broadcast::Sender<Arc<str>>,
) {
    let mut delays = baton_client::reconnect::reconnect_delays();
    loop {
        if let Ok(mut pubsub) = connector.pubsub().await {
            if pubsub.subscribe(&channel).await.is_ok() {
                delays = baton_client::reconnect::reconnect_delays();
                let mut stream = pubsub.on_message();
                while let Some(msg) = stream.next().await {
                    if let Ok(raw) = msg.get_payload::<String>() {
                        // No receiver is fine: nobody is watching.
                        let _ = out.send(raw.into());
                    }
                }
            }
        }
        tokio::time::sleep(baton_client::reconnect::next_delay(&mut delays)).await;
    }
}

/// A failure as a page.
fn failed(app: &App, status: StatusCode, title: &str, text: &str) -> Response {
    (status, pages::message_page(title, text, app.actions())).into_response()
}

fn redis_failed(app: &App, e: &redis::RedisError) -> Response {
    failed(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Redis unavailable",
        &format!("The dashboard could not read from Redis: {e}"),
    )
}

async fn overview(State(app): State<Shared>) -> Response {
    match data::overview(&mut app.conn.clone(), &app.ctx.keys).await {
        Ok(o) => pages::overview_page(&o, app.actions()).into_response(),
        Err(e) => redis_failed(&app, &e),
    }
}

async fn overview_fragment(State(app): State<Shared>) -> Response {
    match data::overview(&mut app.conn.clone(), &app.ctx.keys).await {
        Ok(o) => pages::overview_fragment(&o).into_response(),
        Err(e) => redis_failed(&app, &e),
    }
}

#[derive(Deserialize)]
struct PlansQuery {
    state: Option<String>,
}

/// The state `?state=` names (none given, or empty: every plan).
fn state_filter(q: &PlansQuery) -> Result<Option<PlanState>, baton_core::UnknownName> {
    match q.state.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some),
    }
}

/// An unknown `?state=`: a 400 naming it, not a list of every plan.
fn unknown_state(app: &App, e: &baton_core::UnknownName) -> Response {
    let known: Vec<&str> = PlanState::ALL.iter().map(|s| s.as_str()).collect();
    let text = format!(
        "The plans are filtered by a state: {e}; the states are {}.",
        known.join(", ")
    );
    failed(app, StatusCode::BAD_REQUEST, "No such state", &text)
}

async fn plans(State(app): State<Shared>, Query(q): Query<PlansQuery>) -> Response {
    let filter = match state_filter(&q) {
        Ok(f) => f,
        Err(e) => return unknown_state(&app, &e),
    };
    match data::plans(&mut app.conn.clone(), &app.ctx.keys, filter, PLANS_SHOWN).await {
        Ok(rows) => pages::plans_page(&rows, filter, app.actions()).into_response(),
        Err(e) => redis_failed(&app, &e),
    }
}

async fn plans_fragment(State(app): State<Shared>, Query(q): Query<PlansQuery>) -> Response {
    let filter = match state_filter(&q) {
        Ok(f) => f,
        Err(e) => return unknown_state(&app, &e),
    };
    match data::plans(&mut app.conn.clone(), &app.ctx.keys, filter, PLANS_SHOWN).await {
        Ok(rows) => pages::plans_fragment(&rows).into_response(),
        Err(e) => redis_failed(&app, &e),
    }
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn load_plan(app: &App, id: &str) -> Result<(PlanId, data::PlanDetail), Response> {
    let Ok(plan) = id.parse::<PlanId>() else {
        return Err(failed(
            app,
            StatusCode::NOT_FOUND,
            "No such plan",
            "That is not a plan id.",
        ));
    };
    match data::plan(&mut app.conn.clone(), &app.ctx.keys, &plan).await {
        Ok(Some(d)) => Ok((plan, d)),
        Ok(None) => Err(failed(
            app,
            StatusCode::NOT_FOUND,
            "No such plan",
            "Never submitted, or past its retention.",
        )),
        Err(e) => Err(redis_failed(app, &e)),
    }
}

async fn plan(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Query(d): Query<Done>,
) -> Response {
    match load_plan(&app, &id).await {
        Ok((plan, detail)) => {
            pages::plan_page(plan.as_str(), &detail, app.actions(), done_banner(&d)).into_response()
        }
        Err(r) => r,
    }
}

async fn plan_tasks(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match load_plan(&app, &id).await {
        Ok((_, detail)) => pages::tasks_fragment(&detail).into_response(),
        Err(r) => r,
    }
}

async fn dead(State(app): State<Shared>, Query(d): Query<Done>) -> Response {
    match data::dead_letters(&mut app.conn.clone(), &app.ctx.keys, DEAD_SHOWN).await {
        Ok(letters) => pages::dead_page(&letters, app.actions(), done_banner(&d)).into_response(),
        Err(e) => redis_failed(&app, &e),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    plan: Option<String>,
    after: Option<u64>,
}

/// Server-Sent Events: every event, or one plan's (its stored events after `after` first, then
/// the live ones, each once).
async fn events_stream(State(app): State<Shared>, Query(q): Query<EventsQuery>) -> Response {
    let rx = app.events.subscribe();
    let plan = q.plan.and_then(|p| p.parse::<PlanId>().ok());
    let backlog = match &plan {
        Some(p) => data::events_after(&mut app.conn.clone(), &app.ctx.keys, p, q.after)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let last = backlog.last().map(|(s, _)| *s).or(q.after);
    let backlog = futures_util::stream::iter(backlog.into_iter().map(|(_, raw)| raw));
    let live =
        futures_util::stream::unfold((rx, plan, last), |(mut rx, plan, mut last)| async move {
            loop {
                let raw = match rx.recv().await {
                    Ok(raw) => raw,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                if let Some(p) = &plan {
                    let Ok(ev) = serde_json::from_str::<baton_core::Event>(&raw) else {
                        continue;
                    };
                    if ev.plan_id.as_ref() != Some(p) {
                        continue;
                    }
                    if let (Some(seq), Some(seen)) = (ev.seq, last) {
                        if seq <= seen {
                            continue;
                        }
                    }
                    last = ev.seq.or(last);
                }
                return Some((raw.to_string(), (rx, plan, last)));
            }
        });
    let stream = backlog
        .chain(live)
        .map(|raw| Ok::<_, Infallible>(SseEvent::default().data(raw)));
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
