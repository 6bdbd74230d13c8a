//! ETag and If-Match for editable configuration
//! ([`crate::app::policy::config`] holds the versions and the check).

use aura_engine::Digest;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::policy::config::{Expected, Versioned};

/// A strong ETag: the engine's version of the configuration part.
pub(crate) fn etag(version: Digest) -> String {
    format!("\"{}\"", version.to_hex())
}

/// The JSON body with its ETag.
pub(crate) fn tagged<T: Serialize>(part: Versioned<T>) -> Response {
    let mut r = axum::Json(&part.value).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(part.version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// The version an `If-Match` names: `*` any, a strong ETag its version;
/// none when the header is absent.
pub(crate) fn expected(headers: &HeaderMap) -> Option<Expected> {
    let given = headers.get(header::IF_MATCH)?.to_str().unwrap_or("").trim();
    if given == "*" {
        return Some(Expected::Any);
    }
    Some(
        given
            .strip_prefix('"')
            .and_then(|g| g.strip_suffix('"'))
            .and_then(|g| Digest::from_hex(g).ok())
            .map_or(Expected::Unrecognised, Expected::Version),
    )
}
