//! The report of an eval run: what each plan did and what its checker found ([`PlanRun`]), the
//! figures per arm and language ([`Summary`]), and the seed's success criteria as measured
//! ([`Criterion`]). Written as JSON (the record `--compare` reads), Markdown and an SVG chart.
//!
//! # Layout
//! - `figures`: the summaries and criteria, computed from the plan runs.
//! - `stats`: means and confidence intervals.
//! - `markdown`, `chart`, `compare`: the report's forms.

mod chart;
mod compare;
mod figures;
mod markdown;
pub mod stats;

use serde::{Deserialize, Serialize};

pub use chart::chart_svg;
pub use compare::compare_markdown;
pub use figures::{criteria, summaries};
pub use markdown::markdown;

use crate::arm::Arm;
use crate::check::{Checked, Language};
use stats::Estimate;

/// One project in one arm and repeat: how its plan ran, and what the checker found in what it
/// left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRun {
    pub arm: Arm,
    pub repeat: u32,
    pub project: String,
    pub language: Language,
    pub plan_id: String,
    /// The plan's end state (`completed`, `failed`, ...).
    pub state: String,
    pub tasks: u32,
    pub tasks_done: u32,
    /// Each committed task's run time, in order.
    pub task_ms: Vec<u64>,
    pub cost_usd: f64,
    /// Tasks that asked to resume the plan's conversation, and those that did (a handoff is a
    /// resume on another worker).
    pub resumes_attempted: u32,
    pub resumes_ok: u32,
    /// Tasks resumed on another worker than the task before.
    pub handoffs: u32,
    /// What the checker found; `None` when the plan left nothing to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<Checked>,
    /// Why nothing could be checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_error: Option<String>,
}

impl PlanRun {
    /// Every import and cross-file reference resolves (checked, none broken).
    pub fn references_correct(&self) -> bool {
        self.checked
            .as_ref()
            .is_some_and(|c| c.counts.missing_import == 0 && c.counts.cross_reference == 0)
    }

    /// Compiles with no error and its tests pass.
    pub fn clean(&self) -> bool {
        self.checked.as_ref().is_some_and(|c| {
            c.counts.missing_import
                + c.counts.cross_reference
                + c.counts.other
                + c.counts.failing_tests
                == 0
        })
    }
}

/// Mean errors per project, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorsPerProject {
    pub missing_import: f64,
    pub cross_reference: f64,
    pub other: f64,
    pub failing_tests: f64,
}

impl ErrorsPerProject {
    /// All classes together.
    pub fn total(&self) -> f64 {
        self.missing_import + self.cross_reference + self.other + self.failing_tests
    }
}

/// The figures of one arm, over one language or all (`language: None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub arm: Arm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Plan runs counted (projects × repeats).
    pub plans: usize,
    pub completed: usize,
    /// Plans whose tree could be checked.
    pub checked: usize,
    /// Mean errors per checked project; `None` when no project was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_per_project: Option<ErrorsPerProject>,
    /// Share of checked projects with every import and cross-reference correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references_correct: Option<f64>,
    /// Share of checked projects with no error at all and passing tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean: Option<f64>,
    /// Missing imports, reduced against the `isolated` arm (1 = all gone), per repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_import_reduction: Option<Estimate>,
    /// Mean time of a committed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_per_task: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd_per_task: Option<f64>,
    /// Resumes that resumed, of those tried (arms that keep one conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_success: Option<f64>,
    /// Tasks after the first that ran on another worker than the task before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_share: Option<f64>,
}

/// One of the seed's success criteria, as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// The seed's words.
    pub criterion: String,
    /// What was measured, in words.
    pub measured: String,
    /// Met, not met, or not measurable in this run (an arm left out, no samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// A whole run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The run's id (in its plans' ids).
    pub run: String,
    pub started_at: String,
    /// `stand-in` offline, else the model the plans asked for (or the CLI's default).
    pub model: String,
    /// Whether the model was baton's stand-in: the figures then measure the harness, not a
    /// model.
    pub offline: bool,
    pub session_mode: String,
    /// The workers' `--rotate-at-tokens`, when the run set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_at_tokens: Option<u64>,
    pub repeat: u32,
    pub arms: Vec<Arm>,
    pub wall_secs: f64,
    pub summaries: Vec<Summary>,
    pub criteria: Vec<Criterion>,
    pub plans: Vec<PlanRun>,
}

impl Report {
    /// The report of `plans`, its figures computed.
    pub fn new(head: ReportHead, plans: Vec<PlanRun>) -> Self {
        let summaries = summaries(&plans, &head.arms);
        let criteria = criteria(&summaries);
        Self {
            run: head.run,
            started_at: head.started_at,
            model: head.model,
            offline: head.offline,
            session_mode: head.session_mode,
            rotate_at_tokens: head.rotate_at_tokens,
            repeat: head.repeat,
            arms: head.arms,
            wall_secs: head.wall_secs,
            summaries,
            criteria,
            plans,
        }
    }

    /// The summary of `arm` over all languages.
    pub fn overall(&self, arm: Arm) -> Option<&Summary> {
        self.summaries
            .iter()
            .find(|s| s.arm == arm && s.language.is_none())
    }
}

/// What a report says of the run besides its plans.
#[derive(Debug, Clone)]
pub struct ReportHead {
    pub run: String,
    pub started_at: String,
    pub model: String,
    pub offline: bool,
    pub session_mode: String,
    pub rotate_at_tokens: Option<u64>,
    pub repeat: u32,
    pub arms: Vec<Arm>,
    pub wall_secs: f64,
}

#[cfg(test)]
mod tests;
