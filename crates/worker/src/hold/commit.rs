//! A successful run committed: the transcript (as the attempt packed it), the result, session
//! record and events written in one fenced script (`commit.lua`) that also returns the next task
//! or gives the lease back. A result finished while Redis was away is committed when it returns,
//! unless the lease ran out meanwhile (then the fence refuses it and the task runs again).

use std::path::Path;
use std::time::SystemTime;

use baton_core::event::{PlanCompleted, ReviewRequested, TaskStamps, TaskSucceeded};
use baton_core::records::{SessionRecord, TaskResult};
use baton_core::scripts::hold::Head;
use baton_core::scripts::task::{Commit, CommitReply, TranscriptWrite};
use baton_core::{Counter, Counts, Event};
use tracing::{debug, warn};

use super::prestart::Planned;
use super::{Hold, TaskEnd};
use crate::attempt::{Base, Run};
use crate::lease::Interruption;
use crate::reconnect::redis_retry;
use crate::transcript::Pack;

/// Milliseconds since the epoch, with microseconds.
fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// What a commit adds to the plan's `stat:` counters: a task succeeded, and a resume that held
/// when it continued a session. (Its tokens and cost go to the plan's `input_tokens`,
/// `output_tokens` and `cost_usd`, which are those counters' totals: see
/// [`Counter::total_field`].)
fn plan_counts(resumed: bool) -> Counts {
    let mut counts = Counts::default();
    counts.add(Counter::TasksSucceeded, 1);
    if resumed {
        counts.add(Counter::ResumesSucceeded, 1);
    }
    counts
}

/// The events a commit writes (and may send to the plan's webhook).
struct Events {
    succeeded: Event,
    completed: Event,
    /// A task that asks for a review: the plan waits for `baton approve` / `baton reject`.
    review: Option<Event>,
}

