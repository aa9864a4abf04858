//! What the dashboard does when a button is pressed: every action needs `--allow-actions` and
//! the token (compared in constant time), then goes through the same code as the `baton` command
//! of the same name, and redirects to a page with a banner from a fixed set.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton_core::{ActionRequest, PlanAction, PlanId};
use serde::Deserialize;

use super::{failed, App, Done, Shared};
use crate::Failure;

#[derive(Deserialize)]
pub(super) struct TokenForm {
    token: Option<String>,
    /// A reviewer's note (approve, reject).
    note: Option<String>,
}

baton_core::vocab::closed_enum! {
    /// A plan's buttons: the last segment of `/plans/{id}/{action}`, and the `done` banner
    /// after each.
    pub(super) enum PlanButton ("dashboard action") {
        Retry = "retry",
        Cancel = "cancel",
        Pause = "pause",
        Resume = "resume",
        Approve = "approve",
        Reject = "reject",
    }
}

/// The `done` banner after a dead letter was resubmitted (`/dead/{id}/requeue`).
const REQUEUED: &str = "requeue";

/// The banner after an action (from a fixed set: nothing from the query string is shown).
pub(super) fn done_banner(d: &Done) -> Option<&'static str> {
    let done = d.done.as_deref()?;
    if done == REQUEUED {
        return Some("Document resubmitted.");
    }
    Some(match done.parse::<PlanButton>().ok()? {
        PlanButton::Retry => "Retry submitted: a worker puts the plan back in service.",
        PlanButton::Cancel => "Plan cancelled.",
        PlanButton::Pause => "Plan paused: the task running now finishes, then nothing runs.",
        PlanButton::Resume => "Resume submitted: a worker puts the plan back in line.",
        PlanButton::Approve => "Approval submitted: the plan goes on.",
        PlanButton::Reject => "Rejection submitted: the task runs again with your note.",
    })
}

/// The page refusing an action, unless actions are enabled and the form has the right token.
pub(super) fn refusal(app: &App, form: &TokenForm) -> Option<Response> {
    let Some(expected) = &app.token else {
        return Some(failed(
            app,
            StatusCode::FORBIDDEN,
            "Read-only",
            "This dashboard was started without --allow-actions.",
        ));
    };
    let given = form.token.as_deref().unwrap_or("");
    (!same_secret(given.as_bytes(), expected.as_bytes())).then(|| {
        failed(
            app,
            StatusCode::FORBIDDEN,
            "Refused",
            "Refused: the token is missing or wrong.",
        )
    })
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn action_failed(app: &App, f: Failure) -> Response {
    match f {
        Failure::BadInput(m) | Failure::PlanFailed(m) => {
            failed(app, StatusCode::BAD_REQUEST, "Not done", &m)
        }
        Failure::Other(e) => failed(
            app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not done",
            &format!("{e:#}"),
        ),
    }
}

/// The plan an action names, once the token is checked; the refusal page otherwise.
#[expect(
    clippy::result_large_err,
    reason = "the error is the page to send, built at most once per request"
)]
fn acted_on_plan(app: &App, form: &TokenForm, id: &str) -> Result<PlanId, Response> {
    if let Some(r) = refusal(app, form) {
        return Err(r);
    }
    id.parse::<PlanId>().map_err(|_| {
        failed(
            app,
            StatusCode::NOT_FOUND,
            "No such plan",
            "That is not a plan id.",
        )
    })
}

/// A plan's button: retry, cancel, pause, resume, approve or reject.
pub(super) async fn plan_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<TokenForm>,
) -> Response {
    let Ok(button) = action.parse::<PlanButton>() else {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            "No such action",
            &format!(
                "The dashboard has no action {action:?} for a plan: it knows retry, cancel, \
                 pause, resume, approve and reject."
            ),
        );
    };
    let plan = match acted_on_plan(&app, &f, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut conn = app.conn.clone();
    let (env, keys) = (&app.ctx.env, &app.ctx.keys);
    // retry, resume, approve, reject: the action documents, as `baton` submits them.
    let document = match button {
        PlanButton::Cancel => {
            let reason = "cancelled from the dashboard";
            let done = crate::cancel::cancel(&mut conn, env, &plan, reason).await;
            return acted(&app, &plan, button, done);
        }
        PlanButton::Pause => {
            let reason = "paused from the dashboard";
            let done = crate::control::pause(&mut conn, env, &plan, reason, false).await;
            return acted(&app, &plan, button, done);
        }
        PlanButton::Retry => PlanAction::Retry,
        PlanButton::Resume => PlanAction::Resume,
        PlanButton::Approve => PlanAction::Approve,
        PlanButton::Reject => PlanAction::Reject,
    };
    let mut request = ActionRequest::new(plan.clone(), document);
    request.note = f.note.clone().filter(|n| !n.trim().is_empty());
    let done = crate::control::request(&mut conn, keys, &request).await;
    acted(&app, &plan, button, done)
}

/// The page after a plan's button: back to the plan with its banner, or why it failed.
fn acted(app: &App, plan: &PlanId, button: PlanButton, done: Result<(), Failure>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/plans/{plan}?done={button}")).into_response(),
        Err(f) => action_failed(app, f),
    }
}

pub(super) async fn requeue(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Some(r) = refusal(&app, &f) {
        return r;
    }
    let Ok(letter) = id.parse::<uuid::Uuid>() else {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            "No such dead letter",
            "That is not a dead-letter id.",
        );
    };
    match crate::dead::requeue(&mut app.conn.clone(), &app.ctx.keys, letter).await {
        Ok(()) => Redirect::to(&format!("/dead?done={REQUEUED}")).into_response(),
        Err(f) => action_failed(&app, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
