//! Counters: the pool-wide ones in `{p}:stats` and each plan's own in its hash (as
//! `stat:<name>`). Every counter is named once, in [`Counter`]; [`Counts`] gathers increments
//! to send in one script call.
//!
//! The counters of what happens to a plan while it is held ([`Counter::TRANSFERRED`]) are kept
//! exact in the plan's hash by the scripts that do the work, and reach the pool's copy by
//! transfer: a plan's totals ([`PlanTotals`]) are sent now and then, and the pool adds what it
//! has not added yet (it remembers per plan what it has). Sending totals twice adds nothing,
//! and whoever holds the plan next (or reaps its dead holder) sends them again: a crash loses
//! no count.

use crate::vocab::{closed_enum, FallbackReason};

closed_enum! {
    /// A counter of `baton stats` (pool-wide) and `baton status` (per plan).
    pub enum Counter ("counter") {
        /// Documents that created a plan.
        PlansAccepted = "plans_accepted",
        /// Documents that added tasks to an existing plan.
        FollowupsAccepted = "followups_accepted",
        /// Tasks added by accepted documents.
        TasksAccepted = "tasks_accepted",
        /// Documents that failed validation (dead-lettered).
        SubmissionsRejected = "submissions_rejected",
        TasksSucceeded = "tasks_succeeded",
        /// Tasks that failed for good (dead-lettered).
        TasksFailed = "tasks_failed",
        /// Attempts retried after a transient failure.
        TaskRetries = "task_retries",
        InputTokens = "input_tokens",
        OutputTokens = "output_tokens",
        /// US dollars; the only counter with a fractional value.
        CostUsd = "cost_usd",
        /// New sessions: first tasks, fallbacks and rotations.
        SessionsCreated = "sessions_created",
        /// Tasks that resumed a committed session (the denominator of the resume success rate).
        ResumesAttempted = "resumes_attempted",
        /// Resumed tasks that committed.
        ResumesSucceeded = "resumes_succeeded",
        /// Resumes on a worker other than the one that ran the previous task.
        Handoffs = "handoffs",
        /// Sessions that could not be resumed, whatever the reason.
        Fallbacks = "fallbacks",
        FallbacksExpired = "fallbacks_expired",
        FallbacksTranscriptMissing = "fallbacks_transcript_missing",
        FallbacksTranscriptCorrupt = "fallbacks_transcript_corrupt",
        FallbacksNotFound = "fallbacks_not_found",
        FallbacksSessionMismatch = "fallbacks_session_mismatch",
        /// Sessions replaced because their context grew past the threshold.
        Rotations = "rotations",
        PlansCompleted = "plans_completed",
        PlansFailed = "plans_failed",
        PlansBudgetExhausted = "plans_budget_exhausted",
        /// Failed plans put back in service (`baton retry`).
        PlansRetried = "plans_retried",
        /// Silent workers whose plans were handed back.
        WorkersReaped = "workers_reaped",
        /// Plans handed back from reaped workers.
        PlansRecovered = "plans_recovered",
        /// Pool-wide pauses for a rate limit.
        PoolPauses = "pool_pauses",
    }
}

impl Counter {
    /// The counters that reach the pool by transfer from the plans' own (see the module).
    pub const TRANSFERRED: &'static [Counter] = &[
        Self::TasksSucceeded,
        Self::TasksFailed,
        Self::TaskRetries,
        Self::InputTokens,
        Self::OutputTokens,
        Self::CostUsd,
        Self::SessionsCreated,
        Self::ResumesAttempted,
        Self::ResumesSucceeded,
        Self::Handoffs,
        Self::Fallbacks,
        Self::FallbacksExpired,
        Self::FallbacksTranscriptMissing,
        Self::FallbacksTranscriptCorrupt,
        Self::FallbacksNotFound,
        Self::FallbacksSessionMismatch,
        Self::Rotations,
        Self::PlansCompleted,
        Self::PlansFailed,
        Self::PlansBudgetExhausted,
        Self::PoolPauses,
    ];

    /// The counter of fallbacks for `reason`.
    pub fn fallback(reason: FallbackReason) -> Self {
        match reason {
            FallbackReason::Expired => Self::FallbacksExpired,
            FallbackReason::TranscriptMissing => Self::FallbacksTranscriptMissing,
            FallbackReason::TranscriptCorrupt => Self::FallbacksTranscriptCorrupt,
            FallbackReason::NotFound => Self::FallbacksNotFound,
            FallbackReason::SessionMismatch => Self::FallbacksSessionMismatch,
        }
    }

    /// The reason this counter counts fallbacks for, if it is one of those.
    pub fn fallback_reason(self) -> Option<FallbackReason> {
        FallbackReason::ALL
            .iter()
            .copied()
            .find(|r| Self::fallback(*r) == self)
    }
}

