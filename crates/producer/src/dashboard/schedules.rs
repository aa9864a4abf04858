//! The schedules page's handlers: `/schedules` and its fragment, read through baton-client.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton_client::schedules::Schedules;

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
