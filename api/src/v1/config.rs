//! Shared pieces of the resource handlers: reading a tenant's engine
//! state, and ETag / If-Match for editable configuration.

use aura_engine::Digest;
use aura_engine::ids::TenantId;
use aura_engine::machine::TenantState;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::no_such_tenant;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;

/// Reads the tenant's applied state on this node.
pub(crate) fn read_tenant<R>(
    state: &AppState,
    tenant: &TenantId,
    f: impl FnOnce(&TenantState) -> R,
) -> Result<R, Problem> {
    state
        .node
        .read_local(|s| s.tenant(tenant).map(f))
        .ok_or_else(|| no_such_tenant(tenant.as_str()))
}

/// A strong ETag: the digest of the configuration's JSON.
pub(crate) fn etag_of<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).expect("configuration serializes");
    format!("\"{}\"", &Digest::of(&bytes).to_hex()[..32])
}

/// The JSON body with its ETag.
pub(crate) fn tagged<T: Serialize>(value: &T) -> Response {
    let mut r = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag_of(value)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Editable configuration is changed only with `If-Match` naming its
/// current ETag, so that two admins never overwrite each other unseen.
pub(crate) fn check_if_match(headers: &HeaderMap, current: &str) -> Result<(), Problem> {
    let Some(given) = headers.get(header::IF_MATCH) else {
        return Err(Problem::new(
            ProblemKind::PreconditionRequired,
            format!("send If-Match with the current ETag ({current}) to change this configuration"),
        ));
    };
    let given = given.to_str().unwrap_or("");
    let matches = given
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current);
    if matches {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemKind::PreconditionFailed,
            format!("the configuration changed since you read it: its ETag is now {current}"),
        ))
    }
}
