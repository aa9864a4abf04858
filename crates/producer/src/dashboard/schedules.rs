//! The schedules page's handlers: `/schedules` and its fragment, read through baton-client,
//! and its run-now button (`POST /schedules/{name}/run-now`, with the token like every action:
//! what `baton schedule run-now` does, then the new plan's page).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton_client::schedules::Schedules;

use super::actions::{action_failed, refusal, TokenForm};
use super::{failed, pages, App, Shared};

async fn read(app: &App) -> Result<Schedules, Response> {
    baton_client::Client::new(app.conn.clone(), app.ctx.keys.clone())
        .schedules()
        .await
        .map_err(|e| {
            let text = format!("The dashboard could not read the schedules: {e}");
            failed(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Redis unavailable",
                &text,
            )
        })
}

/// `/schedules`.
pub(super) async fn page(State(app): State<Shared>) -> Response {
    match read(&app).await {
        Ok(s) => pages::schedules_page(&s, app.actions()).into_response(),
        Err(r) => r,
    }
}

/// `/fragments/schedules`.
pub(super) async fn fragment(State(app): State<Shared>) -> Response {
    match read(&app).await {
        Ok(s) => pages::schedules_fragment(&s).into_response(),
        Err(r) => r,
    }
}

/// `POST /schedules/{name}/run-now`: submits the schedule's plan now; then its page.
pub(super) async fn run_now(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Some(r) = refusal(&app, &f) {
        return r;
    }
    let Ok(name) = name.parse() else {
        return failed(
            &app,
            StatusCode::NOT_FOUND,
            "No such schedule",
            "That is not a schedule name.",
        );
    };
    match crate::schedule::run_now(&app.ctx, &name).await {
        Ok(plan) => Redirect::to(&format!("/plans/{plan}")).into_response(),
        Err(e) => action_failed(&app, e),
    }
}
