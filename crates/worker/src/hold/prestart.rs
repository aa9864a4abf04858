//! One round trip per task inside a hold: the commit that finishes task k also publishes the
//! start of task k+1 (`task_started`, the session event and the plan's counters of them) when
//! this hold will run it, instead of a `start.lua` trip of its own once the attempt begins.
//!
//! The start is written before the next attempt exists, so the hold predicts it, and only
//! where the prediction cannot fail short of something outside the worker: attempt 1, resuming
//! the session this very commit records, on this worker, whose transcript the commit holds.
//! Anything else (the last task of the hold, a drain, a plan that starts each task afresh, a
//! rotation due, no transcript) starts as before. Once a commit published the start, the task
//! runs: a drain that began during that commit lets it finish, as it lets a running task. The script leaves the start out when the
//! budget is spent or the next task was recovered from a dead worker, and says whether it
//! wrote it. When the attempt then starts otherwise than predicted (its options changed by an
//! appended document, its transcript gone meanwhile), the hold publishes the start it did make
//! as before: watchers see two `task_started` for the attempt, the last one true, and nothing
//! is lost (the plan's `resumes_attempted` then counts the announced resume too). A crash after such a commit leaves a `task_started` no run follows, as a crash
//! during a run always did; the next holder starts the task again.

use baton_core::event::{EventBody, SessionNote, TaskStarted};
use baton_core::records::{SessionRecord, StoredTask};
use baton_core::scripts::hold::Head;
use baton_core::scripts::task::NextStart;
use baton_core::{ClaudeSessionId, Counter, Counts, Event, TaskContext, TaskId, WorkerId};

use super::Hold;
use crate::attempt::SessionStarted;
use crate::session::{self, How};

/// The next task's start, as the commit before it will publish it.
pub(super) struct Planned {
    events: Vec<Event>,
    counts: Counts,
    budget_usd: Option<f64>,
    session_id: ClaudeSessionId,
}

impl Planned {
    /// The commit's part of it.
    pub(super) fn call(&self) -> NextStart<'_> {
        NextStart {
            events: &self.events,
            plan_counts: &self.counts,
            budget_usd: self.budget_usd,
        }
    }

    /// What the hold remembers once the commit said it published the start of `next`.
    pub(super) fn published(&self, next: &TaskId) -> Prestarted {
        Prestarted {
            task: next.clone(),
            session_id: self.session_id,
        }
    }
}

/// A start a commit published, until the attempt it announced begins.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prestarted {
    task: TaskId,
    session_id: ClaudeSessionId,
}

impl Prestarted {
    /// True when the attempt that begins is the one the commit announced: the same task's
    /// first attempt, resuming the announced session from this worker's own commit.
    pub(crate) fn announced(
        &self,
        task: &StoredTask,
        attempt: u32,
        start: &SessionStarted,
        worker: &WorkerId,
    ) -> bool {
        let resumes_own = matches!(&start.how, How::Resume(r) if &r.last_worker == worker);
        task.id == self.task && attempt == 1 && start.id == self.session_id && resumes_own
    }
}

impl Hold<'_> {
    /// The start of the task after `head` that its commit can publish: `record` is the session
    /// the commit stores, `packed` whether it stores the turn's transcript. `None` when the
    /// next attempt starts as before (see the module's doc).
    pub(super) fn plan_next_start(
        &self,
        head: &Head,
        record: &SessionRecord,
        packed: bool,
    ) -> Option<Planned> {
        if !packed || !self.goes_on_after(self.ran + 1) {
            return None;
        }
        let options = head.plan.options.as_ref();
        if matches!(
            options.and_then(|o| o.context),
            Some(TaskContext::Recap | TaskContext::NoContext)
        ) {
            return None;
        }
        let rotate_at = self.pool.cfg.rotate_at_tokens;
        if !matches!(
            session::choose(Some(record), true, None, rotate_at),
            How::Resume(_)
        ) {
            return None;
        }
        let session_id = record.session_id;
        let started = TaskStarted {
            attempt: 1,
            session_id,
            mode: self.engine.mode(),
            trace_id: self.report.trace_id.clone(),
        };
        let resumed = EventBody::SessionResumed(SessionNote {
            session_id,
            from_worker: Some(self.pool.id.clone()),
        });
        let mut counts = Counts::default();
        counts.add(Counter::ResumesAttempted, 1);
        Some(Planned {
            events: vec![
                self.report.plan_event(started),
                self.report.plan_event(resumed),
            ],
            counts,
            budget_usd: options.and_then(|o| o.max_budget_usd),
            session_id,
        })
    }
}
