//! `baton eval --compare A.json B.json`: two runs' arms side by side.

use std::fmt::Write;

use super::{Report, Summary};

fn key(s: &Summary) -> (String, String) {
    (
        s.arm.to_string(),
        s.language
            .map_or("all".into(), |l| format!("{l:?}").to_lowercase()),
    )
}

fn cell(s: Option<&Summary>, f: impl Fn(&Summary) -> String) -> String {
    s.map_or_else(|| "–".into(), f)
}

/// What a run was set to: model, mode, rotation, repeats.
fn settings(r: &Report) -> String {
    let rotation = r
        .rotate_at_tokens
        .map(|n| format!(", rotated past {n} tokens"))
        .unwrap_or_default();
    format!(
        "model {}, {} mode{rotation}, {} repeat(s)",
        r.model, r.session_mode, r.repeat
    )
}

/// Both runs' figures, row by row (arm and language), A then B.
pub fn compare_markdown(a: &Report, b: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# baton eval: {} (A) against {} (B)\n\nA: {}. B: {}.\n",
        a.run,
        b.run,
        settings(a),
        settings(b)
    );
    out.push_str("| arm | language | errors/project A | B | refs all correct A | B | missing imports vs isolated A | B | time/task A | B |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let mut keys: Vec<(String, String)> = Vec::new();
    for s in a.summaries.iter().chain(&b.summaries) {
        if !keys.contains(&key(s)) {
            keys.push(key(s));
        }
    }
    for k in keys {
        let find = |r: &Report| r.summaries.iter().find(|s| key(s) == k).cloned();
        let (sa, sb) = (find(a), find(b));
        let errors = |s: &Summary| {
            s.errors_per_project
                .map_or_else(|| "–".into(), |e| format!("{:.2}", e.total()))
        };
        let refs = |s: &Summary| {
            s.references_correct
                .map_or_else(|| "–".into(), |r| format!("{:.0}%", r * 100.0))
        };
        let red = super::markdown::reduction_text;
        let time = |s: &Summary| {
            s.ms_per_task
                .map_or_else(|| "–".into(), |ms| format!("{:.1} s", ms / 1000.0))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.0,
            k.1,
            cell(sa.as_ref(), errors),
            cell(sb.as_ref(), errors),
            cell(sa.as_ref(), refs),
            cell(sb.as_ref(), refs),
            cell(sa.as_ref(), red),
            cell(sb.as_ref(), red),
            cell(sa.as_ref(), time),
            cell(sb.as_ref(), time),
        );
    }
    out.push_str("\n| criterion | A | B |\n|---|---|---|\n");
    for ca in &a.criteria {
        let cb = b.criteria.iter().find(|c| c.criterion == ca.criterion);
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            ca.criterion,
            ca.measured,
            cb.map_or("–", |c| c.measured.as_str())
        );
    }
    out
}
