//! The cold engine: one `claude -p` process per task (`claude::run`); nothing outlives a task.
//! A plan's first task may run in a spare instead, which then exits with the task.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Engine;
use crate::claude::{self, ClaudeError, Invocation, Outcome, Progress};
use crate::spare::{ClaimError, Spare};
use baton_core::event::AttemptMode;

/// One CLI process per task.
#[derive(Default)]
pub(super) struct Cold {
    /// A spare given for the next attempt.
    spare: Option<Spare>,
}

impl Cold {
    async fn run_once(
        &mut self,
        inv: &Invocation<'_>,
        progress: &mpsc::UnboundedSender<Progress>,
        stop: &CancellationToken,
    ) -> Result<Outcome, ClaudeError> {
        let spare = self
            .spare
            .take()
            .filter(|s| s.session() == inv.session.id());
        let Some(spare) = spare else {
            return claude::run(inv, progress, stop).await;
        };
        let mut process = match spare.claim(inv).await {
            Ok(p) => p,
            Err(ClaimError::Refused(why)) => {
                warn!(%why, "a spare CLI could not be claimed; starting one");
                return claude::run(inv, progress, stop).await;
            }
            Err(ClaimError::Folders(e)) => return Err(e),
        };
        // One task, as a cold run: the process exits with it (its last transcript line is
        // written on the way out, before the turn is packed).
        match process.turn(inv, progress, stop).await {
            Ok(out) => {
                process.close().await;
                Ok(out)
            }
            Err(e) => {
                process.abort().await;
                Err(e)
            }
        }
    }
}

impl Engine for Cold {
    fn mode(&self) -> AttemptMode {
        AttemptMode::Cold
    }

    fn takes_spares(&self) -> bool {
        true
    }

    fn give_spare(&mut self, spare: Spare) {
        self.spare = Some(spare);
    }

    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        _continues: bool,
        progress: &'a mpsc::UnboundedSender<Progress>,
        stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>> {
        Box::pin(self.run_once(inv, progress, stop))
    }
}
