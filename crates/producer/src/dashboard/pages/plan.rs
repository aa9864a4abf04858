//! A plan's page: its summary, the controls its state allows, a review's forms, its tasks
//! (kept current as a fragment), its events and its conversation.

use baton_core::event::EventBody;
use baton_core::PlanState;
use maud::{html, Markup};

use super::{action_button, layout, money, state_badge, token_field, Actions};
use crate::dashboard::conversation::{describe, turns, Turn};
use crate::dashboard::data::PlanDetail;
use crate::render::short;

/// `/plans/<id>`: its tasks, events arriving live, and its conversation.
pub(in crate::dashboard) fn plan_page(
    id: &str,
    d: &PlanDetail,
    actions: Actions,
    flash: Option<&str>,
) -> Markup {
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
    let body = html! {
        h1 { "Plan " (id) " " (state_badge(state)) }
        (summary(d, pct, total))
        (controls(id, d, actions))
        (review(id, d, actions))
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

/// The plan's progress, cost, session, workspace, repository and last worker and error.
fn summary(d: &PlanDetail, pct: f64, total: usize) -> Markup {
    let h = &d.view.hash;
    html! {
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
            @if let Some(t) = h.trace_id() { tr { th { "trace" } td.mono { (t) } } }
        }
    }
}

/// The buttons the plan's state allows: retry, pause or resume, cancel.
fn controls(id: &str, d: &PlanDetail, actions: Actions) -> Markup {
    let h = &d.view.hash;
    let ended = matches!(h.state, Some(PlanState::Completed | PlanState::Cancelled));
    html! {
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
    }
}

/// A plan awaiting review: what waits, and the approve and reject forms.
fn review(id: &str, d: &PlanDetail, actions: Actions) -> Markup {
    let h = &d.view.hash;
    html! {
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
    }
}

fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The tasks table: done tasks with results, then pending ones (served again as a fragment).
pub(in crate::dashboard) fn tasks_fragment(d: &PlanDetail) -> Markup {
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
