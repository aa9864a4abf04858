//! The retry policy: what a failed attempt leads to, from the error's own decision, the attempt
//! number and whether the task already started over in a new session. A pure function, tested
//! for every decision.

use baton_core::FallbackReason;

use crate::decision::Decision;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Start over at once in a new session (not counted as an attempt).
    NewSession(FallbackReason),
    /// Wait, then make the next attempt.
    Backoff,
    /// That was the last attempt: the task failed for good.
    OutOfAttempts,
    /// Stop the plan with this failure.
    Fail,
    /// The plan's budget is spent.
    BudgetSpent,
    Interrupted,
}

/// The policy: `attempt` (1-based) of `max_attempts` failed with `decision`; `new_session_tried`
/// when this task already started over in a new session.
pub(crate) fn after_failure(
    decision: Decision,
    attempt: u32,
    max_attempts: u32,
    new_session_tried: bool,
) -> AfterFailure {
    match decision {
        Decision::Interrupted => AfterFailure::Interrupted,
        Decision::BudgetSpent => AfterFailure::BudgetSpent,
        Decision::Fail => AfterFailure::Fail,
        Decision::NewSession(reason) if !new_session_tried => AfterFailure::NewSession(reason),
        Decision::NewSession(_) | Decision::Retry if attempt >= max_attempts => {
            AfterFailure::OutOfAttempts
        }
        Decision::NewSession(_) | Decision::Retry => AfterFailure::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry policy for every decision, at the first and the last attempt.
    #[test]
    fn failures_are_retried_as_their_decision_says() {
        let gone = Decision::NewSession(FallbackReason::NotFound);
        let cases = [
            (Decision::Retry, 1, false, AfterFailure::Backoff),
            (Decision::Retry, 4, false, AfterFailure::OutOfAttempts),
            (
                gone,
                1,
                false,
                AfterFailure::NewSession(FallbackReason::NotFound),
            ),
            (
                gone,
                4,
                false,
                AfterFailure::NewSession(FallbackReason::NotFound),
            ),
            (gone, 1, true, AfterFailure::Backoff),
            (gone, 4, true, AfterFailure::OutOfAttempts),
            (Decision::Fail, 1, false, AfterFailure::Fail),
            (Decision::BudgetSpent, 1, false, AfterFailure::BudgetSpent),
            (Decision::Interrupted, 4, true, AfterFailure::Interrupted),
        ];
        for (decision, attempt, tried, want) in cases {
            assert_eq!(
                after_failure(decision, attempt, 4, tried),
                want,
                "{decision:?} at attempt {attempt} (new session tried: {tried})"
            );
        }
    }
}
