//! A successful run committed: the transcript packed, the result, session record and events
//! written in one fenced script (`commit.lua`) that also returns the next task or gives the
//! lease back. A result finished while Redis was away is committed when it returns, unless the
//! lease ran out meanwhile (then the fence refuses it and the task runs again).

use std::path::Path;
use std::time::SystemTime;

use baton_core::event::{PlanCompleted, ReviewRequested, TaskSucceeded};
use baton_core::records::{SessionRecord, TaskResult};
use baton_core::scripts::hold::Head;
use baton_core::scripts::task::{Commit, CommitReply, TranscriptWrite};
use baton_core::{Counter, Counts};
use tracing::{debug, warn};

use crate::attempt::Run;
use crate::hold::lease::Interruption;
use crate::hold::{Hold, TaskEnd};
use crate::reconnect::redis_retry;
use crate::transcript::SessionFiles;

/// Milliseconds since the epoch, with microseconds.
fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// A count as a counter increment (token counts are far below `i64::MAX`).
fn increment(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Hold<'_> {
    /// Commits the run of the head task.
    pub(crate) async fn commit(&mut self, head: &Head, cwd: &Path, run: Box<Run>) -> TaskEnd {
        let Run {
            start,
            out,
            gateway,
            attempts,
            started,
            started_at,
            ended_at,
            checkpoint,
            git_time,
        } = *run;
        let task = &head.task;
        let sid = start.arg.id();
        let files = SessionFiles::new(&self.pool.config_dir, cwd, sid);
        // Only what the turn added, when what was committed before is known.
        let packed = match &start.committed {
            Some(before) => files.pack_since(before),
            None => files.pack(),
        };
        let pack = packed
            .inspect_err(|e| {
                // The CLI said success but left no transcript: commit the result anyway; the
                // next task falls back to a recap.
                warn!(plan = %self.plan, error = %e, "no transcript to commit");
            })
            .ok();
        let digest = pack
            .as_ref()
            .map(|p| p.committed.digest())
            .unwrap_or_default();
        let now = baton_core::time::now_rfc3339();
        let result = TaskResult {
            task_id: task.id.clone(),
            task_index: task.index,
            kind: task.kind.clone(),
            prompt: task.prompt.clone(),
            result: out.result.clone(),
            session_id: sid,
            worker: self.pool.id.clone(),
            attempts,
            cost_usd: out.cost_usd,
            input_tokens: out.input_tokens,
            output_tokens: out.output_tokens,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            files: out.files.clone(),
            finished_at: now.clone(),
            commit: checkpoint.as_ref().map(|c| c.commit.clone()),
            diffstat: checkpoint.as_ref().map(|c| c.diffstat),
            structured: out.structured.clone(),
        };
        let previous = start.previous();
        let record = SessionRecord {
            session_id: sid,
            created_at: previous.map_or_else(|| now.clone(), |p| p.created_at.clone()),
            last_used_at: now,
            last_worker: self.pool.id.clone(),
            tasks: previous.map_or(0, |p| p.tasks) + 1,
            context_tokens: out.context_tokens,
            transcript_sha256: digest,
            cwd: cwd.display().to_string(),
            ttl_secs: head
                .plan
                .options_or_default()
                .session_ttl_secs
                .unwrap_or(self.pool.cfg.session_ttl.as_secs())
                .max(1),
        };
        // A task that asks for a review: the plan waits for `baton approve` / `baton reject`.
        let review = task.review.then(|| {
            self.report.event(
                ReviewRequested {
                    result: out.result.clone(),
                    rework: task.rework,
                    commit: checkpoint.as_ref().map(|c| c.commit.clone()),
                    diffstat: checkpoint.as_ref().map(|c| c.diffstat),
                },
                task,
            )
        });
        let succeeded = self.report.event(
            TaskSucceeded {
                result: out.result,
                session_id: sid,
                cost_usd: out.cost_usd,
                input_tokens: out.input_tokens,
                output_tokens: out.output_tokens,
                duration_ms: result.duration_ms,
                files: out.files,
                attempts,
                // When the run was started, when its result arrived and when it was over (ms
                // since the epoch): what the queue adds around a task can be measured from
                // these and the event's arrival.
                run_started_ms: epoch_ms(started_at),
                result_at_ms: epoch_ms(out.result_at),
                run_ended_ms: epoch_ms(ended_at),
                // What the model gateway forwarded for the attempt, counted by the gateway
                // itself (the CLI's requests, and any a tool in the box made with the hold's
                // token).
                gateway_requests: gateway.requests,
                gateway_input_tokens: gateway.input_tokens,
                gateway_output_tokens: gateway.output_tokens,
                structured: out.structured.clone(),
                // What this commit sent of the transcript: the whole pack, or the turn's chunk.
                transcript_bytes: pack.as_ref().map(|p| p.blob.len() as u64),
                commit: checkpoint.as_ref().map(|c| c.commit.clone()),
                diffstat: checkpoint.as_ref().map(|c| c.diffstat),
                // What git cost this task: the workspace made the checkpoint's files before the
                // run, and the commit and push after it.
                checkout_ms: git_time.map(|t| t.checkout.as_secs_f64() * 1000.0),
                checkpoint_ms: git_time.map(|t| t.checkpoint.as_secs_f64() * 1000.0),
            },
            task,
        );
        let completed_event = self.report.plan_event(PlanCompleted {
            commit: checkpoint.as_ref().map(|c| c.commit.clone()),
        });
        let mut counts = Counts::default();
        counts
            .add(Counter::TasksSucceeded, 1)
            .add(Counter::InputTokens, increment(out.input_tokens))
            .add(Counter::OutputTokens, increment(out.output_tokens));
        if previous.is_some() {
            counts.add(Counter::ResumesSucceeded, 1);
        }
        let call = Commit {
            plan: &self.plan,
            lock: &self.lease.value,
            head_raw: &head.raw,
            result: &result,
            session: &record,
            succeeded: &succeeded,
            completed: &completed_event,
            review: review.as_ref(),
            transcript: match &pack {
                None => TranscriptWrite::Nothing,
                Some(p) if p.append => TranscriptWrite::Append(&p.blob),
                Some(p) => TranscriptWrite::Full(&p.blob),
            },
            plan_counts: &counts,
            checkpoint: checkpoint.as_ref().map(|c| c.commit.as_str()),
            refresh_ttls: self.ttls.first_commit(),
        };
        let stop = self.lease.stop();
        let reply = redis_retry("commit", stop, || self.pool.store.call(&call)).await;
        let end = match reply {
            Some(CommitReply::Next { head, .. }) => TaskEnd::Next(head),
            // The script counted a completed plan in the plan's own counters.
            Some(CommitReply::Done { completed }) => {
                if completed {
                    self.notify(&completed_event);
                }
                TaskEnd::Done
            }
            Some(CommitReply::Review) => {
                if let Some(e) = &review {
                    self.notify(e);
                }
                TaskEnd::Done
            }
            Some(CommitReply::Stopped { .. }) => TaskEnd::Stopped,
            Some(CommitReply::Fenced) => return TaskEnd::Interrupted(Interruption::LeaseLost),
            Some(CommitReply::Mismatch) => {
                // The lease is ours (the fence passed), but the plan's head is not the task we
                // ran: an earlier commit was lost (a Redis failover can lose the last writes it
                // acknowledged). Give the plan back to the front: its head task runs again from
                // the transcript Redis has.
                warn!(
                    plan = %self.plan, task = %task.id,
                    "the plan's next task is not the one run (a commit lost in a failover?); \
                     handing the plan back to run it again"
                );
                return TaskEnd::Interrupted(Interruption::Stopped);
            }
            None => return TaskEnd::Interrupted(self.lease.interruption()),
        };
        debug!(plan = %self.plan, task = %task.id, index = task.index, "task committed");
        let metrics = &self.pool.metrics;
        metrics.committed(result.cost_usd, result.input_tokens, result.output_tokens);
        self.report.committed().await;
        self.last_commit = Some(record);
        self.transcript = pack.map(|p| p.committed);
        end
    }
}
