//! The dashboard's pages, rendered on the server with maud (which escapes every value it
//! interpolates: a prompt holding `<script>` shows as text). Parts a page keeps current are
//! rendered by their own functions, served again as fragments when events arrive.

use baton_core::event::EventBody;
use baton_core::{Counter, PlanState};
use maud::{html, Markup, DOCTYPE};

use super::conversation::{describe, turns, Turn};
use super::data::{Overview, PlanDetail, PlanRow};
use crate::render::short;

/// Whether the buttons act, and what they say when they do not.
#[derive(Debug, Clone, Copy)]
pub(super) struct Actions {
    pub(super) enabled: bool,
}

impl Actions {
    const READ_ONLY: &'static str = "read-only: start the dashboard with --allow-actions";
}

fn layout(
    title: &str,
    actions: Actions,
    events: Option<&str>,
    flash: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · baton" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body data-events=[events] {
                header {
                    a.brand href="/" { "baton" }
                    a href="/" { "Overview" }
                    a href="/plans" { "Plans" }
                    a href="/dead" { "Dead letters" }
                    span.mode { @if actions.enabled { "actions enabled" } @else { "read-only" } }
                }
                main {
                    @if let Some(f) = flash { div.banner { (f) } }
                    (body)
                }
                script src="/assets/live.js" {}
            }
        }
    }
}

fn state_badge(state: &str) -> Markup {
    html! { span.state.(state) { (state) } }
}

fn money(usd: f64) -> String {
    format!("${usd:.4}")
}

fn token_field(actions: Actions) -> Markup {
    html! {
        @if actions.enabled {
            input type="password" name="token" placeholder="token" autocomplete="off";
        }
    }
}

fn action_button(label: &str, actions: Actions) -> Markup {
    html! {
        @if actions.enabled { button type="submit" { (label) } }
        @else { button type="submit" disabled title=(Actions::READ_ONLY) { (label) } }
    }
}

/// `/`: queues, workers, the last hour, sessions and cost.
pub(super) fn overview_page(o: &Overview, actions: Actions) -> Markup {
    let body = html! {
        h1 { "Overview" }
        div #overview data-fragment="/fragments/overview" { (overview_fragment(o)) }
    };
    layout("Overview", actions, Some("/events"), None, body)
}

pub(super) fn overview_fragment(o: &Overview) -> Markup {
    let attempted = o.counter(Counter::ResumesAttempted);
    let rate = (attempted > 0.0).then(|| o.counter(Counter::ResumesSucceeded) / attempted);
    html! {
        @if let Some(p) = &o.pause { div.banner.bad { "Pool paused: " (p) } }
        div.cards {
            div.card { div.n { (o.submit) } div.l { "submitted, not yet ingested" } }
            div.card { div.n { (o.ready) } div.l { "plans ready for a worker" } }
            div.card { div.n { (o.delayed) } div.l { "plans waiting for a time or another plan" } }
            div.card { div.n { (o.dead) } div.l { "dead letters" } }
            div.card { div.n { (o.workers.len()) } div.l { "live workers" } }
            div.card {
                div.n { @if let Some(r) = rate { (format!("{:.1}%", r * 100.0)) } @else { "n/a" } }
                div.l { "resume success rate" }
            }
            div.card { div.n { (o.counter(Counter::Handoffs)) } div.l { "handoffs" } }
            div.card { div.n { (o.counter(Counter::Fallbacks)) } div.l { "fallbacks" } }
            div.card { div.n { (money(o.counter(Counter::CostUsd))) } div.l { "cost" } }
        }
        h2 { "The last hour" }
        (timeline(o))
        p.muted {
            "Bars: tasks committed per minute. Line: resume success rate per minute. "
            (o.counter(Counter::TasksSucceeded)) " tasks succeeded, "
            (o.counter(Counter::TasksFailed)) " failed, "
            (o.counter(Counter::TaskRetries)) " retries in all."
        }
        h2 { "Workers" }
        table {
            tr { th { "worker" } th.num { "heartbeat" } th.num { "plans held" } th { "mode" } th { "sandbox" } }
            @for w in &o.workers {
                tr {
                    td.mono { (w.id) }
                    td.num { (format!("{:.1} s ago", w.heartbeat_ago_ms as f64 / 1000.0)) }
                    td.num { (w.holding) }
                    td { (w.mode.as_deref().unwrap_or("?")) }
                    @match w.sandbox.as_deref() {
                        Some("boxed") => td { "boxed" },
                        Some(other) => td { span.state.failed title="--sandbox off: this worker runs plans with its own access to its disk and network" { (other) } },
                        None => td.muted { "?" },
                    }
                }
            }
            @if o.workers.is_empty() { tr { td colspan="5" .muted { "no live worker" } } }
        }
    }
}

