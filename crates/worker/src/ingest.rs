//! Ingest: move documents off the submit list reliably, validate them, and apply them to their
//! plan (a plan document creates or extends it, an action document acts on it), or keep them
//! on the dead-letter list with the field at fault and the reason.
//!
//! A document is first moved into this worker's ingesting list (`BLMOVE`), then tagged with a
//! fresh id in place. The plan's script records applied tags, so if this worker dies at any
//! point and a reaper hands the (tagged) document back, it is applied exactly once. A document
//! with no `plan_id` gets the tag as its plan id, for the same reason.
//!
//! The reaper hands documents back on a list of their own (`handback`), which workers take
//! from first; only there is a tag trusted. A client's document that starts with a tag (a copy
//! of a tagged entry, or an invented one) is dead-lettered with the reason: trusted, it could
//! pass for a document already applied and be dropped as a repeat, unapplied and unrecorded.

use std::sync::Arc;
use std::time::Duration;

use baton_core::event::{
    AcceptStatus, Bare, EventBody, PlanAccepted, PlanCompleted, ReviewApproved, ReviewRejected,
    SubmissionRejected,
};
use baton_core::records::DeadLetter;
use baton_core::scripts::control::{ActionReply, Approve, Refused, Reject, Resume, Retry};
use baton_core::scripts::ingest::{
    ClaimWorkspace, FinishIngest, Ingest, IngestReply, IngestStatus, WorkspaceClaim,
};
use baton_core::scripts::{split_tagged, INGEST_TAG_PREFIX};
use baton_core::{
    ActionRequest, Counter, Counts, Document, Event, PlanAction, PlanId, Priority, Requeue,
    Submission,
};
use tracing::{debug, warn};

use crate::grants::Allowed;
use crate::pool::Pool;
use crate::reconnect::{redis_retry, BlockingPop, PopFrom};
use crate::workspace;

/// How long one take from the submit list blocks before the loop looks at the drain again.
const SUBMIT_BLOCK: Duration = Duration::from_secs(2);
/// How much of an oversized document a dead letter keeps.
const KEPT_OVERSIZED_BYTES: usize = 64 * 1024;

/// The document as a dead letter keeps it: whole when within the size limit (so it can be
/// requeued after a fix), else its beginning, so a hostile client cannot double Redis's memory.
fn kept_document(doc: &[u8]) -> String {
    if doc.len() <= baton_core::plan::MAX_DOCUMENT_BYTES {
        return String::from_utf8_lossy(doc).into_owned();
    }
    let head = String::from_utf8_lossy(&doc[..KEPT_OVERSIZED_BYTES]);
    format!(
        "{head}[... {} more bytes not kept]",
        doc.len() - KEPT_OVERSIZED_BYTES
    )
}

/// The ingest loop: runs until drained.
pub(crate) async fn run(pool: Arc<Pool>) {
    let mut takes = BlockingPop::new(&pool.store, &pool.id, PopFrom::Submit, SUBMIT_BLOCK);
    while let Some(popped) = takes.next(&pool.shutdown.drain).await {
        if let Some(entry) = popped.entry {
            Ingestion { pool: &pool }
                .one(entry, popped.handed_back)
                .await;
        }
    }
}

/// One worker's ingest of documents.
struct Ingestion<'p> {
    pool: &'p Pool,
}

/// A document taken for ingest.
struct Taken {
    /// The entry as it stands in the ingesting list (tagged).
    entry: Vec<u8>,
    tag: String,
    doc: Vec<u8>,
}

/// What an entry taken for ingest is, by where it came from and whether it carries a tag.
#[derive(Debug, PartialEq, Eq)]
enum Origin<'e> {
    /// A document as a client sent it: tag it.
    Fresh,
    /// A document the reaper handed back with the tag a worker gave it: ingest it again under
    /// that tag (applied once, whatever happened before).
    Retake { tag: &'e str, doc: &'e [u8] },
    /// A client's entry that starts like a tagged one: refused (`doc` is what follows the tag
    /// line, kept on the dead letter).
    ClientTagged { doc: &'e [u8] },
}

fn origin(entry: &[u8], handed_back: bool) -> Origin<'_> {
    if let (Some(tag), doc) = split_tagged(entry) {
        if handed_back {
            return Origin::Retake { tag, doc };
        }
        return Origin::ClientTagged { doc };
    }
    if entry.starts_with(INGEST_TAG_PREFIX.as_bytes()) {
        let doc = entry
            .iter()
            .position(|b| *b == b'\n')
            .map_or(&entry[..0], |nl| &entry[nl + 1..]);
        return Origin::ClientTagged { doc };
    }
    Origin::Fresh
}

