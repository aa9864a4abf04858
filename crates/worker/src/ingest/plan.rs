//! A plan document applied: checked against this worker's settings (workspace, grants,
//! repository), its workspace claimed, then `ingest.lua`.

use baton_core::event::{AcceptStatus, PlanAccepted};

use baton_core::scripts::ingest::{
    ClaimWorkspace, Ingest, IngestReply, IngestStatus, WorkspaceClaim,
};
use baton_core::{Counter, Counts, Event, PlanId, RepoSpec, Requeue, Submission};
use tracing::debug;

use super::{Ingestion, Taken};
use crate::grants::Allowed;
use crate::reconnect::redis_retry;
use crate::workspace;

/// A field at fault and the problem.
type Refusal = (String, String);

fn refused(field: &str, problem: impl Into<String>) -> Refusal {
    (field.to_owned(), problem.into())
}

impl Ingestion<'_> {
    pub(super) async fn apply_plan(&self, taken: &Taken, sub: Submission) {
        let (plan, repo) = match self.check_plan(taken, &sub) {
            Ok(checked) => checked,
            Err((field, problem)) => return self.reject(taken, &field, &problem).await,
        };
        // Last of the checks: once claimed, the workspace is the plan's until it expires.
        match self.claim_workspace(&plan, &sub).await {
            None => return,
            Some(Err(problem)) => return self.reject(taken, "workspace", &problem).await,
            Some(Ok(())) => {}
        }
        let tasks_json = serde_json::to_string(&sub.tasks).expect("tasks serialize");
        let options_json = sub
            .options
            .as_ref()
            .map(|o| serde_json::to_string(o).expect("options serialize"));
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
        self.after_ingest(taken, &plan, applied).await;
    }

    /// What no document check could see, in order: the plan id (a document without one gets
    /// its tag, so a re-ingest after a crash names the same plan), the workspace, this worker's
    /// sandbox and allow lists, the repository.
    fn check_plan(
        &self,
        taken: &Taken,
        sub: &Submission,
    ) -> Result<(PlanId, Option<RepoSpec>), Refusal> {
        let plan = match &sub.plan_id {
            Some(p) => p.clone(),
            None => taken
                .tag
                .parse::<PlanId>()
                .map_err(|e| refused("plan_id", e.to_string()))?,
        };
        if let Some(ws) = &sub.workspace {
            workspace::check(&self.pool.workspace_root, ws)
                .map_err(|e| refused("workspace", e.to_string()))?;
        }
        if let Some(o) = &sub.options {
            Allowed::new(&self.pool.cfg)
                .check(o)
                .map_err(|v| refused(&v.field, v.problem))?;
        }
        let repo = sub
            .repo
            .as_ref()
            .map(|r| r.for_plan(&plan))
            .transpose()
            .map_err(|problem| refused("repo.branch", problem))?;
        if let Some(r) = &repo {
            self.pool
                .git
                .check_url(&r.url)
                .map_err(|problem| refused("repo.url", problem))?;
        }
        Ok((plan, repo))
    }

    /// Claims the plan's workspace: `Some(Err(why))` when another live plan holds it (or a
    /// folder around or inside it); `None` when stopped while Redis was away.
    async fn claim_workspace(&self, plan: &PlanId, sub: &Submission) -> Option<Result<(), String>> {
        let claim = ClaimWorkspace {
            plan,
            workspace: sub.workspace.as_ref(),
        };
        let claimed = redis_retry("claim the workspace", &self.pool.shutdown.abort, || {
            self.pool.store.call(&claim)
        })
        .await?;
        Some(match claimed {
            WorkspaceClaim::Claimed(_) => Ok(()),
            conflict => {
                let wanted = sub
                    .workspace
                    .as_ref()
                    .map_or_else(|| plan.to_string(), |w| w.as_str().to_owned());
                Err(conflict.problem(plan, &wanted).unwrap_or_default())
            }
        })
    }

    /// The document applied (counted and the plan scheduled), or refused by the script.
    async fn after_ingest(&self, taken: &Taken, plan: &PlanId, applied: Option<IngestReply>) {
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
                concurrency_key,
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
                let key = concurrency_key.as_deref().unwrap_or("");
                self.finish(taken, plan, to, priority, &counts, Some(key))
                    .await;
            }
        }
    }
}
