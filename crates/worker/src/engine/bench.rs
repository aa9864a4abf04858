//! The benchmark engine: an executor without the CLI (`executor::run_without_cli`), which still
//! writes a transcript line per task so every step of baton's own logic runs.

use baton_core::event::AttemptMode;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::claude::{ClaudeError, Invocation, Outcome, Progress};
use crate::config::Executor;
use crate::executor;

/// A benchmark executor (`instant`, `spawn:<program>`).
pub(super) struct Bench(pub(super) Executor);

impl Engine for Bench {
    fn mode(&self) -> AttemptMode {
        match self.0 {
            Executor::Spawn(_) => AttemptMode::Spawn,
            // `configured` makes no bench engine for the CLI.
            Executor::Instant | Executor::Claude => AttemptMode::Instant,
        }
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
