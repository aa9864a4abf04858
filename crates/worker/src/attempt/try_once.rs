//! One try of a task: grants checked, files reset to the checkpoint, session prepared, the
//! engine run (its progress relayed to the hold as it comes), the answer checked, the files
//! committed and pushed.

use std::path::Path;
use std::time::{Instant, SystemTime};

use baton_core::scripts::task::{Compact, CompactReply};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    checkpoint, Attempt, AttemptError, Context, ExecutorEvent, Failed, GitTime, Run, SessionStarted,
};
use crate::claude::{ClaudeError, Invocation, Outcome, Progress, SessionArg};
use crate::config::ByteSize;
use crate::engine::Engine;
use crate::gateway::Used;
use crate::git::{Checkout, Checkpoint, CommitInfo};
use crate::lease::Interruption;
use crate::session::{self, SessionStart};
use crate::transcript::{self, Pack, SessionFiles, TranscriptError};

/// What the retry of a task whose structured answer did not do is told, after its prompt.
fn structured_note(problem: &str) -> String {
    format!(
        "[baton] Your previous answer to this task was refused: {problem}. Answer again, and give the answer with the StructuredOutput tool, matching its schema."
    )
}

impl Attempt<'_> {
    /// Try `attempt`: files, session, run, checkpoint.
    pub(super) async fn try_once(
        &mut self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        events: &mpsc::UnboundedSender<ExecutorEvent>,
        attempt: u32,
        budget_left: Option<f64>,
    ) -> Result<Box<Run>, Failed> {
        // Every worker checks the grants against its own settings before it runs them: the
        // worker that accepted the plan may allow more than this one.
        if let Err(e) = crate::grants::Allowed::new(&ctx.pool.cfg).check(&self.options) {
            return Err(AttemptError::NotAllowedHere {
                field: e.field,
                problem: e.problem,
            }
            .into());
        }
        // Files rewind with the conversation: every attempt starts from the checkpoint's files.
        let checkout_started = Instant::now();
        let checkout = self.checkout(ctx).await?;
        let checkout_time = checkout_started.elapsed();
        let mut start = self.session(ctx).await?;
        self.take_spare(ctx, engine, &mut start, budget_left);
        let prepared_at = SystemTime::now();
        let mode = engine.mode();
        let session = SessionStarted {
            id: start.arg.id(),
            how: start.how.clone(),
        };
        let _ = events.send(ExecutorEvent::Started {
            attempt,
            session,
            mode,
        });
        let inv = self.invocation(ctx, &start, budget_left);
        let continues = start.continues(self.base.last_commit.as_ref());
        // The gateway keeps the budget left for this attempt, mid-task.
        let meter = ctx.grant.usage();
        meter.attempt_starts(budget_left);
        let used_before = meter.so_far();
        let (started, started_at) = (Instant::now(), SystemTime::now());
        let (progress, progress_rx) = mpsc::unbounded_channel();
        let run = engine.run(&inv, continues, &progress, ctx.lease.stop());
        let outcome = relay_progress(events, progress_rx, run).await;
        let ended_at = SystemTime::now();
        let took = started.elapsed();
        let _ = events.send(ExecutorEvent::RunEnded { took });
        if ctx.lease.is_lost() {
            return Err(Failed::Interrupted(Interruption::LeaseLost));
        }
        let used = meter.so_far().since(used_before);
        let out = self.judge(ctx, engine, used, outcome).await?;
        let pack = self.pack(ctx, engine, &start).await?;
        let checkpoint_started = Instant::now();
        let checkpoint = match &checkout {
            None => None,
            Some(co) => Some(self.checkpoint(ctx, engine, co, &start, &out).await?),
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
            prepared_at,
            ended_at,
            checkpoint,
            git_time,
            pack,
        }))
    }

    /// A plan's first task takes a parked spare CLI when one was started as its CLI would be
    /// (`spare`): the session is then the spare's, and the engine claims it.
    fn take_spare(
        &self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        start: &mut SessionStart,
        budget_left: Option<f64>,
    ) {
        if !matches!(start.how, session::How::First) || !engine.takes_spares() {
            return;
        }
        let inv = self.invocation(ctx, start, budget_left);
        if let Some(spare) = ctx.pool.spares.take(&inv, ctx.grant) {
            start.arg = SessionArg::New(spare.session());
            engine.give_spare(spare);
        }
    }

    /// What the commit sends of the transcript: only what the turn added when what was
    /// committed before is known. `None` when the CLI said success but left no transcript (the
    /// commit goes on; the next task falls back to a recap). A session past the worker's
    /// `--max-transcript-size`, or with a file that cannot be read, fails the task: the turn
    /// is discarded, and the session's files are cut back to what was committed, before
    /// anything of it is pushed or committed.
    async fn pack(
        &self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        start: &SessionStart,
    ) -> Result<Option<Pack>, Failed> {
        let files = SessionFiles::new(&ctx.pool.config_dir, self.cwd, start.arg.id());
        let limit = ctx.pool.cfg.max_transcript_size;
        match transcript::pack_capped(&files, start.committed.as_ref(), limit.0).await {
            Ok(pack) => Ok(Some(pack)),
            Err(TranscriptError::TooLarge { size, .. }) => {
                engine.discard().await;
                transcript::cut_back(&files, start.committed.as_ref()).await;
                let size = ByteSize(size);
                Err(AttemptError::SessionTooLarge { size, limit }.into())
            }
            Err(TranscriptError::Missing(path)) => {
                warn!(path = %path.display(), "no transcript to commit");
                Ok(None)
            }
            // A file of the session's folder that cannot be read (gone meanwhile, a path too
            // long to open, ...): committing no transcript would delete the committed one.
            Err(e) => {
                engine.discard().await;
                transcript::cut_back(&files, start.committed.as_ref()).await;
                let error = baton_core::ErrorChain(&e).to_string();
                Err(AttemptError::SessionUnreadable(error).into())
            }
        }
    }

    /// The CLI run of this try.
    fn invocation<'a>(
        &'a self,
        ctx: &'a Context<'_>,
        start: &'a SessionStart,
        budget_left: Option<f64>,
    ) -> Invocation<'a> {
        let cfg = &ctx.pool.cfg;
        Invocation {
            bin: &cfg.claude_bin,
            cwd: self.cwd,
            config_dir: &ctx.pool.config_dir,
            session: start.arg,
            options: &self.options,
            json_schema: self.head.task.json_schema.as_deref(),
            budget_left_usd: budget_left,
            prompt: &start.prompt,
            timeout: cfg.task_timeout,
            silence_timeout: cfg.silence_timeout,
            reach: crate::claude::Reach {
                sandbox: ctx.pool.sandbox.as_ref(),
                loopback_url: ctx.pool.gateway.loopback_url(),
                token: ctx.grant.token(),
                trust_repo_settings: cfg.trust_repo_settings,
            },
            traceparent: crate::traces::traceparent(&tracing::Span::current()),
        }
    }

    /// What the run came to: the gateway's stop, the CLI's own failure, a refused structured
    /// answer, or an answer to commit. A turn that will not be committed is discarded (a warm
    /// process that holds it must not go on with it).
    async fn judge(
        &self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        used: Used,
        outcome: Result<Outcome, ClaudeError>,
    ) -> Result<Outcome, Failed> {
        let meter = ctx.grant.usage();
        // A stop (cancel, pause --now, shutdown) says why the run ended, whatever the gateway did.
        if meter.stopped() && !ctx.lease.stop().is_cancelled() {
            engine.discard().await;
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
        if let Err(problem) = self.check_answer(&out) {
            engine.discard().await;
            return Err(AttemptError::Structured(problem).into());
        }
        Ok(out)
    }

    /// The task's files committed and pushed (a plan with a repository); a turn whose files
    /// could not be pushed is discarded.
    async fn checkpoint(
        &self,
        ctx: &Context<'_>,
        engine: &mut dyn Engine,
        co: &Checkout,
        start: &SessionStart,
        out: &Outcome,
    ) -> Result<Checkpoint, Failed> {
        let info = CommitInfo {
            plan: ctx.plan,
            task_id: self.head.task.id.as_str(),
            task_index: self.head.task.index,
            prompt: &self.head.task.prompt,
            session_id: &start.arg.id().to_string(),
            cost_usd: out.cost_usd,
        };
        let pushed = checkpoint::commit_and_push(ctx, &*engine, co, &info).await;
        if pushed.is_err() {
            engine.discard().await;
        }
        pushed
    }

    /// The workspace made the checkpoint's files (a plan with a repository).
    /// The workspace's files as the attempt starts: what a hand-over from a spare cut short
    /// in the last attempt set aside is moved back in, then (a plan with a repository) the
    /// checkpoint's files are checked out.
    async fn checkout(&mut self, ctx: &Context<'_>) -> Result<Option<Checkout>, Failed> {
        if let Err(e) = crate::handover::finish(self.cwd) {
            let e = std::io::Error::other(format!("the workspace's files set aside: {e}"));
            return Err(AttemptError::Claude(ClaudeError::Io(e)).into());
        }
        let tree_at = self.base.tree_at.take();
        let Some(spec) = &self.head.plan.repo else {
            return Ok(None);
        };
        let checkpoint = self.head.plan.checkpoint.as_deref();
        let co = ctx
            .pool
            .git
            .checkout(ctx.plan, spec, self.cwd, checkpoint, tree_at.as_deref());
        Ok(Some(co.await?))
    }

    /// The try's session, prepared (and its transcript compacted after a restore from chunks).
    async fn session(&mut self, ctx: &Context<'_>) -> Result<SessionStart, Failed> {
        let known = self.base.transcript.take();
        let ask = session::Ask {
            head: self.head,
            cwd: self.cwd,
            forced: self.forced,
            known: known.as_ref(),
        };
        let Some(mut start) = session::prepare(ctx.pool, ctx.plan, ask, ctx.lease.stop()).await
        else {
            return Err(Failed::Interrupted(ctx.lease.interruption()));
        };
        if let Some(problem) = &self.refused {
            start.prompt = format!("{}\n\n{}", start.prompt, structured_note(problem));
        }
        // Known until this attempt commits: a retry cuts a failed attempt's partial turn off
        // instead of fetching the whole transcript again.
        self.base.transcript.clone_from(&start.committed);
        if start.restored_chunks > 0 {
            compact_transcript(ctx, &start, self.cwd).await;
        }
        Ok(start)
    }

    /// Checks the task's structured answer against its schema (a task with `json_schema`).
    fn check_answer(&self, out: &Outcome) -> Result<(), String> {
        let Some(schema) = &self.head.task.json_schema else {
            return Ok(());
        };
        serde_json::from_str(schema)
            .map_err(|e| format!("the task's schema does not parse: {e}"))
            .and_then(|schema| {
                baton_core::structured::check_answer(&schema, out.structured.as_ref())
            })
    }
}

