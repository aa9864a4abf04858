//! The retry policy: what a failed attempt leads to, from the error's own decision, the attempt
//! number and what the task already tried (a new session, a second answer). A pure function,
//! tested for every decision.

use baton_core::FallbackReason;

use crate::decision::Decision;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFailure {
    /// Start over at once in a new session (not counted as an attempt).
    NewSession(FallbackReason),
    /// Wait, then make the next attempt.
    Backoff,
    /// Make the next attempt at once, telling the model why its answer was refused.
    AnswerAgain,
    /// The answer was refused a second time: the task failed for good.
    RefusedTwice,
    /// That was the last attempt: the task failed for good.
    OutOfAttempts,
    /// Stop the plan with this failure.
    Fail,
    /// The plan's budget is spent.
    BudgetSpent,
    Interrupted,
}

/// What a task already tried, each at most once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tried {
    /// Started over in a new session.
    pub(crate) new_session: bool,
    /// Answered again after a refused answer.
    pub(crate) answer_again: bool,
}

/// The policy: `attempt` (1-based) of `max_attempts` failed with `decision`, after `tried`.
pub(crate) fn after_failure(
    decision: Decision,
    attempt: u32,
    max_attempts: u32,
    tried: Tried,
) -> AfterFailure {
    match decision {
        Decision::Interrupted => AfterFailure::Interrupted,
        Decision::BudgetSpent => AfterFailure::BudgetSpent,
        Decision::Fail => AfterFailure::Fail,
        Decision::AnswerAgain if tried.answer_again => AfterFailure::RefusedTwice,
        Decision::NewSession(reason) if !tried.new_session => AfterFailure::NewSession(reason),
        Decision::NewSession(_) | Decision::Retry | Decision::AnswerAgain
            if attempt >= max_attempts =>
        {
            AfterFailure::OutOfAttempts
        }
        Decision::AnswerAgain => AfterFailure::AnswerAgain,
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
        for (decision, attempt, new_session, want) in cases {
            let tried = Tried {
                new_session,
                answer_again: false,
            };
            assert_eq!(
                after_failure(decision, attempt, 4, tried),
                want,
                "{decision:?} at attempt {attempt} ({tried:?})"
            );
        }
        // A refused answer: answered again once, at once; refused again, the task failed.
        let answered = Tried {
            new_session: false,
            answer_again: true,
        };
        let again = Decision::AnswerAgain;
        assert_eq!(
            after_failure(again, 1, 4, Tried::default()),
            AfterFailure::AnswerAgain
        );
        assert_eq!(
            after_failure(again, 2, 4, answered),
            AfterFailure::RefusedTwice
        );
        assert_eq!(
            after_failure(again, 4, 4, Tried::default()),
            AfterFailure::OutOfAttempts
        );
    }
}
