//! The cold engine: one `claude -p` process per task (`claude::run`); nothing outlives a task.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::claude::{self, ClaudeError, Invocation, Outcome, Progress};
use baton_core::event::AttemptMode;

/// One CLI process per task.
pub(super) struct Cold;

impl Engine for Cold {
    fn mode(&self) -> AttemptMode {
        AttemptMode::Cold
    }

    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        _continues: bool,
        progress: &'a mpsc::UnboundedSender<Progress>,
        stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>> {
        Box::pin(claude::run(inv, progress, stop))
    }
}
