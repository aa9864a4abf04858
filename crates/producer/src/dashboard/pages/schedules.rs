//! `/schedules`: the recurring plans, each with its cron and zone, its next tick, the last
//! tick it fired and that tick's plan (linked), and its last run-now. Kept current by the
//! events (a `schedule_fired` refreshes it).

use baton_client::schedules::Schedules;
use baton_core::schedule::Fired;
use maud::{html, Markup};

use super::{action_button, layout, token_field, Actions};
use crate::schedule::rfc3339;

/// The whole page.
pub(in crate::dashboard) fn schedules_page(s: &Schedules, actions: Actions) -> Markup {
    let body = html! {
        h1 { "Schedules" }
        p.muted {
            "Added with " code { "baton schedule add NAME --cron EXPR --plan FILE" } ". "
            "Each tick's plan is " code { "NAME-<UTC time>Z" } "; after an outage only the latest missed tick fires."
        }
        div #schedules data-fragment="/fragments/schedules" { (schedules_fragment(s)) }
        // Outside the live part: a token being typed is not replaced when a tick fires.
        @if !s.entries.is_empty() {
            h2 { "Run now" }
            p.muted { "Submits the schedule's plan at once, as " code { "NAME-now-<time>Z" } "; the ticks go on." }
            @for e in &s.entries {
                form.inline #(format!("run-{}", e.def.name)) method="post" action=(format!("/schedules/{}/run-now", e.def.name)) {
                    (e.def.name) " " (token_field(actions)) " " (action_button("run now", actions))
                }
                " "
            }
        }
    };
    layout("Schedules", actions, Some("/events"), None, body)
}

/// A fired tick or run-now: its time and its plan, linked.
fn fired_cell(f: Option<&Fired>) -> Markup {
    html! {
        @if let Some(f) = f {
            span.muted { (rfc3339(f.tick_ms)) } " "
            a.mono href=(format!("/plans/{}", f.plan_id)) { (f.plan_id) }
            @if f.missed > 0 { " " span.state.paused title="due ticks skipped while no worker could fire" { (f.missed) " missed" } }
        } @else {
            span.muted { "none yet" }
        }
    }
}

/// The table, served again as a fragment when events arrive.
pub(in crate::dashboard) fn schedules_fragment(s: &Schedules) -> Markup {
    html! {
        table {
            tr { th { "schedule" } th { "cron" } th { "zone" } th { "next tick" } th { "last tick fired" } th { "last run-now" } }
            @for e in &s.entries {
                tr id=(format!("schedule-{}", e.def.name)) {
                    td { (e.def.name) }
                    td.mono { (e.def.cron) }
                    td { (e.def.zone) }
                    td.muted { (e.next_tick(s.now_ms).map_or("never".into(), rfc3339)) }
                    td { (fired_cell(e.fired.as_ref())) }
                    td { (fired_cell(e.run_now.as_ref())) }
                }
            }
            @for name in &s.broken {
                tr { td { (name) } td colspan="5" { span.state.failed { "does not decode: remove it" } } }
            }
            @if s.entries.is_empty() && s.broken.is_empty() { tr { td colspan="6" .muted { "no schedule" } } }
        }
    }
}
