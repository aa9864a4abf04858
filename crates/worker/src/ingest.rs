//! Ingest: move documents off the submit list reliably, validate them, and apply them to their
//! plan, or keep them on the dead-letter list with the reason.
//!
//! A document is first moved into this worker's ingesting list (`BLMOVE`), then tagged with a
//! fresh id in place. The plan script records applied tags, so if this worker dies at any point
//! and a reaper hands the (tagged) document back, it is applied exactly once. A document with no
//! `plan_id` gets the tag as its plan id, for the same reason.

use std::sync::Arc;
use std::time::Duration;

use baton_core::records::DeadLetter;
use baton_core::scripts::{split_tagged, INGEST_TAG_PREFIX};
use baton_core::{Event, EventKind, PlanId, Submission, Workspace};
use tracing::{debug, warn};

use crate::runner::{reconnect_delays, redis_retry, Worker};
use crate::store::Store;

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

impl Worker {
    /// The ingest loop: runs until drained.
    pub(crate) async fn run_ingest(self: Arc<Self>) {
        let block = Duration::from_secs(2);
        let submit = self.store.keys.submit();
        let ingesting = self.store.keys.ingesting(&self.id);
        let mut conn = None;
        let mut delays = reconnect_delays();
        while !self.drain.is_cancelled() {
            if conn.is_none() {
                match self.store.blocking_conn(block).await {
                    Ok(c) => conn = Some(c),
                    Err(_) => {
                        let d = delays.next().unwrap_or(Duration::from_secs(5));
                        tokio::select! { _ = self.drain.cancelled() => break, _ = tokio::time::sleep(d) => {} }
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected above");
            let popped = tokio::select! {
                _ = self.drain.cancelled() => break,
                r = Store::blocking_move(c, &submit, &ingesting, block) => r,
            };
            match popped {
                Ok(None) => {}
                Ok(Some(entry)) => {
                    delays = reconnect_delays();
                    self.ingest_one(entry).await;
                }
                Err(e) => {
                    conn = None;
                    debug!(error = %e, "submit pop failed; reconnecting");
                    let d = delays.next().unwrap_or(Duration::from_secs(5));
                    tokio::select! { _ = self.drain.cancelled() => break, _ = tokio::time::sleep(d) => {} }
                }
            }
        }
    }

    async fn ingest_one(&self, entry: Vec<u8>) {
        let (tag, doc, entry) = match split_tagged(&entry) {
            (Some(tag), doc) => (tag.to_owned(), doc.to_vec(), entry.clone()),
            (None, _) => {
                let tag = uuid::Uuid::new_v4().to_string();
                let mut tagged = format!("{INGEST_TAG_PREFIX}{tag}\n").into_bytes();
                tagged.extend_from_slice(&entry);
                if redis_retry("tag submission", &self.abort, || {
                    self.store.tag_ingesting(&self.id, &tagged)
                })
                .await
                .is_none()
                {
                    return;
                }
                (tag, entry, tagged)
            }
        };
        let sub = match Submission::parse(&doc) {
            Ok(s) => s,
            Err(v) => return self.reject(&entry, &doc, &v.field, &v.problem).await,
        };
        let plan = sub
            .plan_id
            .clone()
            .unwrap_or_else(|| tag.parse::<PlanId>().expect("a UUID is a valid plan id"));
        if let Some(ws) = &sub.workspace {
            if let Err(problem) = self.check_workspace_on_disk(ws) {
                return self.reject(&entry, &doc, "workspace", &problem).await;
            }
        }
        let tasks_json = serde_json::to_string(&sub.tasks).expect("tasks serialize");
        let options_json = sub
            .options
            .as_ref()
            .map(|o| serde_json::to_string(o).expect("options serialize"))
            .unwrap_or_default();
        let accepted =
            Event::new(EventKind::PlanAccepted, Some(plan.as_str())).worker(self.id.as_str());
        let given = sub.workspace.as_ref().map(Workspace::as_str).unwrap_or("");
        let default_ws = Workspace::for_plan(&plan);
        let applied = redis_retry("ingest", &self.abort, || {
            self.store.ingest(
                &plan,
                &tag,
                given,
                default_ws.as_str(),
                &options_json,
                &tasks_json,
                &accepted,
            )
        })
        .await;
        match applied {
            None => {}
            Some(Err((field, problem))) => self.reject(&entry, &doc, &field, &problem).await,
            Some(Ok(outcome)) => {
                debug!(plan = %plan, status = %outcome.status, tasks = outcome.count, first_index = outcome.first_index, "document ingested");
                let counters: &[(&str, i64)] = match outcome.status.as_str() {
                    "created" => &[
                        ("plans_accepted", 1),
                        ("tasks_accepted", outcome.count as i64),
                    ],
                    "duplicate" => &[],
                    _ => &[
                        ("followups_accepted", 1),
                        ("tasks_accepted", outcome.count as i64),
                    ],
                };
                let _ = redis_retry("finish ingest", &self.abort, || {
                    self.store.finish_ingest(
                        &self.id,
                        &entry,
                        Some(&plan),
                        outcome.schedule,
                        counters,
                    )
                })
                .await;
            }
        }
    }

    /// Refuses a workspace whose existing folders go through a symlink (the document check
    /// cannot see the disk; the run-time check repeats this).
    fn check_workspace_on_disk(&self, ws: &Workspace) -> Result<(), String> {
        let mut path = self.workspace_root.clone();
        for part in ws.as_str().split('/') {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(
                        "goes through a symlink, which could leave the workspace root".into(),
                    )
                }
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    async fn reject(&self, entry: &[u8], doc: &[u8], field: &str, problem: &str) {
        let reason = format!("{field}: {problem}");
        // Name the plan in the event when the document names a valid one, so a producer
        // waiting on it hears of the rejection.
        let plan_id = serde_json::from_slice::<serde_json::Value>(doc)
            .ok()
            .and_then(|v| v.get("plan_id").and_then(|p| p.as_str()).map(str::to_owned))
            .filter(|p| p.parse::<PlanId>().is_ok());
        let letter = DeadLetter {
            id: uuid::Uuid::new_v4().to_string(),
            at: baton_core::time::now_rfc3339(),
            kind: "submission".into(),
            reason: reason.clone(),
            field: Some(field.to_owned()),
            plan_id: plan_id.clone(),
            task_id: None,
            attempts: Vec::new(),
            document: Some(kept_document(doc)),
        };
        let event = Event::new(EventKind::SubmissionRejected, plan_id.as_deref())
            .worker(self.id.as_str())
            .with("reason", reason.clone())
            .with("field", field)
            .with("dead_letter_id", letter.id.clone());
        warn!(reason = %reason, dead_letter = %letter.id, "document rejected");
        let _ = redis_retry("reject", &self.abort, || {
            self.store.reject(&self.id, entry, &letter, &event)
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
