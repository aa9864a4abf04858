//! Which session a task runs in: the plan's first, a resume of the committed one, or a new one
//! seeded with a recap (a fallback when the old one cannot be resumed, a rotation when it grew
//! too large). The decision is a pure function of the committed state ([`choose`]) and of what
//! the local transcript turned out to be ([`after_restore`]); [`prepare`] does the I/O between:
//! it makes the local transcript equal to the committed one, and fetches the recap's results.

use std::path::Path;

use baton_core::records::{SessionRecord, StoredTask};
use baton_core::scripts::hold::Head;
use baton_core::{ClaudeSessionId, FallbackReason, PlanId, TaskContext};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::claude::SessionArg;
use crate::pool::Pool;
use crate::recap;
use crate::reconnect::redis_retry;
use crate::transcript::{Committed, SessionFiles};

/// How a task's session starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum How {
    /// The plan's first task.
    First,
    /// Continue the committed session (its record).
    Resume(SessionRecord),
    /// The old session cannot be resumed: a new one, with a recap.
    Fallback(FallbackReason),
    /// The old session grew past the context threshold: a new one, with a recap.
    Rotated,
    /// The plan asks for a new session per task (`options.context`), with a recap or without.
    Fresh(TaskContext),
}

/// What the local copy of a committed transcript turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalCopy {
    /// Equal to the committed one already.
    Current,
    /// Restored from Redis (missing here, or holding a failed attempt's partial turn).
    Restored,
    /// Redis no longer holds the transcript.
    Missing,
    /// Redis holds something that does not unpack to the committed transcript.
    Corrupt,
}

/// How the next attempt's session starts, from the committed state alone: the session record
/// (if live), whether the plan ever had a session, a fallback the last attempt forced, and the
/// rotation threshold.
pub(crate) fn choose(
    record: Option<&SessionRecord>,
    had_session: bool,
    forced: Option<FallbackReason>,
    rotate_at_tokens: u64,
) -> How {
    match (forced, record) {
        (Some(reason), _) => How::Fallback(reason),
        (None, None) if had_session => How::Fallback(FallbackReason::Expired),
        (None, None) => How::First,
        (None, Some(r)) if r.context_tokens > rotate_at_tokens => How::Rotated,
        (None, Some(r)) => How::Resume(r.clone()),
    }
}

/// A resume, once the local transcript has been made equal to the committed one (or not).
pub(crate) fn after_restore(record: SessionRecord, copy: LocalCopy) -> How {
    match copy {
        LocalCopy::Current | LocalCopy::Restored => How::Resume(record),
        LocalCopy::Missing => How::Fallback(FallbackReason::TranscriptMissing),
        LocalCopy::Corrupt => How::Fallback(FallbackReason::TranscriptCorrupt),
    }
}

/// The session an attempt runs in, and the prompt that goes with it.
#[derive(Debug, Clone)]
pub(crate) struct SessionStart {
    pub(crate) arg: SessionArg,
    pub(crate) prompt: String,
    pub(crate) how: How,
    /// What is committed of the resumed transcript, as the local copy now holds it.
    pub(crate) committed: Option<Committed>,
    /// Chunks restored after the base pack: the transcript is worth compacting.
    pub(crate) restored_chunks: u64,
}

impl SessionStart {
    /// The record being continued (for its creation time and task count).
    pub(crate) fn previous(&self) -> Option<&SessionRecord> {
        match &self.how {
            How::Resume(r) => Some(r),
            _ => None,
        }
    }

    /// True when this start resumes exactly the turn `last` committed (this hold's own last
    /// commit): only then may a warm process that produced it simply go on.
    pub(crate) fn continues(&self, last: Option<&SessionRecord>) -> bool {
        match (self.previous(), last) {
            (Some(r), Some(l)) => {
                !l.transcript_sha256.is_empty()
                    && r.session_id == l.session_id
                    && r.transcript_sha256 == l.transcript_sha256
            }
            _ => false,
        }
    }
}

/// What an attempt asks [`prepare`] for: the head task, its workspace, a new session the last
/// try forced, and what this worker knows is committed of the transcript.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    pub(crate) head: &'a Head,
    pub(crate) cwd: &'a Path,
    pub(crate) forced: Option<FallbackReason>,
    pub(crate) known: Option<&'a Committed>,
}

