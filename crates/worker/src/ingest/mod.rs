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
//!
//! `plan`: a plan document checked and applied; `action`: an action document applied.

mod action;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use baton_core::event::SubmissionRejected;
use baton_core::records::DeadLetter;
use baton_core::scripts::ingest::FinishIngest;
use baton_core::scripts::{split_tagged, INGEST_TAG_PREFIX};
use baton_core::{Counts, Document, Event, PlanId, Priority, Requeue};
use tracing::warn;

use crate::pool::Pool;
use crate::reconnect::{redis_retry, BlockingPop, PopFrom};

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

    /// Drops the document from the ingesting list, schedules the plan, adds the counts.
    async fn finish(
        &self,
        taken: &Taken,
        plan: &PlanId,
        to: Requeue,
        priority: Priority,
        counts: &Counts,
        concurrency_key: Option<&str>,
    ) {
        let call = FinishIngest {
            worker: &self.pool.id,
            entry: &taken.entry,
            plan: Some((plan, to)),
            priority,
            counts,
            concurrency_key,
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
mod tests;
