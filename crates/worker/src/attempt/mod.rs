//! The attempts of one task. Each attempt starts from the plan's last committed state, files and
//! conversation alike: the checkout reset to the checkpoint (a plan with a repository), the
//! session prepared (resume, first, fallback, rotation), then the task run, then its files
//! committed and pushed. A failure at any step is acted on through the error's own
//! [`Decision`] alone ([`after_failure`]): a new session at once, a retry after a backoff, or a
//! stop of the plan. A task gets `--max-attempts` attempts; starting over in a new session
//! because the old one is gone does not use one up (once per task).

mod checkpoint;
mod policy;

pub(crate) use policy::{after_failure, AfterFailure, Tried};

use baton_core::event::StoppedBy;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use baton_core::scripts::hold::Head;
use baton_core::scripts::task::{Compact, CompactReply};
use baton_core::{FallbackReason, PlanOptions};
use tracing::{debug, warn};

use crate::claude::{ClaudeError, Invocation, Outcome};
use crate::decision::Decision;
use crate::git::{Checkpoint, CommitInfo, GitError};
use crate::hold::lease::Interruption;
use crate::hold::Hold;
use crate::metrics::TaskOutcome;
use crate::reconnect::backoff;
use crate::session::{self, SessionStart};
use crate::stop::Stop;
use crate::transcript::SessionFiles;

/// A successful run on its way to the commit.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) start: SessionStart,
    pub(crate) out: Outcome,
    /// What the attempt's CLI run asked of the model gateway.
    pub(crate) gateway: crate::gateway::Used,
    /// The attempt that succeeded (1-based).
    pub(crate) attempts: u32,
    pub(crate) started: Instant,
    pub(crate) started_at: SystemTime,
    /// When the run was over: the cold CLI exited (it writes the transcript's last lines on
    /// its way out), or the warm CLI's transcript held the turn.
    pub(crate) ended_at: SystemTime,
    /// The plan's files after the task, pushed (a plan with a repository).
    pub(crate) checkpoint: Option<Checkpoint>,
    /// Time spent making the workspace the checkpoint's files, and committing and pushing
    /// after the run (a plan with a repository).
    pub(crate) git_time: Option<GitTime>,
}

/// Where an attempt's git time went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GitTime {
    pub(crate) checkout: Duration,
    pub(crate) checkpoint: Duration,
}

/// What the attempts of a task came to.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    Succeeded(Box<Run>),
    /// The plan must stop on this task.
    Stop(Stop),
    Interrupted(Interruption),
}

/// Why one attempt failed.
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
}

impl AttemptError {
    fn decision(&self) -> Decision {
        match self {
            Self::Claude(e) => e.decision(),
            Self::Git(e) => e.decision(),
            Self::Structured(_) => Decision::AnswerAgain,
            Self::NotAllowedHere { .. } => Decision::Fail,
        }
    }
}

/// What sets one attempt apart from the others of its task.
struct ThisAttempt<'a> {
    /// 1-based.
    attempt: u32,
    /// Start a new session for this reason.
    forced: Option<FallbackReason>,
    /// What is left of the plan's budget.
    budget_left: Option<f64>,
    /// Said after the task's prompt (why the last answer was refused).
    note: Option<&'a str>,
}

/// What the retry of a task whose structured answer did not do is told, after its prompt.
fn structured_note(problem: &str) -> String {
    format!(
        "[baton] Your previous answer to this task was refused: {problem}. Answer again, and give the answer with the StructuredOutput tool, matching its schema."
    )
}

/// How one attempt ended without a run.
enum Failed {
    Error(AttemptError),
    Interrupted(Interruption),
}

