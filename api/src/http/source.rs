//! Where a request comes from: the peer address of its connection. (A
//! deployment behind a proxy sees the proxy's address; limits per source
//! then apply to the proxy, docs/security.md.) Limits by source stop
//! floods before anything in the request is read.

use std::net::IpAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::server::AppState;
use crate::http::tls::Peer;

/// The request's source address, when the server was started with
/// connection info (tests that call the router directly have none).
pub fn of(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip())
}

/// Middleware on the gateway route: each source's requests are charged to
/// its limit before the body is read, let alone a signature verified.
pub async fn gateway_admission(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(source) = of(&req)
        && let Err(refusal) = state.app.gateway().admit_source(source).await
    {
        return crate::http::v1::gateway::refused(refusal);
    }
    next.run(req).await
}
