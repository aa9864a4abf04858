//! How events look to a person (`--json` prints them as they are).

use std::io::Write;

use baton_core::event::{EventBody, ReviewApproved, ReviewRejected, TaskProgress};
use baton_core::Event;

/// Prints one line to stdout. `false` when stdout is closed (e.g. piped into `head`): the
/// caller then stops quietly, as command-line tools do.
pub(crate) fn out(line: &str) -> bool {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").and_then(|()| o.flush()).is_ok()
}

/// `s` on one line, cut to `n` characters.
pub(crate) fn short(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

/// One line for a person.
pub(crate) fn human(e: &Event) -> String {
    let time = e.at.get(11..19).unwrap_or(&e.at);
    let plan = e.plan_id.as_ref().map_or("-", |p| p.as_str());
    let task = match (e.task_index, &e.task_id) {
        (Some(i), Some(id)) => format!(" task {} ({})", i + 1, short(id.as_str(), 12)),
        _ => String::new(),
    };
    let detail = match &e.body {
        EventBody::TaskSucceeded(s) => format!(
            " ${:.4} {:.1}s: {}",
            s.cost_usd,
            s.duration_ms as f64 / 1000.0,
            short(&s.result, 160)
        ),
        EventBody::TaskProgress(TaskProgress::ToolUse(t)) => match &t.file_path {
            Some(p) => format!(" {} {p}", t.tool),
            None => format!(" {}", t.tool),
        },
        EventBody::TaskProgress(TaskProgress::ApiRetry(r)) => format!(
            " API {} retry (CLI attempt {})",
            r.status.map(|s| s.to_string()).unwrap_or_default(),
            r.cli_attempt
        ),
        EventBody::PlanAccepted(a) => format!(" {} {} task(s)", a.status, a.tasks.unwrap_or(0)),
        EventBody::TaskStarted(s) => format!(" attempt {}", s.attempt),
        EventBody::ReviewRequested(r) => format!(
            ": `baton approve {plan}` or `baton reject {plan} --note ...`: {}",
            short(&r.result, 160)
        ),
        EventBody::ReviewApproved(ReviewApproved { note: Some(n) })
        | EventBody::ReviewRejected(ReviewRejected { note: n }) => format!(": {}", short(n, 200)),
        EventBody::ScheduleFired(f) => format!(
            " by schedule {} (tick {}{}{})",
            f.schedule,
            f.tick,
            if f.run_now { ", run now" } else { "" },
            if f.missed > 0 {
                format!(", {} missed before it", f.missed)
            } else {
                String::new()
            }
        ),
        EventBody::WebhookFailed(w) => {
            format!(" {} to {}: {}", w.event, w.url, short(&w.reason, 200))
        }
        body => match (body.reason(), body.session_id()) {
            (Some(r), _) => format!(": {}", short(r, 200)),
            (None, Some(s)) => format!(" session {s}"),
            _ => String::new(),
        },
    };
    format!("{time} {plan}{task} {}{detail}", e.kind())
}
