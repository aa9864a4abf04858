//! The attempts of one task, as a value that returns its outcome (nextest's executor, river's
//! `AttemptError`): an [`Attempt`] owns everything about the task's tries (how many were made,
//! a forced new session, a refused answer to give again, each failure as an
//! [`AttemptFailure`], the backoff, and the checkpoint and transcript it starts from), runs one
//! try per [`Attempt::run`] and says what it came to ([`Outcome`]): commit this run, retry
//! (at once or after a delay), stop the plan, or interrupted. What happens meanwhile goes to
//! the hold as [`ExecutorEvent`]s on a channel. An attempt never publishes an event, counts,
//! sends a webhook or pauses the pool: the hold does all of that, from the events and the
//! outcome.
//!
//! Each try starts from the plan's last committed state, files and conversation alike: the
//! checkout reset to the checkpoint (a plan with a repository), the session prepared (resume,
//! first, fallback, rotation), then the task run, then its files committed and pushed. A
//! failure at any step is acted on through the error's own [`Decision`] alone
//! ([`after_failure`]). A task gets `--max-attempts` attempts; starting over in a new session
//! because the old one is gone does not use one up (once per task).

mod checkpoint;
mod events;
mod policy;
mod try_once;

pub(crate) use events::{ExecutorEvent, SessionStarted};
pub(crate) use policy::{after_failure, AfterFailure, Tried};

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use baton_core::event::StoppedBy;
use baton_core::records::SessionRecord;
use baton_core::scripts::hold::Head;
use baton_core::{FallbackReason, PlanId, PlanOptions};
use tokio::sync::mpsc;
use tracing::{info_span, warn, Instrument};

use crate::claude::{ClaudeError, Outcome as RunOutcome};
use crate::config::ByteSize;
use crate::decision::Decision;
use crate::engine::Engine;
use crate::gateway::{Grant, Used};
use crate::git::{Checkpoint, GitError};
use crate::lease::{Interruption, Lease};
use crate::pool::Pool;
use crate::reconnect::backoff;
use crate::session::SessionStart;
use crate::transcript::{Committed, Pack};

/// What the hold lends an attempt: the pool, the plan, its lease and gateway grant.
pub(crate) struct Context<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) plan: &'a PlanId,
    pub(crate) lease: &'a Lease,
    pub(crate) grant: &'a Grant,
}

/// Where a task's attempts start from, as this hold's last commit left it. Empty at a hold's
/// start but for the transcript this worker remembers of the plan.
#[derive(Debug, Default)]
pub(crate) struct Base {
    /// The commit the work tree is at (a plan with a repository): valid only until something
    /// runs in the workspace, so the first try takes it.
    pub(crate) tree_at: Option<String>,
    /// What is committed of the transcript: a retry cuts a failed try's partial turn off, and
    /// the commit sends only what the turn added.
    pub(crate) transcript: Option<Committed>,
    /// The session record this hold committed last: a warm process may only go on with the
    /// conversation it produced itself.
    pub(crate) last_commit: Option<SessionRecord>,
}

/// A successful run on its way to the commit.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) start: SessionStart,
    pub(crate) out: RunOutcome,
    /// What the attempt's CLI run asked of the model gateway.
    pub(crate) gateway: Used,
    /// The attempt that succeeded (1-based).
    pub(crate) attempts: u32,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
    /// When the attempt's files and session were ready.
    pub(crate) prepared_at: SystemTime,
    /// When the run was over: the cold CLI exited (it writes the transcript's last lines on
    /// its way out), or the warm CLI's transcript held the turn.
    pub(crate) ended_at: SystemTime,
    /// The plan's files after the task, pushed (a plan with a repository).
    pub(crate) checkpoint: Option<Checkpoint>,
    /// Time spent making the workspace the checkpoint's files, and committing and pushing
    /// after the run (a plan with a repository).
    pub(crate) git_time: Option<GitTime>,
    /// What the commit sends of the transcript (`None`: the CLI left none).
    pub(crate) pack: Option<Pack>,
}

/// Where an attempt's git time went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GitTime {
    pub(crate) checkout: Duration,
    pub(crate) checkpoint: Duration,
}

/// One failed attempt, as a record (river's `AttemptError`): which, when, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AttemptFailure {
    /// 1-based.
    pub(crate) attempt: u32,
    pub(crate) at: SystemTime,
    pub(crate) error: String,
}

