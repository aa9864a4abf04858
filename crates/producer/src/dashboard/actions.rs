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

/// The banner after an action (from a fixed set: nothing from the query string is shown).
pub(super) fn done_banner(d: &Done) -> Option<&'static str> {
    match d.done.as_deref() {
        Some("retry") => Some("Retry submitted: a worker puts the plan back in service."),
        Some("cancel") => Some("Plan cancelled."),
        Some("requeue") => Some("Document resubmitted."),
        Some("pause") => Some("Plan paused: the task running now finishes, then nothing runs."),
        Some("resume") => Some("Resume submitted: a worker puts the plan back in line."),
        Some("approve") => Some("Approval submitted: the plan goes on."),
        Some("reject") => Some("Rejection submitted: the task runs again with your note."),
        _ => None,
    }
}

/// The page refusing an action, unless actions are enabled and the form has the right token.
fn refusal(app: &App, form: &TokenForm) -> Option<Response> {
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

fn action_failed(app: &App, f: Failure) -> Response {
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
    let plan = match acted_on_plan(&app, &f, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut conn = app.conn.clone();
    let (env, keys) = (&app.ctx.env, &app.ctx.keys);
    let done = match action.as_str() {
        "cancel" => {
            let reason = "cancelled from the dashboard";
            crate::cancel::cancel(&mut conn, env, &plan, reason).await
        }
        "pause" => {
            let reason = "paused from the dashboard";
            crate::control::pause(&mut conn, env, &plan, reason, false).await
        }
        // retry, resume, approve, reject: the action documents, named as in the document.
        name => match name.parse::<PlanAction>() {
            Ok(a) => {
                let mut request = ActionRequest::new(plan.clone(), a);
                request.note = f.note.clone().filter(|n| !n.trim().is_empty());
                crate::control::request(&mut conn, keys, &request).await
            }
            Err(_) => {
                return failed(
                    &app,
                    StatusCode::NOT_FOUND,
                    "No such action",
                    "The dashboard knows retry, cancel, pause, resume, approve and reject.",
                )
            }
        },
    };
    match done {
        Ok(()) => Redirect::to(&format!("/plans/{plan}?done={action}")).into_response(),
        Err(f) => action_failed(&app, f),
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
        Ok(()) => Redirect::to("/dead?done=requeue").into_response(),
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
