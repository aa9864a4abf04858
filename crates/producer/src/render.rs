//! How events look to a person (`--json` prints them as they are).

use std::io::Write;

use baton_core::{Event, EventKind};

/// Prints one line to stdout. `false` when stdout is closed (e.g. piped into `head`): the
/// caller then stops quietly, as command-line tools do.
pub(crate) fn out(line: &str) -> bool {
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").and_then(|()| o.flush()).is_ok()
}
use serde_json::Value;

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
    let f = |k: &str| e.fields.get(k);
    let detail = match e.kind {
        EventKind::TaskSucceeded => {
            let cost = f("cost_usd").and_then(Value::as_f64).unwrap_or(0.0);
            let ms = f("duration_ms").and_then(Value::as_u64).unwrap_or(0);
            format!(
                " ${cost:.4} {:.1}s: {}",
                ms as f64 / 1000.0,
                short(e.field_str("result").unwrap_or(""), 160)
            )
        }
        EventKind::TaskProgress => match (e.field_str("tool"), e.field_str("file_path")) {
            (Some(t), Some(p)) => format!(" {t} {p}"),
            (Some(t), None) => format!(" {t}"),
            _ if f("api_retry").is_some() => format!(
                " API {} retry (CLI attempt {})",
                f("status")
                    .and_then(Value::as_u64)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                f("cli_attempt").and_then(Value::as_u64).unwrap_or(0)
            ),
            _ => String::new(),
        },
        EventKind::PlanAccepted => format!(
            " {} {} task(s)",
            e.field_str("status").unwrap_or(""),
            f("tasks").and_then(Value::as_u64).unwrap_or(0)
        ),
        EventKind::TaskStarted => format!(
            " attempt {}",
            f("attempt").and_then(Value::as_u64).unwrap_or(1)
        ),
        EventKind::ReviewRequested => format!(
            ": `baton approve {plan}` or `baton reject {plan} --note ...`: {}",
            short(e.field_str("result").unwrap_or(""), 160)
        ),
        EventKind::ReviewApproved | EventKind::ReviewRejected => e
            .field_str("note")
            .map(|n| format!(": {}", short(n, 200)))
            .unwrap_or_default(),
        EventKind::WebhookFailed => format!(
            " {} to {}: {}",
            e.field_str("event").unwrap_or(""),
            e.field_str("url").unwrap_or(""),
            short(e.field_str("reason").unwrap_or(""), 200)
        ),
        _ => match (e.field_str("reason"), e.field_str("session_id")) {
            (Some(r), _) => format!(": {}", short(r, 200)),
            (None, Some(s)) => format!(" session {s}"),
            _ => String::new(),
        },
    };
    format!("{time} {plan}{task} {}{detail}", e.kind)
}
