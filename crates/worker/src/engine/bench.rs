//! The benchmark engine: an executor without the CLI (`executor::run_without_cli`), which still
//! writes a transcript line per task so every step of baton's own logic runs.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::claude::{ClaudeError, Invocation, Outcome, Progress};
use crate::config::{Executor, SessionMode};
use crate::executor;

/// A benchmark executor (`instant`, `spawn:<program>`).
pub(super) struct Bench(pub(super) Executor);

impl Engine for Bench {
    fn mode(&self) -> SessionMode {
        // A benchmark executor answers each task on its own, as a cold run does.
        SessionMode::Cold
    }

    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        _continues: bool,
        _progress: &'a mpsc::UnboundedSender<Progress>,
        _stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>> {
        Box::pin(executor::run_without_cli(&self.0, inv))
    }
}
