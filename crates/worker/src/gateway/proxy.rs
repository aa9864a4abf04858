//! The boxes' HTTP CONNECT proxy: a tunnel to a host on `--sandbox-allow-host`, never to this
//! machine or a link-local address through a listed name.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::{api_error, full, Body, Shared};

/// Loopback, link-local or unspecified: places a name on the allow list must not lead to.
fn inward(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v) => v.is_loopback() || v.is_link_local() || v.is_unspecified(),
        std::net::IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => inward(std::net::IpAddr::V4(v4)),
            None => v.is_loopback() || v.is_unspecified() || (v.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// A box's CONNECT: a tunnel to an allowed host, refused for any other.
pub(super) fn connect(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "CONNECT needs host:port",
        );
    };
    let host = authority.host().to_owned();
    if !shared.allow.allows(&host) {
        debug!(host = %host, "sandbox proxy: host refused");
        return api_error(
            StatusCode::FORBIDDEN,
            "permission_error",
            &format!("{host} is not on the worker's --sandbox-allow-host list"),
        );
    }
    let port = authority.port_u16().unwrap_or(443);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let target = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        // A name on the list that resolves to this machine or a link-local address (the
        // worker's own services, a cloud's metadata address) is not followed there: only an
        // address written on the list itself reaches such a place.
        let literal = target.parse::<std::net::IpAddr>().is_ok();
        let addrs: Vec<std::net::SocketAddr> =
            match tokio::net::lookup_host((target.as_str(), port)).await {
                Ok(a) => a.filter(|a| literal || !inward(a.ip())).collect(),
                Err(_) => Vec::new(),
            };
        if addrs.is_empty() {
            debug!(host = %host, "sandbox proxy: no address it may connect to");
            return;
        }
        match tokio::net::TcpStream::connect(&addrs[..]).await {
            Ok(mut remote) => {
                let _ = remote.set_nodelay(true);
                let mut local = TokioIo::new(upgraded);
                let _ = tokio::io::copy_bidirectional(&mut local, &mut remote).await;
            }
            Err(e) => debug!(host = %host, error = %e, "sandbox proxy: connect failed"),
        }
    });
    Response::new(full(Bytes::new()))
}
