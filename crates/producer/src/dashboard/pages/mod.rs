//! The dashboard's pages, rendered on the server with maud (which escapes every value it
//! interpolates: a prompt holding `<script>` shows as text). Parts a page keeps current are
//! rendered by their own functions, served again as fragments when events arrive.

use baton_core::{Counter, PlanState};
use maud::{html, Markup, DOCTYPE};

use super::data::{Overview, PlanRow};
use crate::render::short;

mod plan;
mod schedules;
pub(super) use plan::{plan_page, tasks_fragment};
pub(super) use schedules::{schedules_fragment, schedules_page};

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
                    a href="/schedules" { "Schedules" }
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
        @if !o.limits.keys.is_empty() {
            h2 { "Limits per key" }
            table {
                tr { th { "key" } th.num { "limit" } th.num { "running" } th.num { "waiting on the limit" } th.num { "budget per day" } th.num { "spent today" } }
                @for k in &o.limits.keys {
                    tr {
                        td.mono { (k.key) }
                        td.num { @match k.limit { Some(n) => (n), None => "-" } @if k.default_limit { " (default)" } }
                        td.num { (k.running) }
                        td.num { (k.waiting) }
                        td.num { @match k.budget_per_day_usd { Some(b) => (money(b)), None => "-" } }
                        td.num { (money(k.spent_today_usd)) }
                    }
                }
            }
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