impl Hold<'_> {
    /// Commits the run of the head task; returns what the next task starts from (`base`, the
    /// attempts' own, unless the commit went through).
    #[tracing::instrument(name = "commit", skip_all)]
    pub(super) async fn commit(
        &mut self,
        head: &Head,
        cwd: &Path,
        run: Box<Run>,
        base: Base,
    ) -> (TaskEnd, Base) {
        let pack = run.pack.as_ref();
        let (result, record) = self.records(head, cwd, &run, pack);
        // The claim is stamped into the hold's first commit that goes through.
        let claimed_at = self.claimed_at;
        let events = self.events(head, &run, &result, pack, claimed_at);
        // After the task's own events: the next task's start is stamped after them.
        let planned = self.plan_next_start(head, &record, pack.is_some());
        let counts = plan_counts(run.start.previous().is_some());
        let call = Commit {
            plan: &self.plan,
            lock: &self.lease.value,
            head_raw: &head.raw,
            result: &result,
            session: &record,
            succeeded: &events.succeeded,
            completed: &events.completed,
            review: events.review.as_ref(),
            transcript: match pack {
                None => TranscriptWrite::Nothing,
                Some(p) if p.append => TranscriptWrite::Append(&p.blob),
                Some(p) => TranscriptWrite::Full(&p.blob),
            },
            plan_counts: &counts,
            checkpoint: result.commit.as_deref(),
            refresh_ttls: self.ttls.first_commit(),
            next_start: planned.as_ref().map(Planned::call),
        };
        let stop = self.lease.stop();
        let reply = redis_retry("commit", stop, || self.pool.store.call(&call)).await;
        if let (
            Some(CommitReply::Next {
                started: true,
                head: next,
                ..
            }),
            Some(p),
        ) = (&reply, &planned)
        {
            self.report.expect_started(p.published(&next.task.id));
        }
        let Some(end) = self.after_commit(reply, &events) else {
            return (TaskEnd::Interrupted(self.lease.interruption()), base);
        };
        debug!(index = head.task.index, "task committed");
        self.claimed_at = None;
        let metrics = &self.pool.metrics;
        metrics.committed(result.cost_usd, result.input_tokens, result.output_tokens);
        self.report.committed().await;
        let next = Base {
            tree_at: result.commit,
            transcript: run.pack.map(|p| p.committed),
            last_commit: Some(record),
        };
        (end, next)
    }

    /// What the commit's reply means for the hold, and the webhooks it sends; `None` when it
    /// did not go through (the lease's state says why).
    fn after_commit(&self, reply: Option<CommitReply>, events: &Events) -> Option<TaskEnd> {
        Some(match reply? {
            CommitReply::Next { head, .. } => TaskEnd::Next(head),
            // The script counted a completed plan in the plan's own counters.
            CommitReply::Done { completed } => {
                if completed {
                    self.notify(&events.completed);
                }
                TaskEnd::Done
            }
            CommitReply::Review => {
                if let Some(e) = &events.review {
                    self.notify(e);
                }
                TaskEnd::Done
            }
            CommitReply::Stopped { .. } => TaskEnd::Stopped,
            CommitReply::Fenced => TaskEnd::Interrupted(Interruption::LeaseLost),
            CommitReply::Mismatch => {
                // The lease is ours (the fence passed), but the plan's head is not the task we
                // ran: an earlier commit was lost (a Redis failover can lose the last writes it
                // acknowledged). Give the plan back to the front: its head task runs again from
                // the transcript Redis has.
                warn!(
                    "the plan's next task is not the one run (a commit lost in a failover?); \
                     handing the plan back to run it again"
                );
                TaskEnd::Interrupted(Interruption::Stopped)
            }
        })
    }

    /// The task's result and the session record the commit stores.
    fn records(
        &self,
        head: &Head,
        cwd: &Path,
        run: &Run,
        pack: Option<&Pack>,
    ) -> (TaskResult, SessionRecord) {
        let (task, out, sid) = (&head.task, &run.out, run.start.arg.id());
        let now = baton_core::time::now_rfc3339();
        let result = TaskResult {
            task_id: task.id.clone(),
            task_index: task.index,
            kind: task.kind.clone(),
            prompt: task.prompt.clone(),
            result: out.result.clone(),
            session_id: sid,
            worker: self.pool.id.clone(),
            attempts: run.attempts,
            cost_usd: out.cost_usd,
            input_tokens: out.input_tokens,
            output_tokens: out.output_tokens,
            duration_ms: u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            files: out.files.clone(),
            finished_at: now.clone(),
            commit: run.checkpoint.as_ref().map(|c| c.commit.clone()),
            diffstat: run.checkpoint.as_ref().map(|c| c.diffstat),
            structured: out.structured.clone(),
        };
        let previous = run.start.previous();
        let record = SessionRecord {
            session_id: sid,
            created_at: previous.map_or_else(|| now.clone(), |p| p.created_at.clone()),
            last_used_at: now,
            last_worker: self.pool.id.clone(),
            tasks: previous.map_or(0, |p| p.tasks) + 1,
            context_tokens: out.context_tokens,
            transcript_sha256: pack.map(|p| p.committed.digest()).unwrap_or_default(),
            cwd: self.pool.model_cwd(cwd).display().to_string(),
            ttl_secs: head
                .plan
                .options_or_default()
                .session_ttl_secs
                .unwrap_or(self.pool.cfg.session_ttl.as_secs())
                .max(1),
        };
        (result, record)
    }

    /// The events of the commit.
    fn events(
        &self,
        head: &Head,
        run: &Run,
        result: &TaskResult,
        pack: Option<&Pack>,
        claimed_at: Option<SystemTime>,
    ) -> Events {
        let (task, out) = (&head.task, &run.out);
        let review = task.review.then(|| {
            self.report.event(
                ReviewRequested {
                    result: out.result.clone(),
                    rework: task.rework,
                    commit: result.commit.clone(),
                    diffstat: result.diffstat,
                },
                task,
            )
        });
        let git_time = run.git_time;
        let succeeded = TaskSucceeded {
            result: out.result.clone(),
            session_id: result.session_id,
            cost_usd: out.cost_usd,
            input_tokens: out.input_tokens,
            output_tokens: out.output_tokens,
            duration_ms: result.duration_ms,
            files: out.files.clone(),
            attempts: run.attempts,
            // When the run was started, when its result arrived and when it was over (ms since
            // the epoch): what the queue adds around a task can be measured from these and the
            // event's arrival.
            run_started_ms: epoch_ms(run.started_at),
            result_at_ms: epoch_ms(out.result_at),
            run_ended_ms: epoch_ms(run.ended_at),
            // What the model gateway forwarded for the attempt, counted by the gateway itself
            // (the CLI's requests, and any a tool in the box made with the hold's token).
            gateway_requests: run.gateway.requests,
            gateway_input_tokens: run.gateway.input_tokens,
            gateway_output_tokens: run.gateway.output_tokens,
            structured: out.structured.clone(),
            // What this commit sent of the transcript: the whole pack, or the turn's chunk.
            transcript_bytes: pack.map(|p| p.blob.len() as u64),
            commit: result.commit.clone(),
            diffstat: result.diffstat,
            // What git cost this task: the workspace made the checkpoint's files before the
            // run, and the commit and push after it.
            checkout_ms: git_time.map(|t| t.checkout.as_secs_f64() * 1000.0),
            checkpoint_ms: git_time.map(|t| t.checkpoint.as_secs_f64() * 1000.0),
            stamps: Some(TaskStamps {
                claimed_ms: claimed_at.map(epoch_ms),
                began_ms: epoch_ms(self.task_began),
                prepared_ms: epoch_ms(run.prepared_at),
                committing_ms: epoch_ms(SystemTime::now()),
            }),
        };
        Events {
            succeeded: self.report.event(succeeded, task),
            completed: self.report.plan_event(PlanCompleted {
                commit: result.commit.clone(),
            }),
            review,
        }
    }
}
