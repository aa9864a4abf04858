//! Forwarding a hold's model request: only the model's two paths, only the API's own headers,
//! the worker's credential in place of the token, the answer streamed back and its usage counted
//! on the way; a request that would start past the plan's budget is refused.

use std::sync::Arc;

use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderName;
use hyper::{Method, Request, Response, StatusCode};
use tracing::{debug, warn};

use super::{api_error, usage, Body, Credential, Shared, Usage, BUDGET_REFUSAL, MAX_REQUEST};

/// The requests a hold's token is good for: the model, and counting tokens for it. Not the
/// rest of the API the operator's key reaches (files, batches, admin), and no path that names
/// another one (`..`, `//`, encoded forms): the path must be one of these exactly.
fn allowed_request(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path, "/v1/messages" | "/v1/messages/count_tokens")
}

/// Request headers passed on to the endpoint: what the API reads, nothing a client could use
/// to steer a proxy or the endpoint's routing (`x-forwarded-*`, `host`), and no encoding the
/// gateway could not read to count usage.
fn forwarded_request_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(n, "content-type" | "accept" | "user-agent" | "x-app")
        || n.starts_with("anthropic-")
        || n.starts_with("x-stainless-")
        || n.starts_with("x-claude-")
}

/// Answer headers that belong to one hop and are not passed back.
fn dropped_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Forwards one request of a hold to the model endpoint, or refuses it with the API's own
/// error shape: a path other than the model's, a body over the limit, a plan over its budget.
pub(super) async fn forward(
    req: Request<Incoming>,
    shared: &Shared,
    usage: Arc<Usage>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if !allowed_request(&parts.method, parts.uri.path()) {
        debug!(method = %parts.method, path = parts.uri.path(), "model gateway: request refused");
        return api_error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "a hold's token is good for POST /v1/messages and /v1/messages/count_tokens only",
        );
    }
    let body = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "request body unreadable or over 64 MiB",
            )
        }
    };
    let rb = upstream_request(parts, shared);
    if let Some(why) = usage.over_budget() {
        debug!(why = %why, "model gateway: a request refused for the plan's budget");
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("{BUDGET_REFUSAL}: {why}"),
        );
    }
    usage.request();
    match rb.body(body).send().await {
        Ok(resp) => stream_back(resp, usage),
        Err(e) => {
            warn!(error = %e, "model gateway: the endpoint is unreachable");
            api_error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "the model endpoint is unreachable",
            )
        }
    }
}

/// The request to the endpoint (its body still to add): the same method and path, the headers
/// the API reads, and the worker's credential in place of the hold's token.
fn upstream_request(
    parts: hyper::http::request::Parts,
    shared: &Shared,
) -> reqwest::RequestBuilder {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut rb = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if forwarded_request_header(name) {
            rb = rb.header(name, value);
        }
    }
    match &shared.credential {
        Credential::ApiKey(k) => rb.header("x-api-key", k),
        Credential::Bearer(t) => rb.bearer_auth(t),
        Credential::None => rb,
    }
}

/// The endpoint's answer passed back as it streams, without hop-by-hop headers, its usage
/// counted on the way.
fn stream_back(resp: reqwest::Response, usage: Arc<Usage>) -> Response<Body> {
    let mut out = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        if !dropped_header(name) {
            out = out.header(name, value);
        }
    }
    let mut counter = usage::StreamCounter::new(usage);
    let stream = resp
        .bytes_stream()
        .map_err(std::io::Error::other)
        .map_ok(move |chunk| {
            counter.feed(&chunk);
            Frame::data(chunk)
        });
    out.body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| {
            api_error(
                StatusCode::BAD_GATEWAY,
                "api_error",
                "the endpoint's answer could not be passed on",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reaches_the_model_and_nothing_else_of_the_api() {
        assert!(allowed_request(&Method::POST, "/v1/messages"));
        assert!(allowed_request(&Method::POST, "/v1/messages/count_tokens"));
        for (m, p) in [
            (Method::GET, "/v1/messages"),
            (Method::POST, "/v1/files"),
            (Method::POST, "/v1/messages/batches"),
            (Method::POST, "/v1/../admin"),
            (Method::POST, "//evil.example/v1/messages"),
            (Method::POST, "/v1/messages/../files"),
            (Method::POST, "/v1/%6dessages"),
        ] {
            assert!(!allowed_request(&m, p), "{m} {p}");
        }
        for h in [
            "anthropic-version",
            "anthropic-beta",
            "content-type",
            "x-stainless-os",
        ] {
            assert!(forwarded_request_header(&HeaderName::from_static(h)), "{h}");
        }
        for h in [
            "x-forwarded-host",
            "host",
            "accept-encoding",
            "x-api-key",
            "authorization",
            "cookie",
        ] {
            assert!(
                !forwarded_request_header(&HeaderName::from_static(h)),
                "{h}"
            );
        }
    }
}
