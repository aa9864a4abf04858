//! The warm engine: one CLI process per hold ([`WarmSession`]), started by the first task that
//! needs it, reused while it fits, stopped at once when a turn fails, closed in the background
//! when the hold ends. A plan's first task may claim a spare instead of starting one.

use std::time::Duration;

use baton_core::PlanId;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Closing, Engine};
use crate::claude::{ClaudeError, Invocation, Outcome, Progress, WarmSession};
use crate::sandbox::freeze::Frozen;
use crate::spare::{ClaimError, Spare};
use baton_core::event::AttemptMode;
use tracing::warn;

/// One CLI process per hold.
pub(super) struct Warm {
    process: Option<Box<WarmSession>>,
    /// `--warm-idle-timeout`: a process unused this long is not reused.
    idle_limit: Duration,
    /// A spare given for the next attempt (a plan's first task): claimed instead of a start.
    spare: Option<Spare>,
}

impl Warm {
    pub(super) fn new(idle_limit: Duration) -> Self {
        Self {
            process: None,
            idle_limit,
            spare: None,
        }
    }

    async fn turn(
        &mut self,
        inv: &Invocation<'_>,
        continues: bool,
        progress: &mpsc::UnboundedSender<Progress>,
        stop: &CancellationToken,
    ) -> Result<Outcome, ClaudeError> {
        // Any other warm process is closed first (the new one may resume this very session).
        let reuse = continues
            && self
                .process
                .as_ref()
                .is_some_and(|w| w.fits(inv, self.idle_limit));
        if !reuse {
            if let Some(old) = self.process.take() {
                old.close().await;
            }
        }
        let mut w = match (self.process.take(), self.spare.take()) {
            (Some(w), _) => w,
            (None, Some(spare)) if spare.session() == inv.session.id() => {
                match spare.claim(inv).await {
                    Ok(w) => Box::new(w),
                    Err(ClaimError::Refused(why)) => {
                        warn!(%why, "a spare CLI could not be claimed; starting one");
                        Box::new(WarmSession::start(inv)?)
                    }
                    Err(ClaimError::Folders(e)) => return Err(e),
                }
            }
            (None, _) => Box::new(WarmSession::start(inv)?),
        };
        match w.turn(inv, progress, stop).await {
            Ok(out) => {
                self.process = Some(w);
                Ok(out)
            }
            Err(e) => {
                // Whatever the process did of this turn is not committed: stop it now; the
                // retry restores the committed transcript into a new process.
                w.abort().await;
                Err(e)
            }
        }
    }
}

impl Engine for Warm {
    fn mode(&self) -> AttemptMode {
        AttemptMode::Warm
    }

    fn run<'a>(
        &'a mut self,
        inv: &'a Invocation<'a>,
        continues: bool,
        progress: &'a mpsc::UnboundedSender<Progress>,
        stop: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Outcome, ClaudeError>> {
        Box::pin(self.turn(inv, continues, progress, stop))
    }

    fn takes_spares(&self) -> bool {
        true
    }

    fn give_spare(&mut self, spare: Spare) {
        self.spare = Some(spare);
    }

    fn freeze(&self) -> BoxFuture<'_, Option<Frozen>> {
        Box::pin(async {
            match &self.process {
                Some(w) => w.freeze().await,
                None => None,
            }
        })
    }

    fn discard(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async {
            if let Some(w) = self.process.take() {
                w.abort().await;
            }
        })
    }

    /// A warm process does not outlive the hold: stopped at once when the lease is gone,
    /// otherwise closed in the background (see [`Closing`]).
    fn finish<'a>(
        self: Box<Self>,
        lease_lost: bool,
        plan: &'a PlanId,
        closing: &'a Closing,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(w) = self.process {
                if lease_lost {
                    w.abort().await;
                } else {
                    closing.close_later(plan, *w);
                }
            }
        })
    }
}