/// Counter increments gathered to be sent in one script call. Script arguments are pairs of
/// name and increment; a fractional increment is written with a decimal point, which is how
/// the scripts tell `HINCRBYFLOAT` from `HINCRBY`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    ints: Vec<(Counter, i64)>,
    cost_usd: f64,
}

impl Counts {
    /// No counts.
    pub const NONE: Counts = Counts {
        ints: Vec::new(),
        cost_usd: 0.0,
    };

    /// Adds `n` to `counter` ([`Counter::CostUsd`] goes through [`Counts::add_cost`]).
    pub fn add(&mut self, counter: Counter, n: i64) -> &mut Self {
        match self.ints.iter_mut().find(|(c, _)| *c == counter) {
            Some((_, v)) => *v += n,
            None => self.ints.push((counter, n)),
        }
        self
    }

    /// Adds US dollars to [`Counter::CostUsd`].
    pub fn add_cost(&mut self, usd: f64) -> &mut Self {
        self.cost_usd += usd;
        self
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (c, n) in &other.ints {
            self.add(*c, *n);
        }
        self.cost_usd += other.cost_usd;
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.cost_usd == 0.0
    }

    /// The integer counts, in the order first added.
    pub fn ints(&self) -> &[(Counter, i64)] {
        &self.ints
    }

    /// Name and increment pairs, as the scripts take them.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .ints
            .iter()
            .map(|(c, n)| (c.as_str(), n.to_string()))
            .collect();
        if self.cost_usd != 0.0 {
            out.push((Counter::CostUsd.as_str(), format!("{:.9}", self.cost_usd)));
        }
        out
    }
}

/// A plan's totals of the [`Counter::TRANSFERRED`] counters, as read from its hash.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanTotals(Vec<(Counter, String)>);

impl PlanTotals {
    /// Nothing to transfer.
    pub const NONE: PlanTotals = PlanTotals(Vec::new());

    /// The fields to read (`HMGET`), in the order [`PlanTotals::from_values`] takes them.
    pub fn fields() -> Vec<String> {
        Counter::TRANSFERRED
            .iter()
            .map(|c| c.total_field())
            .collect()
    }

    /// The totals out of the values of [`PlanTotals::fields`] (absent ones are 0: not sent).
    pub fn from_values(values: &[Option<String>]) -> Self {
        Self(
            Counter::TRANSFERRED
                .iter()
                .zip(values)
                .filter_map(|(c, v)| {
                    let v = v.as_ref()?;
                    v.parse::<f64>().ok().filter(|n| *n > 0.0)?;
                    Some((*c, v.clone()))
                })
                .collect(),
        )
    }

    /// Name and total pairs, as the scripts take them.
    pub fn args(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(c, v)| (c.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_counters_map_both_ways() {
        for r in FallbackReason::ALL {
            let c = Counter::fallback(*r);
            assert_eq!(c.as_str(), format!("fallbacks_{r}"));
            assert_eq!(c.fallback_reason(), Some(*r));
        }
        assert_eq!(Counter::Fallbacks.fallback_reason(), None);
    }

    #[test]
    fn counts_add_up_and_write_floats_with_a_point() {
        let mut c = Counts::default();
        c.add(Counter::TasksSucceeded, 1)
            .add(Counter::TasksSucceeded, 2)
            .add_cost(0.25);
        let mut other = Counts::default();
        other.add(Counter::Handoffs, 1).add_cost(0.5);
        c.merge(&other);
        assert_eq!(
            c.args(),
            [
                ("tasks_succeeded", "3".to_owned()),
                ("handoffs", "1".to_owned()),
                ("cost_usd", "0.750000000".to_owned())
            ]
        );
        assert!(Counts::NONE.is_empty() && Counts::NONE.args().is_empty());
    }
}