/// Tasks per minute as bars, the resume success rate as a line.
fn timeline(o: &Overview) -> Markup {
    const W: f64 = 720.0;
    const H: f64 = 120.0;
    let n = o.minutes.len().max(1) as f64;
    let most = o.minutes.iter().map(|m| m.tasks).fold(1.0, f64::max);
    let bar = W / n;
    let rate_points: Vec<String> = o
        .minutes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.resumes_attempted > 0.0)
        .map(|(i, m)| {
            let r = m.resumes_succeeded / m.resumes_attempted;
            format!(
                "{:.1},{:.1}",
                (i as f64 + 0.5) * bar,
                H - r * (H - 10.0) - 5.0
            )
        })
        .collect();
    html! {
        svg.chart width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) role="img" aria-label="tasks per minute over the last hour" {
            @for (i, m) in o.minutes.iter().enumerate() {
                @let h = m.tasks / most * (H - 10.0);
                rect x=(format!("{:.1}", i as f64 * bar + 1.0)) y=(format!("{:.1}", H - h)) width=(format!("{:.1}", bar - 2.0)) height=(format!("{h:.1}")) fill="#84caff" {
                    title { (m.tasks) " tasks" }
                }
            }
            @if rate_points.len() > 1 {
                polyline points=(rate_points.join(" ")) fill="none" stroke="#067647" stroke-width="2" {}
            }
        }
    }
}

/// `/plans`: every plan, the most recently active first, filtered by state.
pub(super) fn plans_page(rows: &[PlanRow], filter: Option<PlanState>, actions: Actions) -> Markup {
    let query = filter.map_or(String::new(), |s| format!("?state={s}"));
    let body = html! {
        h1 { "Plans" }
        p.filters {
            a.on[filter.is_none()] href="/plans" { "all" }
            @for s in PlanState::ALL {
                a.on[filter == Some(*s)] href=(format!("/plans?state={s}")) { (s) }
            }
        }
        div #plans data-fragment=(format!("/fragments/plans{query}")) { (plans_fragment(rows)) }
    };
    layout("Plans", actions, Some("/events"), None, body)
}

pub(super) fn plans_fragment(rows: &[PlanRow]) -> Markup {
    html! {
        table {
            tr {
                th { "plan" } th { "state" } th { "progress" } th.num { "cost" }
                th { "session" } th.num { "session TTL" } th { "last worker" } th { "updated" }
            }
            @for r in rows {
                @let done = r.hash.done;
                @let total = done + r.pending;
                tr {
                    td { a href=(format!("/plans/{}", r.id)) { (r.id) } }
                    td { (state_badge(r.hash.state.map_or("unknown", |s| s.as_str()))) }
                    td.num { (done) "/" (total) }
                    td.num { (money(r.hash.cost_usd)) }
                    td.mono { (r.hash.session_id.map(|s| s.to_string()).unwrap_or_default()) }
                    td.num { @if let Some(t) = r.session_ttl { (t) " s" } @else { span.muted { "expired" } } }
                    td.mono { (r.hash.last_worker.as_ref().map(|w| w.to_string()).unwrap_or_default()) }
                    td.muted { (r.hash.updated_at.as_deref().unwrap_or("")) }
                }
            }
            @if rows.is_empty() { tr { td colspan="8" .muted { "no plan" } } }
        }
    }
}

