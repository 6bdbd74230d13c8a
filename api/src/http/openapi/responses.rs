//! The problems every operation can answer with besides its own, added
//! to the document from the same facts the router acts on, so that the
//! document lists every status an operation can return without each
//! handler repeating them:
//!
//! - every `/v1` operation: 400 (a path segment or query parameter that
//!   cannot be read, or a `consistency` other than the two), 503 (the
//!   engine or the database cannot answer, or the request timed out);
//! - behind an API key (all of `/v1` but the Tool Gateway, where agents
//!   present DualToken): 401, and 429 once a source address has failed
//!   too many authentications;
//! - a tenant's operations (`{tenant}` in the path): 403 (the key lacks
//!   the role), 404 (no such tenant, or not the key's);
//! - the platform's (`/v1/tenants`, `/v1/platform...`): 403 (not a
//!   platform key);
//! - a JSON body: 413 (over the body limit), 415 (not
//!   `application/json`), 422 (a field is invalid);
//! - a POST under an API key (idempotency keys apply): 409 (the key's
//!   first request is still running), 422 (the key was used for another
//!   request);
//! - query parameters besides `consistency`: 422 (one is out of range);
//! - a change under `If-Match`: 412 (the configuration changed since it
//!   was read), 428 (no `If-Match`).
//!
//! An operation's own description of a status wins over these.

use utoipa::Modify;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::gateway::TOOL_CALLS_PATH;
use crate::http::problem::CONTENT_TYPE;

#[derive(Debug)]
pub struct StandardResponses;

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

/// The statuses `op` may answer with besides its own, with why.
fn standard(path: &str, method: &HttpMethod, op: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        (
            "400",
            "The request cannot be read: a path segment or query parameter that is not valid, or a body that is not JSON",
        ),
        (
            "503",
            "The engine or the database cannot answer now (no leader, no quorum), or the request timed out; try again",
        ),
    ];
    let api_key = path != TOOL_CALLS_PATH;
    if api_key {
        out.push(("401", "No valid API key (`WWW-Authenticate: Bearer`)"));
        out.push((
            "429",
            "Too many failed authentications from this source address: retry after `Retry-After`",
        ));
    }
    if path.starts_with("/v1/tenants/{tenant}") {
        out.push(("403", "The API key lacks the role this operation needs"));
        out.push((
            "404",
            "No such tenant, or one the API key may not see (they read alike)",
        ));
    } else if path == "/v1/tenants" || path.starts_with("/v1/platform") {
        out.push((
            "403",
            "Only a platform key with the `platform_admin` role manages tenants",
        ));
    }
    if op.request_body.is_some() {
        out.push(("413", "The body is larger than the server accepts"));
        out.push(("415", "The body is not `application/json`"));
        out.push((
            "422",
            "A field of the body is invalid (`errors` names each)",
        ));
    }
    if api_key && *method == HttpMethod::Post {
        out.push((
            "409",
            "The Idempotency-Key's first request is still running",
        ));
        out.push((
            "422",
            "The Idempotency-Key was used for a different request",
        ));
    }
    let checked_query =
        op.parameters.iter().flatten().any(|p| {
            p.parameter_in == ParameterIn::Query && p.name != crate::http::consistency::PARAM
        });
    if checked_query {
        out.push((
            "422",
            "A query parameter is out of range (`errors` names it)",
        ));
    }
    let if_match =
        op.parameters.iter().flatten().any(|p| {
            p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("if-match")
        });
    if if_match {
        out.push((
            "412",
            "The configuration changed since its ETag was read: read it again",
        ));
        out.push(("428", "`If-Match` with the configuration's ETag is missing"));
    }
    out
}

fn methods(item: &mut utoipa::openapi::PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

impl Modify for StandardResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for (method, op) in methods(item) {
                // A status with several causes lists them all.
                let mut reasons = std::collections::BTreeMap::<&str, Vec<&str>>::new();
                for (status, why) in standard(path, &method, op) {
                    reasons.entry(status).or_default().push(why);
                }
                for (status, whys) in reasons {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(&whys.join("; or ")));
                }
            }
        }
    }
}