/// Awaits `run` while relaying the progress it sends on `progress` to `events` as it comes.
async fn relay_progress<T>(
    events: &mpsc::UnboundedSender<ExecutorEvent>,
    mut progress: mpsc::UnboundedReceiver<Progress>,
    run: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            Some(p) = progress.recv() => { let _ = events.send(ExecutorEvent::Progress(p)); }
        }
    };
    while let Ok(p) = progress.try_recv() {
        let _ = events.send(ExecutorEvent::Progress(p));
    }
    result
}

/// After a restore from a base pack and chunks, stores the transcript as one pack again
/// (fenced; skipped if a chunk was added meanwhile). The restore paid for reading it all;
/// the next restore reads one pack. A failure is logged and changes nothing.
async fn compact_transcript(ctx: &Context<'_>, start: &SessionStart, cwd: &Path) {
    let files = SessionFiles::new(&ctx.pool.config_dir, cwd, start.arg.id());
    let limit = ctx.pool.cfg.max_transcript_size.0;
    let pack = match transcript::pack_capped(&files, None, limit).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "could not pack the transcript to compact it");
            return;
        }
    };
    let call = Compact {
        plan: ctx.plan,
        lock: &ctx.lease.value,
        pack: &pack.blob,
        chunks: start.restored_chunks,
    };
    match ctx.pool.store.call(&call).await {
        Ok(CompactReply::Compacted) => {
            debug!(chunks = start.restored_chunks, "transcript compacted");
        }
        Ok(reply) => debug!(?reply, "transcript not compacted"),
        Err(e) => {
            let error = baton_core::ErrorChain(&e);
            warn!(%error, "could not compact the transcript");
        }
    }
}