/// `/plans/<id>`: its tasks, events arriving live, and its conversation.
pub(super) fn plan_page(id: &str, d: &PlanDetail, actions: Actions, flash: Option<&str>) -> Markup {
    let h = &d.view.hash;
    let state = h.state.map_or("unknown", |s| s.as_str());
    let total = d.results.len() + d.tasks.len();
    let pct = if total == 0 {
        0.0
    } else {
        d.results.len() as f64 * 100.0 / total as f64
    };
    let last_seq = d.events.iter().filter_map(|e| e.seq).max();
    let events_src = match last_seq {
        Some(s) => format!("/events?plan={id}&after={s}"),
        None => format!("/events?plan={id}"),
    };
    let ended = matches!(h.state, Some(PlanState::Completed | PlanState::Cancelled));
    let body = html! {
        h1 { "Plan " (id) " " (state_badge(state)) }
        table {
            tr { th { "progress" } td {
                progress value=(format!("{pct:.0}")) max="100" { (format!("{pct:.0}%")) }
                " " (d.results.len()) "/" (total) " tasks"
            } }
            tr { th { "cost" } td { (money(h.cost_usd)) } }
            tr { th { "session" } td.mono {
                @if let Some(s) = &d.view.session {
                    (s.session_id) " · " (s.tasks) " task(s) · expires in " (d.view.session_ttl.unwrap_or(0)) " s"
                } @else { span.muted { "none live" } }
            } }
            tr { th { "workspace" } td.mono { (h.workspace.as_deref().unwrap_or("")) } }
            @if let Some(r) = &h.repo {
                tr { th { "repository" } td.mono {
                    (r.url.redacted()) " · branch " (r.branch)
                    @if let Some(c) = &h.checkpoint { " · at " (short_sha(c)) }
                } }
            }
            tr { th { "last worker" } td.mono { (h.last_worker.as_ref().map(|w| w.to_string()).unwrap_or_default()) } }
            @if let Some(e) = &h.last_error { tr { th { "last error" } td { (e) } } }
        }
        p {
            @if h.state == Some(PlanState::Failed) {
                form.inline method="post" action=(format!("/plans/{id}/retry")) {
                    (token_field(actions)) " " (action_button("retry", actions))
                }
            }
            " "
            @if matches!(h.state, Some(PlanState::Queued | PlanState::Running)) {
                form.inline method="post" action=(format!("/plans/{id}/pause")) {
                    (token_field(actions)) " " (action_button("pause", actions))
                }
            }
            @if h.state == Some(PlanState::Paused) {
                form.inline method="post" action=(format!("/plans/{id}/resume")) {
                    (token_field(actions)) " " (action_button("resume", actions))
                }
            }
            " "
            @if !ended {
                form.inline method="post" action=(format!("/plans/{id}/cancel")) {
                    (token_field(actions)) " " (action_button("cancel", actions))
                }
            }
        }
        @if h.state == Some(PlanState::AwaitingReview) {
            h2 { "Review" }
            p {
                "Task " span.mono { (h.review_task_id().unwrap_or_default()) }
                " waits for a review: approve it (the note, if any, comes first in the next task's prompt), or reject it (the task runs again, with the note as its prompt)."
            }
            form method="post" action=(format!("/plans/{id}/approve")) {
                input type="text" name="note" placeholder="note (optional)" size="50";
                " " (token_field(actions)) " " (action_button("approve", actions))
            }
            form method="post" action=(format!("/plans/{id}/reject")) {
                input type="text" name="note" placeholder="what to change (required)" size="50";
                " " (token_field(actions)) " " (action_button("reject", actions))
            }
        }
        h2 { "Tasks" }
        div #tasks data-fragment=(format!("/plans/{id}/tasks")) { (tasks_fragment(d)) }
        h2 { "Events" }
        ul #events .events {
            @for e in d.events.iter().rev().take(200) {
                li {
                    (e.at.get(11..19).unwrap_or(&e.at)) " " (e.kind())
                    @if let Some(t) = &e.task_id { " task " (t) }
                    @if let Some(r) = e.body.reason() { " " (r) }
                }
            }
        }
        h2 { "Conversation" }
        (conversation(d))
    };
    layout(
        &format!("Plan {id}"),
        actions,
        Some(&events_src),
        flash,
        body,
    )
}

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub(super) fn tasks_fragment(d: &PlanDetail) -> Markup {
    let running = d.view.hash.state == Some(PlanState::Running);
    html! {
        table {
            tr {
                th.num { "#" } th { "task" } th { "status" } th.num { "duration" } th.num { "cost" }
                th.num { "attempts" } th { "commit" } th { "result or prompt" }
            }
            @for r in &d.results {
                tr id=(format!("task-{}", r.task_id)) data-status="done" {
                    td.num { (r.task_index + 1) }
                    td.mono { (r.task_id) }
                    td { (state_badge("done")) }
                    td.num { (format!("{:.1} s", r.duration_ms as f64 / 1000.0)) }
                    td.num { (money(r.cost_usd)) }
                    td.num { (r.attempts) }
                    td.mono {
                        @if let (Some(c), Some(s)) = (&r.commit, r.diffstat) {
                            (short_sha(c)) " +" (s.insertions) " -" (s.deletions)
                        }
                    }
                    td { (short(&r.result, 160)) }
                }
            }
            @for (i, t) in d.tasks.iter().enumerate() {
                @let status = if i == 0 && running { "running" } else { "pending" };
                tr id=(format!("task-{}", t.id)) data-status=(status) {
                    td.num { (t.index + 1) }
                    td.mono { (t.id) }
                    td { (state_badge(status)) }
                    td {} td {} td {} td {}
                    td.muted { (short(&t.prompt, 160)) }
                }
            }
        }
    }
}