impl<E: Into<AttemptError>> From<E> for Failed {
    fn from(e: E) -> Self {
        Self::Error(e.into())
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
        // Set after a refused structured answer: the retry's prompt says why (once).
        let mut structured_retry: Option<String> = None;
        loop {
            attempt += 1;
            let budget_left = options.max_budget_usd.map(|max| max - spent);
            if let (Some(max), Some(left)) = (options.max_budget_usd, budget_left) {
                if left <= 0.0 {
                    let detail = format!("budget of ${max:.4} spent (${spent:.4} used)");
                    return AttemptEnd::Stop(Stop::BudgetSpent {
                        detail,
                        stopped_by: StoppedBy::Worker,
                    });
                }
            }
            let note = structured_retry.as_deref().map(structured_note);
            let this = ThisAttempt {
                attempt,
                forced,
                budget_left,
                note: note.as_deref(),
            };
            let e = match self.once(head, cwd, &options, this).await {
                Ok(run) => return AttemptEnd::Succeeded(run),
                Err(Failed::Interrupted(why)) => return AttemptEnd::Interrupted(why),
                Err(Failed::Error(e)) => e,
            };
            let reason = e.to_string();
            let decision = e.decision();
            if decision != Decision::Interrupted {
                self.pool.metrics.task(TaskOutcome::failed);
            }
            if !matches!(decision, Decision::Interrupted | Decision::BudgetSpent) {
                warn!(plan = %self.plan, task = %task.id, attempt, error = %reason, "task attempt failed");
                failures.push(format!("attempt {attempt}: {reason}"));
            }
            let tried = Tried {
                new_session: forced.is_some(),
                answer_again: structured_retry.is_some(),
            };
            let next = after_failure(decision, attempt, cfg.max_attempts, tried);
            if matches!(
                next,
                AfterFailure::NewSession(_) | AfterFailure::Backoff | AfterFailure::AnswerAgain
            ) {
                self.pool.metrics.task(TaskOutcome::retried);
            }
            match next {
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
                AfterFailure::AnswerAgain => {
                    // Waiting changes nothing: the model is told at once what was wrong.
                    self.report.retrying(task, attempt + 1, &reason, None).await;
                    structured_retry = Some(reason);
                }
                AfterFailure::RefusedTwice => {
                    return AttemptEnd::Stop(Stop::Failed {
                        reason: format!("the structured answer was refused twice: {reason}"),
                        attempts: failures,
                    });
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
                    let stopped_by =
                        if matches!(e, AttemptError::Claude(ClaudeError::GatewayBudget(_))) {
                            StoppedBy::Gateway
                        } else {
                            StoppedBy::Cli
                        };
                    return AttemptEnd::Stop(Stop::BudgetSpent { detail, stopped_by });
                }
                AfterFailure::Interrupted => {
                    return AttemptEnd::Interrupted(self.lease.interruption())
                }
            }
        }
    }

