//! What a failed attempt means for its task. Every error an attempt can meet (the CLI's, git's)
//! carries one of these, so the attempt loop acts on the error's own decision alone.

use baton_core::FallbackReason;

/// What to do about a failed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Transient: try again after a backoff, resuming the same committed conversation.
    Retry,
    /// The conversation cannot be resumed: start a new session seeded with a recap.
    NewSession(FallbackReason),
    /// The CLI stopped at what was left of the plan's budget: the plan is spent.
    BudgetSpent,
    /// The run's answer was refused (a structured answer that does not match the task's
    /// schema): run the task once more at once, told why; refused again, the task fails.
    AnswerAgain,
    /// Will not succeed by trying again: stop the plan.
    Fail,
    /// The run was stopped from outside (lease lost, shutdown, cancel): leave the task as it is.
    Interrupted,
}
