//! Action documents: `{"plan_id": P, "action": "retry"|"resume"|"approve"|"reject", "note"?}`
//! and `{"plan_id": P, "action": "budget", "max_budget_usd": X}`,
//! what each action asks, the state a plan must be in for it, and their checks.

use super::{check_prompt, RawDocument, ValidationError};
use crate::ids::PlanId;
use crate::vocab::closed_enum;

closed_enum! {
    /// What an action document asks for.
    pub enum PlanAction ("action") {
        /// Put a failed plan back in service from its failed task (`baton retry`).
        Retry = "retry",
        /// Let a paused plan run again (`baton resume`).
        Resume = "resume",
        /// Let a plan awaiting review go on (`baton approve`), with an optional note.
        Approve = "approve",
        /// Run the task under review again with the reviewer's note (`baton reject`).
        Reject = "reject",
        /// Raise the plan's budget (`baton budget PLAN --usd X`); a plan paused on its spent
        /// budget resumes.
        Budget = "budget",
    }
}

impl PlanAction {
    /// The state a plan must be in for this action.
    pub fn applies_to(self) -> crate::vocab::PlanState {
        use crate::vocab::PlanState;
        match self {
            Self::Retry => PlanState::Failed,
            Self::Resume | Self::Budget => PlanState::Paused,
            Self::Approve | Self::Reject => PlanState::AwaitingReview,
        }
    }

    /// Why plan `plan` in `state` (`None`: there is no such plan) refuses this action: what
    /// `baton` says at once, and a worker's dead letter says if the state changed meanwhile.
    pub fn refusal(self, plan: &PlanId, state: Option<crate::vocab::PlanState>) -> String {
        let Some(s) = state else {
            return format!("no plan {plan} (never submitted, or past its retention)");
        };
        let done = match self {
            Self::Retry => "retried",
            Self::Resume => "resumed",
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Budget => {
                return format!(
                    "plan {plan} is {s}; only a plan that is queued, running, paused or awaiting review can have its budget raised"
                )
            }
        };
        let want = self.applies_to();
        format!("plan {plan} is {s}, not {want}; only a plan that is {want} can be {done}")
    }
}

/// An action on an existing plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    pub plan_id: PlanId,
    pub action: PlanAction,
    /// The reviewer's note (`approve`: optional, `reject`: required; no other action has one).
    pub note: Option<String>,
    /// The new budget (`budget` only, and required there).
    pub max_budget_usd: Option<f64>,
}

impl ActionRequest {
    /// An action without a note.
    pub fn new(plan_id: PlanId, action: PlanAction) -> Self {
        Self {
            plan_id,
            action,
            note: None,
            max_budget_usd: None,
        }
    }

    /// The document that asks for `action` on `plan`, as a client submits it.
    pub fn to_json(&self) -> String {
        let mut doc = serde_json::json!({"plan_id": self.plan_id, "action": self.action});
        if let Some(n) = &self.note {
            doc["note"] = n.clone().into();
        }
        if let Some(b) = self.max_budget_usd {
            doc["max_budget_usd"] = b.into();
        }
        doc.to_string()
    }
}

/// An action document carries a plan id and the action, nothing else.
pub(super) fn check_action(
    action: &str,
    doc: &RawDocument,
) -> Result<ActionRequest, ValidationError> {
    let action = action.parse::<PlanAction>().map_err(|_| {
        let known: Vec<&str> = PlanAction::ALL.iter().map(|a| a.as_str()).collect();
        ValidationError::new(
            "action",
            format!("{action:?} is not an action; known: {}", known.join(", ")),
        )
    })?;
    let plan_id = doc
        .plan_id
        .as_deref()
        .ok_or_else(|| ValidationError::new("plan_id", "is missing; an action names its plan"))?
        .parse::<PlanId>()
        .map_err(|e| ValidationError::new("plan_id", e.to_string()))?;
    for (field, present) in [
        ("tasks", doc.tasks.is_some()),
        ("workspace", doc.workspace.is_some()),
        ("options", doc.options.is_some()),
        ("repo", doc.repo.is_some()),
    ] {
        if present {
            return Err(ValidationError::new(
                field,
                "is not allowed in an action document; submit tasks in a plan document",
            ));
        }
    }
    let note = match (action, &doc.note) {
        (PlanAction::Reject, None) => {
            return Err(ValidationError::new(
                "note",
                "is missing; a rejection tells the model what to change",
            ))
        }
        (PlanAction::Approve | PlanAction::Reject, Some(n)) => {
            check_prompt(n).map_err(|p| ValidationError::new("note", p))?;
            Some(n.clone())
        }
        (_, Some(_)) => {
            return Err(ValidationError::new(
                "note",
                format!("is only for approve and reject, not {action}"),
            ))
        }
        (_, None) => None,
    };
    let max_budget_usd = match (action, doc.max_budget_usd) {
        (PlanAction::Budget, None) => {
            return Err(ValidationError::new(
                "max_budget_usd",
                "is missing; a budget action names the new budget in US dollars",
            ))
        }
        (PlanAction::Budget, Some(b)) if !(b.is_finite() && b > 0.0) => {
            return Err(ValidationError::new(
                "max_budget_usd",
                "must be a positive number of US dollars",
            ))
        }
        (PlanAction::Budget, b) => b,
        (_, Some(_)) => {
            return Err(ValidationError::new(
                "max_budget_usd",
                format!("is only for the budget action, not {action}"),
            ))
        }
        (_, None) => None,
    };
    Ok(ActionRequest {
        plan_id,
        action,
        note,
        max_budget_usd,
    })
}
