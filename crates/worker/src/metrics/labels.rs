//! The label values and label sets of the worker's metrics: each a closed type, so nothing
//! from outside (a plan id, a program's path, a status text) can become a label.

use baton_core::FallbackReason;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::executor::{Executor, SessionMode};
use crate::Config;

/// What became of a task attempt.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(crate) enum TaskOutcome {
    succeeded,
    /// An attempt that failed (retried or not).
    failed,
    /// An attempt about to be made again after a failure.
    retried,
    /// A task that failed for good.
    dead_lettered,
}

/// A session event of `baton_sessions_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(crate) enum SessionEvent {
    created,
    resumed,
    handoff,
    fallback,
    rotated,
}

/// The pool's lists of `baton_queue_length`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(super) enum QueueList {
    submit,
    ready,
    dead,
    /// Plans parked because their concurrency key is at its limit (every key together).
    waiting_on_limit,
}

/// What runs a task, for `mode` labels: the session mode, or which benchmark executor (never
/// its program's path).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(crate) enum RunMode {
    warm,
    cold,
    /// Benchmarks: answers in-process.
    instant,
    /// Benchmarks: runs a program per task.
    spawn,
}

impl RunMode {
    /// The mode a worker with these settings runs every task in.
    pub(crate) fn of(config: &Config) -> Self {
        match (&config.executor, config.session_mode) {
            (Executor::Claude, SessionMode::Warm) => Self::warm,
            (Executor::Claude, SessionMode::Cold) => Self::cold,
            (Executor::Instant, _) => Self::instant,
            (Executor::Spawn(_), _) => Self::spawn,
        }
    }
}

/// `sandbox` of `baton_worker_info`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(super) enum Sandbox {
    /// Every CLI run is boxed.
    boxed,
    /// `--sandbox off`, or a benchmark executor.
    unconfined,
}

/// `kind` of `baton_tokens_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[expect(
    non_camel_case_types,
    reason = "the variant names are the label values"
)]
pub(super) enum TokenKind {
    input,
    output,
}

/// `reason` of `baton_session_fallbacks_total`: a fallback reason's wire name.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) struct Reason(pub(super) FallbackReason);

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.0.as_str())
    }
}

/// `status` of `baton_claude_api_retries_total`: the HTTP status number, or `none` when the
/// CLI named none.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) struct ApiStatus(pub(super) Option<u16>);

impl EncodeLabelValue for ApiStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self.0 {
            Some(code) => std::fmt::Write::write_fmt(encoder, format_args!("{code}")),
            None => std::fmt::Write::write_str(encoder, "none"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) outcome: TaskOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ModeLabels {
    pub(super) mode: RunMode,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ListLabels {
    pub(super) list: QueueList,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SessionLabels {
    pub(super) event: SessionEvent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReasonLabels {
    pub(super) reason: Reason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: TokenKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StatusLabels {
    pub(super) status: ApiStatus,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct InfoLabels {
    /// This build's version (one value per binary).
    pub(super) version: &'static str,
    pub(super) mode: RunMode,
    pub(super) sandbox: Sandbox,
}