    /// One attempt: files, session, run, checkpoint.
    async fn once(
        &mut self,
        head: &Head,
        cwd: &Path,
        options: &PlanOptions,
        this: ThisAttempt<'_>,
    ) -> Result<Box<Run>, Failed> {
        let ThisAttempt {
            attempt,
            forced,
            budget_left,
            note,
        } = this;
        let cfg = &self.pool.cfg;
        let task = &head.task;
        let stop = self.lease.stop();
        // Every worker checks the grants against its own settings before it runs them: the
        // worker that accepted the plan may allow more than this one.
        if let Err(e) = crate::grants::Allowed::new(cfg).check(options) {
            return Err(AttemptError::NotAllowedHere {
                field: e.field,
                problem: e.problem,
            }
            .into());
        }
        // Files rewind with the conversation: every attempt starts from the checkpoint's files.
        let checkout_started = Instant::now();
        let tree_at = self.tree_at.take();
        let checkout = match &head.plan.repo {
            Some(spec) => {
                let checkpoint = head.plan.checkpoint.as_deref();
                let co =
                    self.pool
                        .git
                        .checkout(&self.plan, spec, cwd, checkpoint, tree_at.as_deref());
                Some(co.await?)
            }
            None => None,
        };
        let checkout_time = checkout_started.elapsed();
        let known = self.transcript.take();
        let Some(mut start) = session::prepare(
            self.pool,
            &self.plan,
            head,
            cwd,
            forced,
            known.as_ref(),
            stop,
        )
        .await
        else {
            return Err(Failed::Interrupted(self.lease.interruption()));
        };
        if let Some(n) = note {
            start.prompt = format!("{}\n\n{n}", start.prompt);
        }
        // Known until this attempt commits: a retry cuts a failed attempt's partial turn off
        // instead of fetching the whole transcript again.
        self.transcript.clone_from(&start.committed);
        if start.restored_chunks > 0 {
            self.compact_transcript(&start, cwd).await;
        }
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
            options,
            json_schema: task.json_schema.as_deref(),
            budget_left_usd: budget_left,
            prompt: &start.prompt,
            timeout: cfg.task_timeout,
            silence_timeout: cfg.silence_timeout,
            reach: crate::claude::Reach {
                sandbox: self.pool.sandbox.as_ref(),
                loopback_url: self.pool.gateway.loopback_url(),
                token: self.grant.token(),
                trust_repo_settings: cfg.trust_repo_settings,
            },
        };
        let continues = start.continues(self.last_commit.as_ref());
        // The gateway keeps the budget left for this attempt, mid-task.
        let meter = self.grant.usage();
        meter.attempt_starts(budget_left);
        let used_before = meter.so_far();
        let started = Instant::now();
        let started_at = SystemTime::now();
        let (progress, progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let run = self
            .engine
            .run(&inv, continues, cfg.warm_idle_timeout, &progress, stop);
        let outcome = self.report.forward_progress(task, progress_rx, run).await;
        let ended_at = SystemTime::now();
        self.pool.metrics.task_duration(started.elapsed());
        if self.lease.is_lost() {
            return Err(Failed::Interrupted(Interruption::LeaseLost));
        }
        let used = meter.so_far().since(used_before);
        // A stop (cancel, pause --now, shutdown) says why the run ended, whatever the gateway did.
        if meter.stopped() && !stop.is_cancelled() {
            // Whatever the CLI made of the refusal, the turn will not be committed.
            self.engine.discard().await;
            let why = format!(
                "it refused the task's request {}: {}",
                used.requests + 1,
                meter
                    .refusal()
                    .unwrap_or_else(|| "the plan's budget was spent".into())
            );
            return Err(AttemptError::Claude(ClaudeError::GatewayBudget(why)).into());
        }
        let out = outcome?;
        meter.learn(out.cost_usd, used.points);
        if let Some(schema) = &task.json_schema {
            let checked = serde_json::from_str(schema)
                .map_err(|e| format!("the task's schema does not parse: {e}"))
                .and_then(|schema| {
                    baton_core::structured::check_answer(&schema, out.structured.as_ref())
                });
            if let Err(problem) = checked {
                // The turn will not be committed: a warm process that holds it must not go on.
                self.engine.discard().await;
                return Err(AttemptError::Structured(problem).into());
            }
        }
        let checkpoint_started = Instant::now();
        let checkpoint = match &checkout {
            None => None,
            Some(co) => {
                let info = CommitInfo {
                    plan: &self.plan,
                    task_id: task.id.as_str(),
                    task_index: task.index,
                    prompt: &task.prompt,
                    session_id: &start.arg.id().to_string(),
                    cost_usd: out.cost_usd,
                };
                match self.checkpoint(co, &info).await {
                    Ok(c) => {
                        self.tree_at = Some(c.commit.clone());
                        Some(c)
                    }
                    Err(failed) => {
                        // The turn will not be committed: a warm process that holds it must not
                        // go on with it.
                        self.engine.discard().await;
                        return Err(failed);
                    }
                }
            }
        };
        let git_time = checkout.is_some().then(|| GitTime {
            checkout: checkout_time,
            checkpoint: checkpoint_started.elapsed(),
        });
        Ok(Box::new(Run {
            start,
            out,
            gateway: used,
            attempts: attempt,
            started,
            started_at,
            ended_at,
            checkpoint,
            git_time,
        }))
    }

    /// After a restore from a base pack and chunks, stores the transcript as one pack again
    /// (fenced; skipped if a chunk was added meanwhile). The restore paid for reading it all;
    /// the next restore reads one pack. A failure is logged and changes nothing.
    async fn compact_transcript(&self, start: &SessionStart, cwd: &Path) {
        let files = SessionFiles::new(&self.pool.config_dir, cwd, start.arg.id());
        let pack = match files.pack() {
            Ok(p) => p,
            Err(e) => {
                warn!(plan = %self.plan, error = %e, "could not pack the transcript to compact it");
                return;
            }
        };
        let call = Compact {
            plan: &self.plan,
            lock: &self.lease.value,
            pack: &pack.blob,
            chunks: start.restored_chunks,
        };
        match self.pool.store.call(&call).await {
            Ok(CompactReply::Compacted) => {
                debug!(plan = %self.plan, chunks = start.restored_chunks, "transcript compacted");
            }
            Ok(reply) => debug!(plan = %self.plan, ?reply, "transcript not compacted"),
            Err(e) => {
                let error = baton_core::ErrorChain(&e);
                warn!(plan = %self.plan, %error, "could not compact the transcript");
            }
        }
    }
}