fn conversation(d: &PlanDetail) -> Markup {
    let changes: Vec<_> = d
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                EventBody::SessionCreated(_)
                    | EventBody::SessionFallback(_)
                    | EventBody::SessionRotated(_)
            )
        })
        .collect();
    let shown = match (&d.view.session, &d.transcript) {
        (Some(s), Some((base, chunks))) => {
            baton_core::transcript::assemble_jsonl(base, chunks, s.session_id)
                .ok()
                .flatten()
                .map(|jsonl| turns(&jsonl))
        }
        _ => None,
    };
    html! {
        div.chat {
            @for e in &changes {
                div.turn.marker {
                    span.who { "session" }
                    @match &e.body {
                        EventBody::SessionFallback(f) => {
                            "Task " (e.task_index.map_or(0, |i| i + 1)) ": the previous conversation could not be resumed ("
                            (f.reason) "); a new session began with a recap."
                        }
                        EventBody::SessionRotated(_) => {
                            "Task " (e.task_index.map_or(0, |i| i + 1)) ": the conversation grew past the context limit; a new session began with a recap."
                        }
                        _ => { "Task " (e.task_index.map_or(0, |i| i + 1)) ": the conversation began." }
                    }
                }
            }
            @match &shown {
                Some(turns) => {
                    @for t in turns {
                        @match t {
                            Turn::Prompt(p) => div.turn.prompt { span.who { "prompt" } (p) },
                            Turn::Text(x) => div.turn.text { span.who { "assistant" } (x) },
                            Turn::Tool { name, target } => div.turn.tool {
                                (describe(name)) " " span.mono { (target) } " (" (name) ")"
                            },
                        }
                    }
                }
                None => p.muted { "No committed conversation to show (none yet, or its session expired)." }
            }
        }
    }
}

/// `/dead`: dead letters, newest first.
pub(super) fn dead_page(
    letters: &[(String, baton_core::records::DeadLetter)],
    actions: Actions,
    flash: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Dead letters" }
        table {
            tr { th { "when" } th { "kind" } th { "plan" } th { "reason" } th { "document" } th {} }
            @for (_, l) in letters {
                tr id=(format!("dead-{}", l.id)) {
                    td.muted { (l.at) }
                    td { (l.kind) }
                    td.mono { @if let Some(p) = &l.plan_id { a href=(format!("/plans/{p}")) { (p) } } }
                    td { (l.reason) }
                    td.mono { (short(l.document.as_deref().unwrap_or(""), 200)) }
                    td {
                        @if l.document.is_some() {
                            form.inline method="post" action=(format!("/dead/{}/requeue", l.id)) {
                                (token_field(actions)) " " (action_button("requeue", actions))
                            }
                        }
                    }
                }
            }
            @if letters.is_empty() { tr { td colspan="6" .muted { "no dead letter" } } }
        }
    };
    layout("Dead letters", actions, None, flash, body)
}

/// A page saying what is wrong (no such plan, a refused action).
pub(super) fn message_page(title: &str, text: &str, actions: Actions) -> Markup {
    layout(
        title,
        actions,
        None,
        None,
        html! { h1 { (title) } p { (text) } },
    )
}