impl Ingestion<'_> {
    async fn one(&self, entry: Vec<u8>, handed_back: bool) {
        if let Origin::ClientTagged { doc } = origin(&entry, handed_back) {
            let taken = Taken {
                doc: doc.to_vec(),
                tag: String::new(),
                entry,
            };
            let problem = format!(
                "starts with baton's ingest tag ({INGEST_TAG_PREFIX}...), which only workers \
                 write; it is not applied, so that a copied or invented tag cannot pass it off \
                 as a document already ingested. Submit the JSON document alone"
            );
            return self.reject(&taken, "document", &problem).await;
        }
        let Some(taken) = self.tag(entry).await else {
            return;
        };
        match Document::parse(&taken.doc) {
            Err(v) => self.reject(&taken, &v.field, &v.problem).await,
            Ok(Document::Plan(sub)) => self.apply_plan(&taken, *sub).await,
            Ok(Document::Action(req)) => self.apply_action(&taken, &req).await,
        }
    }

    /// Tags a document taken for the first time (in place, in the ingesting list); a document
    /// handed back keeps its tag.
    async fn tag(&self, entry: Vec<u8>) -> Option<Taken> {
        if let (Some(tag), doc) = split_tagged(&entry) {
            let (tag, doc) = (tag.to_owned(), doc.to_vec());
            return Some(Taken { entry, tag, doc });
        }
        let tag = uuid::Uuid::new_v4().to_string();
        let mut tagged = format!("{INGEST_TAG_PREFIX}{tag}\n").into_bytes();
        tagged.extend_from_slice(&entry);
        redis_retry("tag submission", &self.pool.shutdown.abort, || {
            self.pool.store.tag_ingesting(&self.pool.id, &tagged)
        })
        .await?;
        Some(Taken {
            entry: tagged,
            tag,
            doc: entry,
        })
    }

    async fn apply_plan(&self, taken: &Taken, sub: Submission) {
        // A document without a plan id gets its tag: a re-ingest after a crash names the same plan.
        let plan = match sub.plan_id {
            Some(p) => p,
            None => match taken.tag.parse::<PlanId>() {
                Ok(p) => p,
                Err(e) => return self.reject(taken, "plan_id", &e.to_string()).await,
            },
        };
        if let Some(ws) = &sub.workspace {
            if let Err(e) = workspace::check(&self.pool.workspace_root, ws) {
                return self.reject(taken, "workspace", &e.to_string()).await;
            }
        }
        // What the document's own checks could not see: this worker's sandbox and allow lists.
        if let Some(o) = &sub.options {
            if let Err(v) = Allowed::new(&self.pool.cfg).check(o) {
                return self.reject(taken, &v.field, &v.problem).await;
            }
        }
        let tasks_json = serde_json::to_string(&sub.tasks).expect("tasks serialize");
        let options_json = sub
            .options
            .as_ref()
            .map(|o| serde_json::to_string(o).expect("options serialize"));
        let repo = match sub.repo.as_ref().map(|r| r.for_plan(&plan)).transpose() {
            Ok(r) => r,
            Err(problem) => return self.reject(taken, "repo.branch", &problem).await,
        };
        if let Some(r) = &repo {
            if let Err(problem) = self.pool.git.check_url(&r.url) {
                return self.reject(taken, "repo.url", &problem).await;
            }
        }
        // Last of the checks: once claimed, the workspace is the plan's until it expires.
        let claim = ClaimWorkspace {
            plan: &plan,
            workspace: sub.workspace.as_ref(),
        };
        let claimed = redis_retry("claim the workspace", &self.pool.shutdown.abort, || {
            self.pool.store.call(&claim)
        })
        .await;
        match claimed {
            None => return,
            Some(WorkspaceClaim::Claimed(_)) => {}
            Some(conflict) => {
                let wanted = sub
                    .workspace
                    .as_ref()
                    .map_or_else(|| plan.to_string(), |w| w.as_str().to_owned());
                let problem = conflict.problem(&plan, &wanted).unwrap_or_default();
                return self.reject(taken, "workspace", &problem).await;
            }
        }
        // The script sets what only it knows: created or appended, the first task's index, and
        // the plan's state after the document.
        let accepted = Event::new(
            Some(&plan),
            PlanAccepted {
                status: AcceptStatus::Created,
                tasks: Some(sub.tasks.len() as u64),
                first_task_index: None,
                state: None,
            },
        )
        .worker(&self.pool.id);
        let call = Ingest {
            plan: &plan,
            tag: &taken.tag,
            workspace: sub.workspace.as_ref(),
            options_json: options_json.as_deref(),
            tasks_json: &tasks_json,
            accepted: &accepted,
            repo: repo.as_ref(),
            not_before_ms: sub.options.as_ref().and_then(|o| o.not_before_ms()),
        };
        let applied = redis_retry("ingest", &self.pool.shutdown.abort, || {
            self.pool.store.call(&call)
        })
        .await;
        match applied {
            None => {}
            Some(IngestReply::Refused { field, problem }) => {
                self.reject(taken, &field, &problem).await;
            }
            Some(IngestReply::Applied {
                status,
                first_index,
                count,
                schedule,
                priority,
                ..
            }) => {
                debug!(plan = %plan, %status, tasks = count, first_index, "document ingested");
                let tasks = i64::try_from(count).unwrap_or(i64::MAX);
                let mut counts = Counts::default();
                match status {
                    IngestStatus::Created => counts
                        .add(Counter::PlansAccepted, 1)
                        .add(Counter::TasksAccepted, tasks),
                    IngestStatus::Appended => counts
                        .add(Counter::FollowupsAccepted, 1)
                        .add(Counter::TasksAccepted, tasks),
                    IngestStatus::Duplicate => &mut counts,
                };
                let to = if schedule {
                    Requeue::Back
                } else {
                    Requeue::Drop
                };
                self.finish(taken, &plan, to, priority, &counts).await;
            }
        }
    }

    async fn apply_action(&self, taken: &Taken, req: &ActionRequest) {
        let plan = &req.plan_id;
        let tag = &taken.tag;
        let worker = &self.pool.id;
        let abort = &self.pool.shutdown.abort;
        let store = &self.pool.store;
        let note = req.note.as_deref();
        // Sent by an approval of a plan's last task.
        let completed = Event::new(Some(plan), PlanCompleted::default()).worker(worker);
        let applied = match req.action {
            PlanAction::Retry => {
                let event = Event::new(
                    Some(plan),
                    PlanAccepted {
                        status: AcceptStatus::Retried,
                        tasks: None,
                        first_task_index: None,
                        state: None,
                    },
                )
                .worker(worker);
                let call = Retry {
                    plan,
                    tag,
                    event: &event,
                };
                redis_retry("retry", abort, || store.call(&call)).await
            }
            PlanAction::Resume => {
                let event = Event::new(Some(plan), EventBody::PlanResumed(Bare {})).worker(worker);
                let call = Resume {
                    plan,
                    tag,
                    event: &event,
                    session_ttl_secs: self.pool.cfg.session_ttl.as_secs(),
                };
                redis_retry("resume", abort, || store.call(&call)).await
            }
            PlanAction::Approve => {
                let event = Event::new(
                    Some(plan),
                    ReviewApproved {
                        note: note.map(str::to_owned),
                    },
                )
                .worker(worker);
                let call = Approve {
                    plan,
                    tag,
                    note,
                    event: &event,
                    completed: &completed,
                    session_ttl_secs: self.pool.cfg.session_ttl.as_secs(),
                };
                redis_retry("approve", abort, || store.call(&call)).await
            }
            PlanAction::Reject => {
                let note = note.unwrap_or_default();
                let event = Event::new(
                    Some(plan),
                    ReviewRejected {
                        note: note.to_owned(),
                    },
                )
                .worker(worker);
                let call = Reject {
                    plan,
                    tag,
                    note,
                    event: &event,
                    session_ttl_secs: self.pool.cfg.session_ttl.as_secs(),
                };
                redis_retry("reject", abort, || store.call(&call)).await
            }
        };
        // A user waits for a plan they acted on: it goes to the front of its line.
        let front = |schedule| {
            if schedule {
                Requeue::Front
            } else {
                Requeue::Drop
            }
        };
        match applied {
            None => {}
            Some(ActionReply::Applied {
                schedule,
                priority,
                completed: plan_completed,
            }) => {
                if plan_completed {
                    self.notify_completed(plan, &completed).await;
                }
                let mut counts = Counts::default();
                if req.action == PlanAction::Retry {
                    counts.add(Counter::PlansRetried, 1);
                }
                self.finish(taken, plan, front(schedule), priority, &counts)
                    .await;
            }
            Some(ActionReply::Duplicate { schedule, priority }) => {
                self.finish(taken, plan, front(schedule), priority, &Counts::NONE)
                    .await;
            }
            Some(ActionReply::Refused(Refused(state))) => {
                let problem = req.action.refusal(plan, state);
                self.reject(taken, "action", &problem).await;
            }
        }
    }

    /// An approval completed the plan: the pool's counters take the plan's totals (its
    /// `plans_completed` among them; no hold hands this plan back), and its webhook hears of it
    /// from this worker.
    async fn notify_completed(&self, plan: &PlanId, event: &Event) {
        let pool = self.pool;
        let abort = &pool.shutdown.abort;
        if let Some(totals) = redis_retry("read the plan's counters", abort, || {
            pool.store.plan_totals(plan)
        })
        .await
        {
            let tally = baton_core::scripts::pool::Tally {
                plan,
                totals: &totals,
            };
            let _ = redis_retry("tally", abort, || pool.store.call(&tally)).await;
        }
        let options = pool.store.plan_options(plan).await.ok().flatten();
        let notify = options.and_then(|o| o.notify);
        pool.webhooks.send(
            notify.as_ref(),
            event,
            &pool.store,
            &pool.id,
            &pool.shutdown.abort,
        );
    }

    /// Drops the document from the ingesting list, schedules the plan, adds the counts.
    async fn finish(
        &self,
        taken: &Taken,
        plan: &PlanId,
        to: Requeue,
        priority: Priority,
        counts: &Counts,
    ) {
        let call = FinishIngest {
            worker: &self.pool.id,
            entry: &taken.entry,
            plan: Some((plan, to)),
            priority,
            counts,
        };
        let _ = redis_retry("finish ingest", &self.pool.shutdown.abort, || {
            self.pool.store.call(&call)
        })
        .await;
    }

    /// Keeps the document on the dead-letter list with the field at fault and the problem, and
    /// publishes `submission_rejected`.
    async fn reject(&self, taken: &Taken, field: &str, problem: &str) {
        let reason = format!("{field}: {problem}");
        // Name the plan in the event when the document names a valid one, so a producer
        // waiting on it hears of the rejection.
        let plan_id = serde_json::from_slice::<serde_json::Value>(&taken.doc)
            .ok()
            .and_then(|v| v.get("plan_id")?.as_str()?.parse::<PlanId>().ok());
        let letter =
            DeadLetter::submission(plan_id.clone(), field, &reason, kept_document(&taken.doc));
        let event = Event::new(
            plan_id.as_ref(),
            SubmissionRejected {
                reason: reason.clone(),
                field: Some(field.to_owned()),
                dead_letter_id: letter.id.to_string(),
            },
        )
        .worker(&self.pool.id);
        warn!(reason = %reason, dead_letter = %letter.id, "document rejected");
        let _ = redis_retry("reject", &self.pool.shutdown.abort, || {
            self.pool
                .store
                .reject(&self.pool.id, &taken.entry, &letter, &event)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_trusted_only_on_a_handed_back_entry() {
        let tagged = b"baton-tag:5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11\n{\"tasks\":[]}";
        assert_eq!(
            origin(tagged, true),
            Origin::Retake {
                tag: "5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11",
                doc: b"{\"tasks\":[]}"
            }
        );
        assert_eq!(
            origin(tagged, false),
            Origin::ClientTagged {
                doc: b"{\"tasks\":[]}"
            }
        );
        assert_eq!(
            origin(b"baton-tag:not-a-uuid\n{}", false),
            Origin::ClientTagged { doc: b"{}" }
        );
        assert_eq!(origin(b"{\"tasks\":[]}", false), Origin::Fresh);
        assert_eq!(
            origin(b"{\"tasks\":[]}", true),
            Origin::Fresh,
            "handed back before it was tagged"
        );
    }

    #[test]
    fn dead_letters_keep_valid_sized_documents_whole_and_cut_oversized_ones() {
        let small = b"{\"tasks\":[]}";
        assert_eq!(kept_document(small), "{\"tasks\":[]}");
        let big = vec![b'x'; baton_core::plan::MAX_DOCUMENT_BYTES * 3];
        let kept = kept_document(&big);
        assert!(kept.len() < KEPT_OVERSIZED_BYTES + 100, "{}", kept.len());
        assert!(kept.ends_with(&format!(
            "[... {} more bytes not kept]",
            big.len() - KEPT_OVERSIZED_BYTES
        )));
    }
}