impl std::fmt::Display for AttemptFailure {
    /// As `task_failed` and the dead letter list it: `attempt N: why`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attempt {}: {}", self.attempt, self.error)
    }
}

/// Why a plan stops on its task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// The task failed for good: `task_failed`, `plan_failed`, a dead letter.
    Failed {
        reason: String,
        /// Each failed attempt (none: the task could not even be tried; the reason says why).
        attempts: Vec<AttemptFailure>,
    },
    /// The plan's budget is spent: `plan_budget_exhausted` with reason `budget`.
    BudgetSpent {
        detail: String,
        /// Who stopped it: `worker` (nothing was left before the task), `cli` (the CLI's own
        /// `--max-budget-usd`), `gateway` (the model gateway, mid-task).
        stopped_by: StoppedBy,
    },
}

impl Stop {
    /// A task that cannot even be tried (a poison task, an unusable workspace).
    pub(crate) fn failed_now(reason: String) -> Self {
        Self::Failed {
            reason,
            attempts: Vec::new(),
        }
    }
}

/// What one try of a task came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Commit this run.
    Commit(Box<Run>),
    /// The try failed and the task goes on: attempt `next` starts after `delay` (`None`: at
    /// once, in a new session or with the refused answer's reason).
    Retry {
        next: u32,
        reason: String,
        delay: Option<Duration>,
    },
    /// Stop the plan on this task; `failed`: a try failed (not a budget spent before it).
    Stop { stop: Stop, failed: bool },
    /// No outcome: the lease was lost, or the task was stopped.
    Interrupted(Interruption),
}

/// Why one try failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AttemptError {
    #[error(transparent)]
    Claude(#[from] ClaudeError),
    #[error(transparent)]
    Git(#[from] GitError),
    /// The task's structured answer is missing or does not match its `json_schema`.
    #[error("{0}")]
    Structured(String),
    /// This worker does not allow what the plan grants (it was accepted by a worker that does:
    /// a pool whose workers differ in `--sandbox` or `--allow-mcp-command`).
    #[error("this worker refuses the plan's {field}: {problem}")]
    NotAllowedHere { field: String, problem: String },
    /// The task left its session (the transcript and the CLI's folder beside it) larger than
    /// this worker keeps: nothing of the turn is committed.
    #[error(
        "the task's session holds at least {size} (its transcript and the CLI's folder beside it), over \
         this worker's --max-transcript-size of {limit}; nothing of this task was committed"
    )]
    SessionTooLarge { size: ByteSize, limit: ByteSize },
    /// A file of the task's session could not be read to pack it (the box can leave the
    /// folder beside the transcript so): nothing of the turn is committed, and the transcript
    /// committed before stays.
    #[error("the task's session could not be packed: {0}; nothing of this task was committed")]
    SessionUnreadable(String),
}

impl AttemptError {
    fn decision(&self) -> Decision {
        match self {
            Self::Claude(e) => e.decision(),
            Self::Git(e) => e.decision(),
            Self::Structured(_) => Decision::AnswerAgain,
            Self::NotAllowedHere { .. }
            | Self::SessionTooLarge { .. }
            | Self::SessionUnreadable(_) => Decision::Fail,
        }
    }
}

/// How one try ended without a run.
enum Failed {
    Error(AttemptError),
    Interrupted(Interruption),
}

impl<E: Into<AttemptError>> From<E> for Failed {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

/// The attempts of one task.
pub(crate) struct Attempt<'t> {
    head: &'t Head,
    cwd: &'t Path,
    options: PlanOptions,
    max_attempts: u32,
    /// Attempts counted so far (a new session after a lost one is not counted).
    made: u32,
    /// The next try starts a new session for this reason.
    forced: Option<FallbackReason>,
    /// Set after a refused structured answer: the retry's prompt says why (once).
    refused: Option<String>,
    failures: Vec<AttemptFailure>,
    delays: Box<dyn Iterator<Item = Duration> + Send + Sync>,
    retry_max_delay: Duration,
    base: Base,
}

impl<'t> Attempt<'t> {
    /// The attempts of `head`'s task in `cwd`, starting from `base`.
    pub(crate) fn new(pool: &Pool, head: &'t Head, cwd: &'t Path, base: Base) -> Self {
        let cfg = &pool.cfg;
        Self {
            head,
            cwd,
            options: head.plan.options_or_default(),
            max_attempts: cfg.max_attempts,
            made: 0,
            forced: None,
            refused: None,
            failures: Vec::new(),
            delays: Box::new(backoff(cfg.retry_base_delay, cfg.retry_max_delay)),
            retry_max_delay: cfg.retry_max_delay,
            base,
        }
    }

