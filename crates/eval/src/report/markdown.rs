//! The report as Markdown: the criteria, the arms side by side, then each plan's line.

use std::fmt::Write;

use super::{Report, Summary};

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "–".into(), f)
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The reduction of missing imports against `isolated`, with its interval when there is one.
pub(super) fn reduction_text(s: &Summary) -> String {
    match s.missing_import_reduction {
        None => "–".into(),
        Some(e) => match (e.low, e.high) {
            (Some(l), Some(h)) => format!("{} ({}..{})", pct(e.mean), pct(l), pct(h)),
            _ => pct(e.mean),
        },
    }
}

/// One row of the arms table.
pub(super) fn summary_row(s: &Summary) -> String {
    let e = s.errors_per_project;
    let class =
        |f: fn(&super::ErrorsPerProject) -> f64| opt(e.as_ref().map(f), |x| format!("{x:.2}"));
    format!(
        "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s.arm,
        s.language
            .map_or("all".into(), |l| format!("{l:?}").to_lowercase()),
        s.completed,
        s.plans,
        class(|e| e.missing_import),
        class(|e| e.cross_reference),
        class(|e| e.other),
        class(|e| e.failing_tests),
        opt(s.references_correct, pct),
        reduction_text(s),
        opt(s.ms_per_task, |ms| format!("{:.1} s", ms / 1000.0)),
        opt(s.usd_per_task, |c| format!("${c:.4}")),
        opt(s.resume_success, pct),
        opt(s.handoff_share, pct),
    )
}

/// The header of the arms table.
pub(super) const SUMMARY_HEAD: &str = "| arm | language | completed | missing imports | broken cross-refs | other errors | failing tests | refs all correct | missing imports vs isolated | time/task | cost/task | resumes ok | tasks on another worker |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// The whole report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# baton eval {}\n", r.run);
    let _ = writeln!(
        s,
        "Started {}; model: {}; session mode: {}{}; {} repeat(s); arms: {}; {:.0} s.\n",
        r.started_at,
        r.model,
        r.session_mode,
        r.rotate_at_tokens
            .map(|n| format!("; sessions rotated past {n} tokens"))
            .unwrap_or_default(),
        r.repeat,
        r.arms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        r.wall_secs
    );
    if r.offline {
        s.push_str(
            "**Offline run**: the model was baton's stand-in, which fills a name an earlier task chose only from the conversation it received, and guesses otherwise. These figures measure the harness, not a model.\n\n",
        );
    }
    s.push_str(
        "## The seed's criteria (session arm)\n\n| criterion | measured | met |\n|---|---|---|\n",
    );
    for c in &r.criteria {
        let met = match c.met {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        };
        let _ = writeln!(s, "| {} | {} | {met} |", c.criterion, c.measured);
    }
    s.push_str("\n## Errors per project, by arm and language\n\n");
    s.push_str(SUMMARY_HEAD);
    s.push('\n');
    for sum in &r.summaries {
        s.push_str(&summary_row(sum));
        s.push('\n');
    }
    s.push_str("\n## Plans\n\n| plan | state | tasks | missing imports | broken cross-refs | other | failing tests | note |\n|---|---|---|---|---|---|---|---|\n");
    for p in &r.plans {
        let (mi, xr, ot, ft) = p.checked.as_ref().map_or(
            ("–".into(), "–".into(), "–".into(), "–".into()),
            |c| {
                let k = c.counts;
                (
                    k.missing_import.to_string(),
                    k.cross_reference.to_string(),
                    k.other.to_string(),
                    k.failing_tests.to_string(),
                )
            },
        );
        let note = p.check_error.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {}/{} | {mi} | {xr} | {ot} | {ft} | {note} |",
            p.plan_id, p.state, p.tasks_done, p.tasks
        );
    }
    s
}
