//! What every request to the dashboard passes before a page or an action sees it, and what every
//! answer carries.
//!
//! - **Host.** A page on any web site can point a name it controls at 127.0.0.1 (DNS
//!   rebinding) and read a loopback dashboard as its own origin. The browser then sends that
//!   name as `Host`, so a request whose `Host` is not one the dashboard answers to (its listen
//!   address, `localhost`/`127.0.0.1`/`[::1]` at its port when it listens on loopback or on every
//!   address, or a name given with `--dashboard-host`) gets 421 Misdirected Request.
//! - **Origin.** An action (any method but GET and HEAD) must come from one of the dashboard's
//!   own pages: its `Origin` (or, when a browser sends none, its `Referer`) must name an accepted
//!   host; anything else (another site's form, `Origin: null`, neither header) gets 403 before
//!   the token is even looked at.
//! - **Headers.** Every answer carries a Content-Security-Policy allowing only the dashboard's
//!   own files (its script and stylesheet are served files, and the pages have no inline
//!   script, style or event handler, so no `'unsafe-inline'`), no framing, `nosniff`, and
//!   `Referrer-Policy: same-origin` (not `no-referrer`: with it, browsers send `Origin: null` on
//!   a form's POST, and the Origin check above needs the real one).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The policy every answer carries: the dashboard's own files only, never in a frame.
pub(super) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The `Host` values the dashboard answers to, lower case, each `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hosts {
    accepted: Vec<String>,
}

impl Hosts {
    /// The hosts for a dashboard bound to `addr` (the port it really got) with the extra names
    /// `names` (from `--dashboard-host`). A name without a port matches with and without the
    /// dashboard's port (behind a proxy the browser may name none).
    pub(super) fn new(addr: SocketAddr, names: &[String]) -> Self {
        let port = addr.port();
        let ip = addr.ip();
        let mut accepted = vec![match addr {
            SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
            SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
        }];
        if ip.is_loopback() || ip.is_unspecified() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                accepted.push(format!("{name}:{port}"));
            }
        }
        for name in names {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if !has_port(&name) {
                accepted.push(format!("{name}:{port}"));
            }
            accepted.push(name);
        }
        accepted.dedup();
        Self { accepted }
    }

    /// Whether `host` (a `Host` header's value, or an origin's `host[:port]`) is accepted.
    pub(super) fn accepts(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        self.accepted.contains(&host)
    }
}

/// Whether `host` (`name`, `name:port`, `[v6]` or `[v6]:port`) carries a port.
fn has_port(host: &str) -> bool {
    match host.rsplit_once(']') {
        Some((_, rest)) => rest.starts_with(':'),
        None => host.contains(':'),
    }
}

/// The `host[:port]` of an origin or a URL (`http://h:1`, `https://h/path`); `None` for
/// anything else (`null`, a relative reference).
fn authority_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // No user information: `http://127.0.0.1:1@evil.example` names evil.example.
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

/// The host a request names: its `Host` header (HTTP/1.1), else its URI's authority.
fn requested_host(req: &Request) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
}

/// Why an action was refused, if it was: its `Origin` (or `Referer`) is missing or foreign.
fn origin_refusal(hosts: &Hosts, headers: &HeaderMap) -> Option<&'static str> {
    let named = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().ok().and_then(authority_of));
    match named {
        None => Some("Refused: the request carries neither Origin nor Referer, so it cannot be told apart from another site's form."),
        Some(Some(a)) if hosts.accepts(a) => None,
        Some(_) => Some("Refused: the request comes from another site (its Origin or Referer is not this dashboard)."),
    }
}

/// The middleware: Host on every request, Origin on every action, the headers on every answer.
pub(super) async fn guard(State(hosts): State<Arc<Hosts>>, req: Request, next: Next) -> Response {
    let mut response = if !requested_host(&req).is_some_and(|h| hosts.accepts(&h)) {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "This dashboard does not answer to that host name (start it with --dashboard-host NAME to add one).\n",
        )
            .into_response()
    } else if !matches!(*req.method(), Method::GET | Method::HEAD) {
        match origin_refusal(&hosts, req.headers()) {
            Some(why) => (StatusCode::FORBIDDEN, why).into_response(),
            None => next.run(req).await,
        }
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_loopback_dashboard_answers_to_its_loopback_names_and_the_names_given() {
        let hosts = Hosts::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["Dash.Example.com".into(), "proxy:9000".into()],
        );
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "dash.example.com",
            "dash.example.com:8080",
            "proxy:9000",
        ] {
            assert!(hosts.accepts(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "localhost",
            "127.0.0.1:8081",
            "evil.example:8080",
            "rebound.evil.example",
            "proxy",
            "proxy:8080",
            "",
        ] {
            assert!(!hosts.accepts(bad), "{bad}");
        }
        let public = Hosts::new("192.0.2.7:80".parse().unwrap(), &[]);
        assert!(public.accepts("192.0.2.7:80") && !public.accepts("localhost:80"));
        let v6 = Hosts::new("[::1]:81".parse().unwrap(), &[]);
        assert!(v6.accepts("[::1]:81") && v6.accepts("localhost:81"));
    }

    #[test]
    fn actions_need_an_origin_or_referer_naming_an_accepted_host() {
        let hosts = Hosts::new("127.0.0.1:8080".parse().unwrap(), &[]);
        let ok = |pairs: &[(header::HeaderName, &str)]| origin_refusal(&hosts, &headers(pairs));
        assert_eq!(ok(&[(header::ORIGIN, "http://127.0.0.1:8080")]), None);
        assert_eq!(
            ok(&[(header::REFERER, "http://localhost:8080/plans/x?y=1")]),
            None
        );
        for bad in [
            &[][..],
            &[(header::ORIGIN, "null")],
            &[(header::ORIGIN, "http://evil.example")],
            &[(header::ORIGIN, "http://127.0.0.1:8081")],
            &[(header::REFERER, "http://127.0.0.1:8080@evil.example/")],
            &[(header::REFERER, "/plans")],
            // An Origin decides; a matching Referer does not rescue a foreign one.
            &[
                (header::ORIGIN, "http://evil.example"),
                (header::REFERER, "http://127.0.0.1:8080/"),
            ],
        ] {
            assert!(ok(bad).is_some(), "{bad:?}");
        }
    }
}