    /// What the attempts leave for the task after them (or for the next hold of the plan).
    pub(crate) fn into_base(self) -> Base {
        self.base
    }

    /// Makes the next try. Events go to `events` as they happen; the outcome says what the
    /// hold does next.
    pub(crate) async fn run(
        &mut self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        events: &mpsc::UnboundedSender<ExecutorEvent>,
    ) -> Outcome {
        let attempt = self.made + 1;
        let spent = self.head.plan.cost_usd;
        let budget_left = self.options.max_budget_usd.map(|max| max - spent);
        if let (Some(max), Some(left)) = (self.options.max_budget_usd, budget_left) {
            if left <= 0.0 {
                let detail = format!("budget of ${max:.4} spent (${spent:.4} used)");
                let stop = Stop::BudgetSpent {
                    detail,
                    stopped_by: StoppedBy::Worker,
                };
                return Outcome::Stop {
                    stop,
                    failed: false,
                };
            }
        }
        let span = info_span!("attempt", attempt);
        crate::traces::mark_task(&span, ctx.plan, &self.head.task, Some(attempt));
        let e = match self
            .try_once(ctx, engine, events, attempt, budget_left)
            .instrument(span)
            .await
        {
            Ok(run) => return Outcome::Commit(run),
            Err(Failed::Interrupted(why)) => return Outcome::Interrupted(why),
            Err(Failed::Error(e)) => e,
        };
        self.after(ctx, attempt, &e)
    }

    /// What the failed try `attempt` leads to.
    fn after(&mut self, ctx: &Context<'_>, attempt: u32, e: &AttemptError) -> Outcome {
        let reason = e.to_string();
        let decision = e.decision();
        if !matches!(decision, Decision::Interrupted | Decision::BudgetSpent) {
            warn!(attempt, error = %reason, "task attempt failed");
            self.failures.push(AttemptFailure {
                attempt,
                at: SystemTime::now(),
                error: reason.clone(),
            });
        }
        let tried = Tried {
            new_session: self.forced.is_some(),
            answer_again: self.refused.is_some(),
        };
        let next = after_failure(decision, attempt, self.max_attempts, tried);
        if !matches!(next, AfterFailure::NewSession(_)) {
            self.made = attempt;
        }
        let failed = |stop| Outcome::Stop { stop, failed: true };
        match next {
            // The conversation is gone, which waiting will not change: start a new one at
            // once, without counting this as an attempt.
            AfterFailure::NewSession(why) => {
                self.forced = Some(why);
                Outcome::Retry {
                    next: attempt,
                    reason,
                    delay: None,
                }
            }
            AfterFailure::Backoff => Outcome::Retry {
                next: attempt + 1,
                reason,
                delay: Some(self.delays.next().unwrap_or(self.retry_max_delay)),
            },
            // Waiting changes nothing: the model is told at once what was wrong.
            AfterFailure::AnswerAgain => {
                self.refused = Some(reason.clone());
                Outcome::Retry {
                    next: attempt + 1,
                    reason,
                    delay: None,
                }
            }
            AfterFailure::RefusedTwice => failed(Stop::Failed {
                reason: format!("the structured answer was refused twice: {reason}"),
                attempts: std::mem::take(&mut self.failures),
            }),
            AfterFailure::OutOfAttempts => failed(Stop::Failed {
                reason: format!("failed after {} attempts", self.max_attempts),
                attempts: std::mem::take(&mut self.failures),
            }),
            AfterFailure::Fail => failed(Stop::Failed {
                reason,
                attempts: std::mem::take(&mut self.failures),
            }),
            AfterFailure::BudgetSpent => {
                let max = self.options.max_budget_usd.unwrap_or(0.0);
                let detail = format!("budget of ${max:.4} spent: {reason}");
                let stopped_by = if matches!(e, AttemptError::Claude(ClaudeError::GatewayBudget(_)))
                {
                    StoppedBy::Gateway
                } else {
                    StoppedBy::Cli
                };
                failed(Stop::BudgetSpent { detail, stopped_by })
            }
            AfterFailure::Interrupted => Outcome::Interrupted(ctx.lease.interruption()),
        }
    }
}
