//! The figures of a report, computed from its plan runs: per arm and language, and the seed's
//! success criteria.

use super::stats::{estimate, mean};
use super::{Criterion, ErrorsPerProject, PlanRun, Summary};
use crate::arm::Arm;
use crate::check::Language;

#[expect(clippy::cast_precision_loss, reason = "counts of a suite")]
fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn errors_per_project(runs: &[&PlanRun]) -> ErrorsPerProject {
    let checked: Vec<_> = runs.iter().filter_map(|r| r.checked.as_ref()).collect();
    let m = |f: fn(&crate::check::Counts) -> u32| {
        mean(
            &checked
                .iter()
                .map(|c| f64::from(f(&c.counts)))
                .collect::<Vec<_>>(),
        )
        .unwrap_or(0.0)
    };
    ErrorsPerProject {
        missing_import: m(|c| c.missing_import),
        cross_reference: m(|c| c.cross_reference),
        other: m(|c| c.other),
        failing_tests: m(|c| c.failing_tests),
    }
}

fn missing_imports(runs: &[&PlanRun], repeat: u32) -> Option<f64> {
    let of_repeat: Vec<_> = runs
        .iter()
        .filter(|r| r.repeat == repeat)
        .filter_map(|r| r.checked.as_ref())
        .collect();
    (!of_repeat.is_empty()).then(|| {
        of_repeat
            .iter()
            .map(|c| f64::from(c.counts.missing_import))
            .sum()
    })
}

/// Per repeat: 1 - missing imports in `arm` / missing imports in `isolated` (repeats where the
/// isolated arm had none say nothing, and are left out).
fn reduction(runs: &[&PlanRun], isolated: &[&PlanRun]) -> Option<super::stats::Estimate> {
    let mut repeats: Vec<u32> = runs.iter().map(|r| r.repeat).collect();
    repeats.sort_unstable();
    repeats.dedup();
    let samples: Vec<f64> = repeats
        .into_iter()
        .filter_map(|rep| {
            let base = missing_imports(isolated, rep)?;
            let here = missing_imports(runs, rep)?;
            (base > 0.0).then(|| 1.0 - here / base)
        })
        .collect();
    estimate(&samples)
}

fn summary(arm: Arm, language: Option<Language>, all: &[PlanRun]) -> Option<Summary> {
    let of = |a: Arm| -> Vec<&PlanRun> {
        all.iter()
            .filter(|r| r.arm == a && language.is_none_or(|l| r.language == l))
            .collect()
    };
    let runs = of(arm);
    if runs.is_empty() {
        return None;
    }
    let checked = runs.iter().filter(|r| r.checked.is_some()).count();
    let task_ms: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.task_ms.iter().map(|&ms| ms as f64))
        .collect();
    let tasks_done: u32 = runs.iter().map(|r| r.tasks_done).sum();
    let cost: f64 = runs.iter().map(|r| r.cost_usd).sum();
    let attempted: u32 = runs.iter().map(|r| r.resumes_attempted).sum();
    let ok: u32 = runs.iter().map(|r| r.resumes_ok).sum();
    let after_first: u32 = runs.iter().map(|r| r.tasks_done.saturating_sub(1)).sum();
    let handoffs: u32 = runs.iter().map(|r| r.handoffs).sum();
    let isolated = of(Arm::Isolated);
    Some(Summary {
        arm,
        language,
        plans: runs.len(),
        completed: runs.iter().filter(|r| r.state == "completed").count(),
        checked,
        errors_per_project: (checked > 0).then(|| errors_per_project(&runs)),
        references_correct: share(
            runs.iter().filter(|r| r.references_correct()).count(),
            checked,
        ),
        clean: share(runs.iter().filter(|r| r.clean()).count(), checked),
        missing_import_reduction: (arm != Arm::Isolated && !isolated.is_empty())
            .then(|| reduction(&runs, &isolated))
            .flatten(),
        ms_per_task: mean(&task_ms),
        usd_per_task: (tasks_done > 0).then(|| cost / f64::from(tasks_done)),
        resume_success: (arm.resumes() && attempted > 0)
            .then(|| f64::from(ok) / f64::from(attempted)),
        handoff_share: (after_first > 0 && arm.resumes())
            .then(|| f64::from(handoffs) / f64::from(after_first)),
    })
}

/// Each arm's summary over all languages, then per language.
pub fn summaries(plans: &[PlanRun], arms: &[Arm]) -> Vec<Summary> {
    let mut languages: Vec<Language> = Vec::new();
    for p in plans {
        if !languages.contains(&p.language) {
            languages.push(p.language);
        }
    }
    let mut out = Vec::new();
    for &arm in arms {
        out.extend(summary(arm, None, plans));
        for &l in &languages {
            out.extend(summary(arm, Some(l), plans));
        }
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The seed's success criteria, as the `session` arm measured them (`met: None` when the run
/// lacks what a criterion needs).
pub fn criteria(summaries: &[Summary]) -> Vec<Criterion> {
    let overall = |arm| {
        summaries
            .iter()
            .find(|s| s.arm == arm && s.language.is_none())
    };
    let session = overall(Arm::Session);
    let isolated = overall(Arm::Isolated);
    let mut out = Vec::new();
    let reduction = session.and_then(|s| s.missing_import_reduction);
    out.push(Criterion {
        criterion: "80% reduction in missing import errors".into(),
        measured: match reduction {
            Some(e) => match (e.low, e.high) {
                (Some(l), Some(h)) => format!(
                    "{} against isolated (95% CI {} to {}, {} repeats)",
                    pct(e.mean),
                    pct(l),
                    pct(h),
                    e.n
                ),
                _ => format!("{} against isolated (1 repeat: no interval)", pct(e.mean)),
            },
            None => {
                "not measured: needs the session and isolated arms, and missing imports in isolated"
                    .into()
            }
        },
        met: reduction.map(|e| e.mean >= 0.8),
    });
    let refs = session.and_then(|s| s.references_correct.map(|r| (r, s.checked)));
    out.push(Criterion {
        criterion: "90% of multi-file projects have correct cross-references".into(),
        measured: refs.map_or(
            "not measured: no project of the session arm was checked".into(),
            |(r, n)| format!("{} of {n} checked projects", pct(r)),
        ),
        met: refs.map(|(r, _)| r >= 0.9),
    });
    let times = session
        .and_then(|s| s.ms_per_task)
        .zip(isolated.and_then(|s| s.ms_per_task));
    out.push(Criterion {
        criterion: "< 5% performance impact".into(),
        measured: times.map_or(
            "not measured here: baton's own share of a task's time is the benchmark's (docs/BENCHMARKS.md)".into(),
            |(s, i)| {
                format!(
                    "not measured here: a task took {:.1} s in one conversation and {:.1} s in a fresh session, which is the CLI's start-up, not baton's overhead (the benchmark measures that: docs/BENCHMARKS.md)",
                    s / 1000.0,
                    i / 1000.0
                )
            },
        ),
        met: None,
    });
    let resumes = session.and_then(|s| s.resume_success);
    out.push(Criterion {
        criterion: "95% session resume success rate".into(),
        measured: resumes.map_or("not measured: no resume was tried".into(), |r| {
            format!("{} of resumes in the session arm", pct(r))
        }),
        met: resumes.map(|r| r >= 0.95),
    });
    out
}
