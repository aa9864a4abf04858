//! The attempts of one task: prepare its session, announce it, run it, and on a failure act on
//! the error's own [`Decision`] alone ([`after_failure`]): a new session at once, a retry after
//! a backoff, or a stop of the plan. A task gets `--max-attempts` attempts; starting over in a
//! new session because the old one is gone does not use one up (once per task).

use std::path::Path;
use std::time::{Instant, SystemTime};

use baton_core::scripts::hold::Head;
use baton_core::FallbackReason;
use tracing::warn;

use crate::claude::{Decision, Invocation, Outcome};
use crate::hold::lease::Interruption;
use crate::hold::Hold;
use crate::reconnect::backoff;
use crate::session::{self, SessionStart};
use crate::stop::Stop;

/// A successful run on its way to the commit.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) start: SessionStart,
    pub(crate) out: Outcome,
    /// The attempt that succeeded (1-based).
    pub(crate) attempts: u32,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
    /// When the run was over: the cold CLI exited (it writes the transcript's last lines on
    /// its way out), or the warm CLI's transcript held the turn.
    pub(crate) ended_at: SystemTime,
}

/// What the attempts of a task came to.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    Succeeded(Box<Run>),
    /// The plan must stop on this task.
    Stop(Stop),
    Interrupted(Interruption),
}

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

impl Hold<'_> {
    /// Runs the head task until an attempt succeeds, the plan must stop, or the hold is
    /// interrupted.
    pub(crate) async fn attempt(&mut self, head: &Head, cwd: &Path) -> AttemptEnd {
        let cfg = &self.pool.cfg;
        let task = &head.task;
        let options = head.plan.options_or_default();
        let spent = head.plan.cost_usd;
        let mut failures: Vec<String> = Vec::new();
        let mut forced: Option<FallbackReason> = None;
        let mut delays = backoff(cfg.retry_base_delay, cfg.retry_max_delay);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let budget_left = options.max_budget_usd.map(|max| max - spent);
            if let (Some(max), Some(left)) = (options.max_budget_usd, budget_left) {
                if left <= 0.0 {
                    let detail = format!("budget of ${max:.4} spent (${spent:.4} used)");
                    return AttemptEnd::Stop(Stop::BudgetSpent { detail });
                }
            }
            let stop = self.lease.stop();
            let Some(start) =
                session::prepare(self.pool, &self.plan, head, cwd, forced, stop).await
            else {
                return AttemptEnd::Interrupted(self.lease.interruption());
            };
            let refresh = self.ttls.first_start();
            let mode = self.engine.mode();
            self.report
                .started(task, &start, attempt, mode, refresh)
                .await;

            let inv = Invocation {
                bin: &cfg.claude_bin,
                cwd,
                config_dir: &self.pool.config_dir,
                session: start.arg,
                options: &options,
                budget_left_usd: budget_left,
                prompt: &start.prompt,
                timeout: cfg.task_timeout,
                silence_timeout: cfg.silence_timeout,
            };
            let continues = start.continues(self.last_commit.as_ref());
            let started = Instant::now();
            let started_at = SystemTime::now();
            let (progress, progress_rx) = tokio::sync::mpsc::unbounded_channel();
            let run = self
                .engine
                .run(&inv, continues, cfg.warm_idle_timeout, &progress, stop);
            let outcome = self.report.forward_progress(task, progress_rx, run).await;
            let ended_at = SystemTime::now();
            if self.lease.is_lost() {
                return AttemptEnd::Interrupted(Interruption::LeaseLost);
            }
            let e = match outcome {
                Ok(out) => {
                    return AttemptEnd::Succeeded(Box::new(Run {
                        start,
                        out,
                        attempts: attempt,
                        started,
                        started_at,
                        ended_at,
                    }))
                }
                Err(e) => e,
            };
            let reason = e.to_string();
            let decision = e.decision();
            if !matches!(decision, Decision::Interrupted | Decision::BudgetSpent) {
                warn!(plan = %self.plan, task = %task.id, attempt, error = %reason, "task attempt failed");
                failures.push(format!("attempt {attempt}: {reason}"));
            }
            match after_failure(decision, attempt, cfg.max_attempts, forced.is_some()) {
                AfterFailure::NewSession(why) => {
                    // The conversation is gone, which waiting will not change: start a new
                    // one at once, without counting this as an attempt.
                    attempt -= 1;
                    forced = Some(why);
                    self.report.retrying(task, attempt + 1, &reason, None).await;
                }
                AfterFailure::Backoff => {
                    let delay = delays.next().unwrap_or(cfg.retry_max_delay);
                    self.report
                        .retrying(task, attempt + 1, &reason, Some(delay))
                        .await;
                    if let Err(why) = self.lease.sleep(delay).await {
                        return AttemptEnd::Interrupted(why);
                    }
                }
                AfterFailure::OutOfAttempts => {
                    let reason = format!("failed after {} attempts", cfg.max_attempts);
                    return AttemptEnd::Stop(Stop::Failed {
                        reason,
                        attempts: failures,
                    });
                }
                AfterFailure::Fail => {
                    return AttemptEnd::Stop(Stop::Failed {
                        reason,
                        attempts: failures,
                    })
                }
                AfterFailure::BudgetSpent => {
                    let max = options.max_budget_usd.unwrap_or(0.0);
                    let detail = format!("budget of ${max:.4} spent: {reason}");
                    return AttemptEnd::Stop(Stop::BudgetSpent { detail });
                }
                AfterFailure::Interrupted => {
                    return AttemptEnd::Interrupted(self.lease.interruption())
                }
            }
        }
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
