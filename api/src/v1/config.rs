//! Shared pieces of the resource handlers: ETag / If-Match for editable
//! configuration.

use aura_engine::Digest;
use aura_engine::ids::NamespaceId;
use aura_engine::machine::{ConfigPart, Precondition};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::problem::{Problem, ProblemKind};

/// A strong ETag: the engine's version of the configuration part.
pub(crate) fn etag(version: Digest) -> String {
    format!("\"{}\"", version.to_hex())
}

/// The JSON body with its ETag.
pub(crate) fn tagged<T: Serialize>(value: &T, version: Digest) -> Response {
    let mut r = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Editable configuration changes only with `If-Match`, so that two
/// admins never overwrite each other unseen. The ETag becomes a
/// precondition the engine checks when it applies the change, so the
/// check holds however many API nodes propose at once; `*` means "any
/// version".
pub(crate) fn if_match(
    headers: &HeaderMap,
    namespace: &NamespaceId,
    part: ConfigPart,
    current: Digest,
) -> Result<Option<Precondition>, Problem> {
    let Some(given) = headers.get(header::IF_MATCH) else {
        return Err(Problem::new(
            ProblemKind::PreconditionRequired,
            format!(
                "send If-Match with the current ETag ({}) to change this configuration",
                etag(current)
            ),
        ));
    };
    let given = given.to_str().unwrap_or("").trim();
    if given == "*" {
        return Ok(None);
    }
    let version = given
        .strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .and_then(|g| Digest::from_hex(g).ok())
        .ok_or_else(|| {
            Problem::new(
                ProblemKind::PreconditionFailed,
                format!(
                    "If-Match does not name a version of this configuration; its ETag is {}",
                    etag(current)
                ),
            )
        })?;
    Ok(Some(Precondition::ConfigVersion {
        namespace: namespace.clone(),
        part,
        version,
    }))
}
