//! An action document applied (`retry`, `resume`, `approve`, `reject`, `budget`), each by its script on
//! the plan, then the plan scheduled (at the front of its line: a user waits for it).

use baton_core::event::{
    AcceptStatus, Bare, EventBody, PlanAccepted, PlanBudgetRaised, PlanCompleted, ReviewApproved,
    ReviewRejected,
};
use baton_core::scripts::control::{ActionReply, Approve, Refused, Reject, Resume, Retry};
use baton_core::scripts::limits::RaiseBudget;
use baton_core::{ActionRequest, Counter, Counts, Event, PlanAction, PlanId, Requeue};

use super::{Ingestion, Taken};
use crate::reconnect::redis_retry;

impl Ingestion<'_> {
    pub(super) async fn apply_action(&self, taken: &Taken, req: &ActionRequest) {
        let plan = &req.plan_id;
        // Sent by an approval of a plan's last task.
        let completed = Event::new(Some(plan), PlanCompleted::default()).worker(&self.pool.id);
        let applied = self.run_action(taken, req, &completed).await;
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
                self.finish(taken, plan, front(schedule), priority, &counts, None)
                    .await;
            }
            Some(ActionReply::Duplicate { schedule, priority }) => {
                self.finish(taken, plan, front(schedule), priority, &Counts::NONE, None)
                    .await;
            }
            Some(ActionReply::Refused(Refused(state))) => {
                let problem = req.action.refusal(plan, state);
                self.reject(taken, "action", &problem).await;
            }
            Some(ActionReply::NotAboveSpent(spent)) => {
                let problem = format!(
                    "${:.4} is not above what plan {plan} has spent (${spent:.4})",
                    req.max_budget_usd.unwrap_or(0.0)
                );
                self.reject(taken, "max_budget_usd", &problem).await;
            }
        }
    }

    /// The action's script, with its event; `None` when stopped while Redis was away.
    async fn run_action(
        &self,
        taken: &Taken,
        req: &ActionRequest,
        completed: &Event,
    ) -> Option<ActionReply> {
        let (plan, tag, note) = (&req.plan_id, &taken.tag, req.note.as_deref());
        let abort = &self.pool.shutdown.abort;
        let store = &self.pool.store;
        let event = |body: EventBody| Event::new(Some(plan), body).worker(&self.pool.id);
        let session_ttl_secs = self.pool.cfg.session_ttl.as_secs();
        match req.action {
            PlanAction::Retry => {
                let event = event(
                    PlanAccepted {
                        status: AcceptStatus::Retried,
                        tasks: None,
                        first_task_index: None,
                        state: None,
                    }
                    .into(),
                );
                let call = Retry {
                    plan,
                    tag,
                    event: &event,
                };
                redis_retry("retry", abort, || store.call(&call)).await
            }
            PlanAction::Resume => {
                let event = event(EventBody::PlanResumed(Bare {}));
                let call = Resume {
                    plan,
                    tag,
                    event: &event,
                    session_ttl_secs,
                };
                redis_retry("resume", abort, || store.call(&call)).await
            }
            PlanAction::Approve => {
                let note_owned = note.map(str::to_owned);
                let event = event(ReviewApproved { note: note_owned }.into());
                let call = Approve {
                    plan,
                    tag,
                    note,
                    event: &event,
                    completed,
                    session_ttl_secs,
                };
                redis_retry("approve", abort, || store.call(&call)).await
            }
            PlanAction::Budget => self.raise_budget(taken, req).await,
            PlanAction::Reject => {
                let note = note.unwrap_or_default();
                let event = event(
                    ReviewRejected {
                        note: note.to_owned(),
                    }
                    .into(),
                );
                let call = Reject {
                    plan,
                    tag,
                    note,
                    event: &event,
                    session_ttl_secs,
                };
                redis_retry("reject", abort, || store.call(&call)).await
            }
        }
    }

    /// `budget.lua`: the plan's budget raised, with its events.
    async fn raise_budget(&self, taken: &Taken, req: &ActionRequest) -> Option<ActionReply> {
        let plan = &req.plan_id;
        let event = |body: EventBody| Event::new(Some(plan), body).worker(&self.pool.id);
        let usd = req.max_budget_usd.unwrap_or(0.0);
        let raised = event(
            PlanBudgetRaised {
                max_budget_usd: usd,
            }
            .into(),
        );
        let resumed = event(EventBody::PlanResumed(Bare {}));
        let call = RaiseBudget {
            plan,
            tag: &taken.tag,
            usd,
            raised: &raised,
            resumed: &resumed,
            session_ttl_secs: self.pool.cfg.session_ttl.as_secs(),
        };
        redis_retry("raise the budget", &self.pool.shutdown.abort, || {
            self.pool.store.call(&call)
        })
        .await
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
        pool.webhooks
            .send(notify.as_ref(), event, &pool.store, &pool.id);
    }
}
