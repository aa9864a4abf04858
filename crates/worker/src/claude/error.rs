//! How a CLI run can fail, and what each failure means for the task: the retry decision
//! travels with the error, so the attempt loop acts on [`ClaudeError::decision`] alone.

use std::time::Duration;

use baton_core::FallbackReason;

use crate::decision::Decision;

/// A run that did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaudeError {
    #[error("error starting the Claude CLI ({bin})")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("API error {}: {message}", status.map(|s| s.to_string()).unwrap_or_else(|| "(no status)".into()))]
    Api {
        status: Option<u16>,
        message: String,
    },
    #[error("the CLI found no conversation to resume: {0}")]
    NoConversation(String),
    #[error("the CLI reported session {got}, expected {expected}")]
    SessionMismatch { expected: String, got: String },
    #[error("the CLI stopped at the budget left for the plan: {0}")]
    BudgetSpent(String),
    /// The model gateway refused the attempt's next request: the plan's budget was spent
    /// mid-task (by the CLI, or by a tool using the hold's token).
    #[error("the model gateway stopped the task mid-way: {0}")]
    GatewayBudget(String),
    #[error("the task took more turns than the plan's max_turns allows: {0}")]
    MaxTurns(String),
    #[error("the run ended with {subtype}: {message}")]
    Unsuccessful { subtype: String, message: String },
    #[error("the CLI ran past the task timeout of {0:?}")]
    Timeout(Duration),
    #[error("the CLI printed nothing for {0:?}")]
    Silent(Duration),
    #[error("the CLI exited ({status}) without a result: {stderr}")]
    NoResult { status: String, stderr: String },
    #[error("the run was stopped (lease lost, shutdown or cancel)")]
    Cancelled,
    #[error("the CLI's transcript did not show the turn's last message within {0:?}")]
    TranscriptLag(Duration),
    #[error("error reading the CLI's output")]
    Io(#[from] std::io::Error),
}

impl ClaudeError {
    /// The retry decision this failure carries.
    pub(crate) fn decision(&self) -> Decision {
        match self {
            // The request itself is refused: the same request will be refused again.
            Self::Api {
                status: Some(400 | 401 | 403),
                ..
            } => Decision::Fail,
            Self::Api { .. } => Decision::Retry,
            Self::NoConversation(_) => Decision::NewSession(FallbackReason::NotFound),
            Self::SessionMismatch { .. } => Decision::NewSession(FallbackReason::SessionMismatch),
            Self::BudgetSpent(_) | Self::GatewayBudget(_) => Decision::BudgetSpent,
            // The same task under the same limit stops at the same place.
            Self::MaxTurns(_) => Decision::Fail,
            Self::Unsuccessful { .. } => Decision::Retry,
            // A CLI that cannot be started will not start on the next attempt either.
            Self::Spawn { .. } => Decision::Fail,
            Self::Timeout(_)
            | Self::Silent(_)
            | Self::NoResult { .. }
            | Self::TranscriptLag(_)
            | Self::Io(_) => Decision::Retry,
            Self::Cancelled => Decision::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of CLI failure, with the decision a user of the pool would expect.
    #[test]
    fn every_failure_kind_carries_its_decision() {
        let io = || std::io::Error::other("x");
        let api = |status| ClaudeError::Api {
            status,
            message: "API Error".into(),
        };
        let cases: Vec<(ClaudeError, Decision)> = vec![
            (api(Some(400)), Decision::Fail),
            (api(Some(401)), Decision::Fail),
            (api(Some(403)), Decision::Fail),
            (api(Some(429)), Decision::Retry),
            (api(Some(500)), Decision::Retry),
            (api(Some(529)), Decision::Retry),
            (api(None), Decision::Retry),
            (
                ClaudeError::NoConversation("No conversation found".into()),
                Decision::NewSession(FallbackReason::NotFound),
            ),
            (
                ClaudeError::SessionMismatch {
                    expected: "a".into(),
                    got: "b".into(),
                },
                Decision::NewSession(FallbackReason::SessionMismatch),
            ),
            (
                ClaudeError::BudgetSpent("spent".into()),
                Decision::BudgetSpent,
            ),
            (
                ClaudeError::GatewayBudget("spent".into()),
                Decision::BudgetSpent,
            ),
            (
                ClaudeError::Unsuccessful {
                    subtype: "error_during_execution".into(),
                    message: String::new(),
                },
                Decision::Retry,
            ),
            (ClaudeError::MaxTurns("3".into()), Decision::Fail),
            (
                ClaudeError::Spawn {
                    bin: "claude".into(),
                    source: io(),
                },
                Decision::Fail,
            ),
            (ClaudeError::Timeout(Duration::ZERO), Decision::Retry),
            (ClaudeError::Silent(Duration::ZERO), Decision::Retry),
            (
                ClaudeError::NoResult {
                    status: "signal: 9".into(),
                    stderr: String::new(),
                },
                Decision::Retry,
            ),
            (ClaudeError::TranscriptLag(Duration::ZERO), Decision::Retry),
            (ClaudeError::Io(io()), Decision::Retry),
            (ClaudeError::Cancelled, Decision::Interrupted),
        ];
        for (e, want) in cases {
            assert_eq!(e.decision(), want, "{e}");
        }
    }
}