/// Decides how the head task's next attempt starts and prepares it: restores the committed
/// transcript when the local copy differs, and writes the recap of a new session. `None` when
/// `stop` was cancelled while Redis was away.
pub(crate) async fn prepare(
    pool: &Pool,
    plan: &PlanId,
    ask: Ask<'_>,
    stop: &CancellationToken,
) -> Option<SessionStart> {
    let Ask {
        head,
        cwd,
        forced,
        known,
    } = ask;
    let task = &head.task;
    let (mut committed, mut restored_chunks) = (None, 0);
    let context = head.plan.options.as_ref().and_then(|o| o.context);
    let had_session = head.plan.session_id.is_some();
    let how = match context {
        Some(c @ (TaskContext::Recap | TaskContext::NoContext)) if had_session => How::Fresh(c),
        _ => choose(
            head.session.as_ref(),
            had_session,
            forced,
            pool.cfg.rotate_at_tokens,
        ),
    };
    let how = match how {
        How::Resume(record) => {
            let (copy, state, chunks) = local_copy(pool, plan, &record, cwd, known, stop).await?;
            committed = state;
            restored_chunks = chunks;
            after_restore(record, copy)
        }
        other => other,
    };
    let task_prompt = reviewed_prompt(task, head.plan.review_note.as_deref());
    let (arg, prompt) = match &how {
        How::Resume(r) => (
            SessionArg::Resume(r.session_id),
            moved_prompt(r, pool.model_cwd(cwd), &task_prompt),
        ),
        How::First => (SessionArg::New(ClaudeSessionId::generate()), task_prompt),
        How::Fallback(reason) => {
            let why = format!("the previous conversation could not be resumed: {reason}");
            let prompt = with_recap(pool, plan, &why, &task_prompt, stop).await?;
            (SessionArg::New(ClaudeSessionId::generate()), prompt)
        }
        How::Rotated => {
            let why = "the previous conversation grew past the context limit";
            let prompt = with_recap(pool, plan, why, &task_prompt, stop).await?;
            (SessionArg::New(ClaudeSessionId::generate()), prompt)
        }
        How::Fresh(TaskContext::Recap) => {
            let why = "the plan starts every task in a new conversation: options.context is recap";
            let prompt = with_recap(pool, plan, why, &task_prompt, stop).await?;
            (SessionArg::New(ClaudeSessionId::generate()), prompt)
        }
        How::Fresh(_) => (SessionArg::New(ClaudeSessionId::generate()), task_prompt),
    };
    Some(SessionStart {
        arg,
        prompt,
        how,
        committed,
        restored_chunks,
    })
}

/// The task's prompt as the model gets it after a review: a rework (a rejected task run again)
/// says so before the reviewer's note, which is its prompt; the task after an approval with a
/// note gets the note first.
pub(crate) fn reviewed_prompt(task: &StoredTask, approval_note: Option<&str>) -> String {
    if task.rework > 0 {
        return format!(
            "[baton] A reviewer rejected your last result for task {} and asks you to do it again. Their note:\n\n{}",
            task.id, task.prompt
        );
    }
    match approval_note {
        Some(note) => format!(
            "[baton] A reviewer approved your last task, with this note:\n\n{note}\n\n[baton] The next task:\n\n{}",
            task.prompt
        ),
        None => task.prompt.clone(),
    }
}

/// The task's prompt, with a note first when the session last ran under another working
/// directory (a worker whose workspace root is at another path): a resumed CLI process tells the
/// model its old directory on its first turn, and the model would look for files there.
fn moved_prompt(record: &SessionRecord, cwd: &Path, prompt: &str) -> String {
    let now = cwd.display().to_string();
    if record.cwd.is_empty() || record.cwd == now {
        return prompt.to_owned();
    }
    format!(
        "[baton] This conversation continues in another working directory: {now} (it was {}). Use paths relative to it.\n\n{prompt}",
        record.cwd
    )
}

/// Makes the local transcript of `record`'s session equal to the committed one. The local file
/// is a cache: it may be missing (another machine ran the last task) or hold a failed
/// attempt's partial turn; base pack and chunks in Redis are the truth. Returns how the copy
/// was found, what is committed (when the copy holds it), and the chunks a restore applied.
#[tracing::instrument(name = "restore", skip_all)]
async fn local_copy(
    pool: &Pool,
    plan: &PlanId,
    record: &SessionRecord,
    cwd: &Path,
    known: Option<&Committed>,
    stop: &CancellationToken,
) -> Option<(LocalCopy, Option<Committed>, u64)> {
    let files = SessionFiles::new(&pool.config_dir, cwd, record.session_id);
    // What this worker committed last, still on disk (perhaps with more after it, which is
    // cut off): no need to read the whole file.
    if let Some(k) = known {
        if k.session() == record.session_id
            && k.digest() == record.transcript_sha256
            && crate::transcript::rewind_off_thread(&files, k).await
        {
            return Some((LocalCopy::Current, Some(k.clone()), 0));
        }
    }
    if let Some(state) = crate::transcript::state_off_thread(&files).await {
        if state.digest() == record.transcript_sha256 {
            return Some((LocalCopy::Current, Some(state), 0));
        }
    }
    let stored = redis_retry("fetch transcript", stop, || pool.store.transcript(plan)).await?;
    let Some(stored) = stored else {
        return Some((LocalCopy::Missing, None, 0));
    };
    let chunks = stored.chunks.len() as u64;
    let digest = record.transcript_sha256.clone();
    Some(
        match crate::transcript::restore_off_thread(&files, stored.base, stored.chunks, digest)
            .await
        {
            Ok(state) => (LocalCopy::Restored, Some(state), chunks),
            Err(e) => {
                warn!(error = %e, "committed transcript unusable");
                // Whatever is left may be large: removed off the runtime's threads.
                let left = files.clone();
                let _ = tokio::task::spawn_blocking(move || left.remove_everywhere()).await;
                (LocalCopy::Corrupt, None, 0)
            }
        },
    )
}

/// The first prompt of a new session: the recap of the plan so far, then the task (just the
/// task when nothing was committed yet).
async fn with_recap(
    pool: &Pool,
    plan: &PlanId,
    why: &str,
    task_prompt: &str,
    stop: &CancellationToken,
) -> Option<String> {
    let earlier = redis_retry("read results", stop, || pool.store.results(plan)).await?;
    Some(if earlier.is_empty() {
        task_prompt.to_owned()
    } else {
        recap::prompt_with_recap(why, &earlier, task_prompt)
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
